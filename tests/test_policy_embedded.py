"""The embedded policy's parsed data (checklists/policy_embedded.py) is the YAML's own parse, and is
used only for bytes whose SHA-256 is the embedded file's (issue 13, point 9: `check`'s speed)."""

from __future__ import annotations

from importlib import resources

import pytest

from promotion_gate.checklists import policy_embedded
from promotion_gate.checklists import policy as policy_module
from promotion_gate.checklists.policy import PolicyError, parse_policy, parse_policy_yaml, render_embedded_policy
from promotion_gate.checklists.yamldoc import parse_yaml

FILES = resources.files("promotion_gate.checklists")
YAML = FILES.joinpath("policy/policy.yaml").read_bytes()
REGENERATE = ".venv/bin/python -m promotion_gate.config.policy_source --write-embedded"


def test_the_generated_file_is_up_to_date_with_the_yaml() -> None:
    assert FILES.joinpath("policy_embedded.py").read_text(encoding="utf-8") == render_embedded_policy(YAML), \
        f"checklists/policy_embedded.py is stale: run {REGENERATE}"


def test_the_data_is_what_pyyaml_composes_type_for_type() -> None:
    assert repr(policy_embedded.data()) == repr(parse_yaml(YAML, "policy.yaml").data)


def test_the_embedded_bytes_give_the_same_policy_as_the_parse() -> None:
    fast, parsed = parse_policy(YAML, "embedded"), parse_policy_yaml(YAML, "embedded")
    assert fast == parsed
    assert fast.model_dump() == parsed.model_dump()


def test_each_call_gets_its_own_data() -> None:
    first = policy_embedded.data()
    first["providers"].clear()
    assert policy_embedded.data()["providers"]


def _spy(monkeypatch) -> list[bytes]:
    parsed: list[bytes] = []
    real = policy_module.parse_policy_yaml
    monkeypatch.setattr(policy_module, "parse_policy_yaml", lambda text, source: parsed.append(text) or real(text, source))
    return parsed


def test_the_embedded_bytes_skip_the_yaml_parse(monkeypatch) -> None:
    parsed = _spy(monkeypatch)
    assert parse_policy(YAML, "embedded").digest == policy_embedded.SHA256
    assert parsed == []


# Each row: bytes that are not the embedded file's, trying to be served its parsed data anyway.
OTHER_BYTES = [
    ("a trailing comment", YAML + b"\n# changed\n", None),
    ("the version changed", YAML.replace(b'version: "2026.12.7"', b'version: "2026.11.2"', 1), "2026.11.2"),
    ("a byte-order mark in front", b"\xef\xbb\xbf" + YAML, None),
    ("an unknown key (must still be refused)", YAML + b"\nsurprise: 1\n", PolicyError),
    ("a duplicate key (must still be refused)", YAML + b"\nversion: again\n", PolicyError),
]


@pytest.mark.parametrize(("name", "text", "expect"), OTHER_BYTES, ids=[row[0] for row in OTHER_BYTES])
def test_other_bytes_are_parsed(monkeypatch, name: str, text: bytes, expect) -> None:
    assert text != YAML
    parsed = _spy(monkeypatch)
    if expect is PolicyError:
        with pytest.raises(PolicyError):
            parse_policy(text, "policy.yaml")
    else:
        policy = parse_policy(text, "policy.yaml")
        assert policy.digest != policy_embedded.SHA256
        assert policy.version == (expect or "2026.12.7")
    assert parsed == [text]


def test_stale_data_for_the_embedded_digest_fails_over_to_the_parse(monkeypatch) -> None:
    """Data that no longer validates (a model changed, the file not regenerated) is not trusted: the
    YAML is parsed, and its own error (with lines) or policy is what counts."""
    monkeypatch.setattr(policy_embedded, "data", lambda: {"version": "stale"})
    parsed = _spy(monkeypatch)
    assert parse_policy(YAML, "embedded") == parse_policy_yaml(YAML, "embedded")
    assert parsed == [YAML]


def test_a_policy_with_a_non_literal_value_is_not_rendered() -> None:
    with pytest.raises(ValueError, match="no Python literal"):
        render_embedded_policy(YAML + b"\nodd: .nan\n")
