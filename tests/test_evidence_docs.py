"""docs/evidence.md is true: every minimal file in it parses as its format and yields exactly the
metrics and the model the page says; every format the schema lists and the gate parses has its
section; the manifest example validates."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import yaml

from promotion_gate.checklists.evidence import PARSERS, read_evidence
from promotion_gate.checklists.evidence.base import EvidenceError
from promotion_gate.checklists.evidence_formats import FORMATS
from promotion_gate.checklists.manifest import Evaluation, EvidenceRef

DOC = (Path(__file__).resolve().parent.parent / "docs" / "evidence.md").read_text(encoding="utf-8")

BLOCK = re.compile(r"<!-- (evidence): ([a-z-]+) -->\n```[a-z]*\n(.*?)```\n(.*?)(?=\n## |\Z)", re.S)
YIELD = re.compile(r"`([^`]+)` = (-?[0-9.]+) \(n = (\d+|none)\)")
MODEL = re.compile(r"Reads the model as (?:provider `([^`]+)`|no provider), model `([^`]+)`\.")
REFUSED = re.compile(r"Refused with a message containing: `([^`]+)`")


def _blocks(kind: str) -> dict[str, tuple[str, str]]:
    """name -> (the fenced file, the prose after it up to the next section)."""
    out: dict[str, tuple[str, str]] = {}
    for found_kind, name, body, after in BLOCK.findall(DOC):
        if found_kind == kind:
            assert name not in out, f"two {kind} blocks marked {name}"
            out[name] = (body, after)
    return out


EVIDENCE = _blocks("evidence")


def _claims(after: str) -> dict[str, tuple[float, int | None]]:
    line = next((ln for ln in after.splitlines() if ln.startswith("Yields: ")), None)
    assert line is not None, "no 'Yields:' line after the block"
    claims = {name: (float(value), None if n == "none" else int(n)) for name, value, n in YIELD.findall(line)}
    assert claims and len(claims) == line.count("` = "), f"unreadable Yields line: {line}"
    return claims


def test_the_schema_and_the_parsers_list_the_same_formats():
    assert set(FORMATS) == set(PARSERS)


@pytest.mark.parametrize("fmt", sorted(set(FORMATS) | set(PARSERS)))
def test_every_format_has_a_section_and_a_minimal_file(fmt):
    assert f"\n## `{fmt}`\n" in DOC
    assert fmt in EVIDENCE, f"docs/evidence.md has no <!-- evidence: {fmt} --> block"


def test_no_block_names_an_unknown_format():
    assert set(EVIDENCE) <= set(PARSERS)


@pytest.mark.parametrize("fmt", sorted(EVIDENCE))
def test_each_minimal_file_yields_what_the_page_says(fmt):
    body, after = EVIDENCE[fmt]
    if (refused := REFUSED.search(after)) is not None:
        with pytest.raises(EvidenceError) as info:
            read_evidence(fmt, io.BytesIO(body.encode()))
        assert refused.group(1) in info.value.reason
        assert "Yields: " not in after
        return
    parsed, sha256, size = read_evidence(fmt, io.BytesIO(body.encode()))
    assert size == len(body.encode()) and len(sha256) == 64
    claims = _claims(after)
    assert set(parsed.metrics) == set(claims), "the page lists exactly the metrics the file yields"
    for name, (value, n) in claims.items():
        metric = parsed.metrics[name]
        assert metric.value == pytest.approx(value, abs=5e-4), name
        assert metric.n == n, name
    group = parsed.groups[0]
    said = MODEL.search(after)
    if said is None:
        assert "Reads no model." in after
        assert (group.provider, group.model) == (None, None)
    else:
        assert (group.provider, group.model) == (said.group(1), said.group(2))


def test_a_minimal_file_is_refused_as_any_other_format():
    """Each example is its own format's: none of them passes as another (a mislabelled file fails)."""
    for fmt, (body, _) in EVIDENCE.items():
        for other in sorted(set(PARSERS) - {fmt}):
            with pytest.raises(EvidenceError):
                read_evidence(other, io.BytesIO(body.encode()))


def test_the_manifest_example_validates():
    start = DOC.index("## In the manifest")
    example = re.search(r"```yaml\n(.*?)```", DOC[start:], re.S).group(1)
    doc = yaml.safe_load(example)
    for entry in doc["evaluations"]:
        evaluation = Evaluation.model_validate(entry)
        assert evaluation.format in FORMATS
        assert evaluation.thresholds
    drill = EvidenceRef.model_validate(doc["fallback"]["drill"])
    assert drill.format in FORMATS
