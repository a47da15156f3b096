"""Attacks on the policy reader and the CLI's `check` and `run` that once got through (the
yaml-cli review): a policy file that is not a regular file (a FIFO, /dev/zero) hung `check`, a
huge one was read whole into memory; a tier rule naming an audience or a data class the gate
never sees (a typo: `customer_facing`, `PII`) silently matched nothing, so a high-tier system
was judged medium and passed; `run` with a production branch that does not exist judged the
candidate with no production baseline and asked for sign-offs before failing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from promotion_gate.checklists.policy import PolicyError, parse_policy_yaml
from promotion_gate.checklists.yamldoc import MAX_YAML_BYTES
from promotion_gate.config.policy_source import load_policy

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "repo"
POLICY_TEXT = (ROOT / "checklists" / "policy" / "policy.yaml").read_text()
NOW = "2026-11-24T12:00:00Z"


MEMORY_LIMIT = 1 << 30
"""Address space `check --policy` gets (RLIMIT_AS): far more than it needs, half of a 2 GiB file."""


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def cli(*args: str, timeout: float = 60, bounded: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOTION_GATE_")}
    return subprocess.run([sys.executable, "-m", "promotion_gate.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=timeout, preexec_fn=_limit_memory if bounded else None)


def _fifo(tmp: Path) -> str:
    path = tmp / "policy.fifo"
    os.mkfifo(path)
    return str(path)


def _sparse(tmp: Path) -> str:
    path = tmp / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(2 << 30)  # 2 GiB, sparse: nothing is written, and nothing may be read whole
    return str(path)


POLICY_FILES = [
    ("a_fifo", _fifo, "not a regular file"),
    ("dev_zero", lambda tmp: "/dev/zero", "not a regular file"),
    ("a_2_gib_file", _sparse, f"larger than {MAX_YAML_BYTES} bytes"),
    ("a_directory", lambda tmp: str(tmp), "not a regular file"),
    ("no_such_file", lambda tmp: str(tmp / "nope.yaml"), "No such file"),
]


@pytest.mark.parametrize(("label", "make", "reason"), POLICY_FILES, ids=[r[0] for r in POLICY_FILES])
def test_a_policy_path_that_is_not_a_small_regular_file_is_one_error_line(tmp_path, label, make, reason) -> None:
    """`check --policy X` ends at once with exit 2 and one line naming the file and the reason:
    never a hang (a FIFO nobody writes, /dev/zero) nor gigabytes read into memory."""
    path = make(tmp_path)
    try:
        done = cli("check", str(EXAMPLES), "--system", "support-assistant", "--now", NOW, "--policy", path, timeout=30, bounded=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"check --policy {label} hung")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: policy: {path}") and reason in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def _rule_typo(old: str, new: str):
    assert POLICY_TEXT.count(old) >= 1, old
    return POLICY_TEXT.replace(old, new, 1)


TIER_RULE_TYPOS = [
    # (label, the policy text, the words the error must hold)
    ("audience_with_an_underscore", _rule_typo("audience: customer-facing, data_classes_any", "audience: customer_facing, data_classes_any"),
     ["tier_rules[1].when.audience", "customer_facing"]),
    ("audience_capitalised", _rule_typo("audience: customer-facing, data_classes_any", "audience: Customer-facing, data_classes_any"),
     ["tier_rules[1].when.audience"]),
    ("data_class_in_capitals", _rule_typo("data_classes_any: [pii, health, financial]", "data_classes_any: [PII, health, financial]"),
     ["tier_rules[1].when.data_classes_any", "PII"]),
    ("data_class_misspelt", _rule_typo("data_classes_any: [confidential, pii, health, financial]", "data_classes_any: [confidental, pii, health, financial]"),
     ["tier_rules[4].when.data_classes_any", "confidental"]),
    ("empty_data_classes_any", _rule_typo("data_classes_any: [pii, health, financial]", "data_classes_any: []"),
     ["tier_rules[1].when.data_classes_any"]),
    ("empty_tool_permission_any", _rule_typo("tool_permission_any: [admin]", "tool_permission_any: []"),
     ["tier_rules[2].when.tool_permission_any"]),
    ("sensitive_class_not_a_data_class", _rule_typo("sensitive_data_classes: [confidential, pii, health, financial]",
                                                    "sensitive_data_classes: [confidential, PII, health, financial]"),
     ["sensitive_data_classes", "PII"]),
]


@pytest.mark.parametrize(("label", "text", "words"), TIER_RULE_TYPOS, ids=[r[0] for r in TIER_RULE_TYPOS])
def test_a_tier_rule_that_can_never_match_is_refused(label, text, words) -> None:
    """A rule condition naming a value the gate never sees matched nothing, silently: the
    support assistant (customer-facing, pii) fell from high to medium and `check` passed."""
    with pytest.raises(PolicyError) as err:
        parse_policy_yaml(text.encode(), "policy.yaml")
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_a_tier_rule_typo_makes_check_unusable_not_a_pass(tmp_path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(TIER_RULE_TYPOS[0][1])
    done = cli("check", str(EXAMPLES), "--system", "support-assistant", "--now", NOW, "--policy", str(policy), "--format", "json")
    assert done.returncode == 2, done.stdout
    body = json.loads(done.stdout)
    assert "tier_rules[1].when.audience" in body["error"]


def _policy_data(change) -> str:
    import yaml

    data = yaml.safe_load(POLICY_TEXT)
    change(data)
    return yaml.safe_dump(data, sort_keys=False)


UNREACHABLE_TIERS = [
    ("no_tier_rules_at_all", lambda p: p.__setitem__("tier_rules", []), ["tier_rules", "high", "medium"]),
    ("no_rule_for_high", lambda p: p.__setitem__("tier_rules", [r for r in p["tier_rules"] if r["tier"] != "high"]), ["tier_rules", "high"]),
    ("no_items_at_all", lambda p: p.__setitem__("items", []), ["tiers.low", "tiers.high", "no item"]),
    ("no_item_for_high", lambda p: [i.__setitem__("tiers", [t for t in i["tiers"] if t != "high"]) for i in p["items"]], ["tiers.high", "no item"]),
]


@pytest.mark.parametrize(("label", "change", "words"), UNREACHABLE_TIERS, ids=[r[0] for r in UNREACHABLE_TIERS])
def test_a_policy_with_a_tier_no_system_reaches_or_nothing_judges_is_refused(label, change, words) -> None:
    """With no rule for high, the support assistant was judged low and `check` passed; with no
    item for its tier, it "would pass the automated items ()": a checklist that judged nothing."""
    with pytest.raises(PolicyError) as err:
        parse_policy_yaml(_policy_data(change).encode(), "policy.yaml")
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


MANIFEST_TEXT = (EXAMPLES / "ai-systems" / "support-assistant" / "promotion.yaml").read_text()

MANY_PROBLEMS = [
    ("many_unknown_keys", MANIFEST_TEXT + "".join(f"k{i}: 1\n" for i in range(5000)), "unknown key"),
    ("many_bad_tools", MANIFEST_TEXT.replace("  tools:\n", "  tools:\n" + "    - {name: t, permission: root}\n" * 5000),
     "use_case.tools[0].permission"),
]


@pytest.mark.parametrize(("label", "text", "first"), MANY_PROBLEMS, ids=[r[0] for r in MANY_PROBLEMS])
def test_a_manifest_with_thousands_of_problems_lists_a_few_and_counts_the_rest(label, text, first) -> None:
    """A 1 MiB manifest of unknown keys printed one line each (12 MB from `check`, and as much
    into the decision, its report and the audit store): the first few are enough to fix it."""
    from promotion_gate.checklists.manifest import ManifestError, parse_manifest

    listed = 50  # checklists/manifest.py MAX_LISTED_PROBLEMS

    with pytest.raises(ManifestError) as err:
        parse_manifest(text.encode(), "ai-systems/support-assistant/promotion.yaml")
    problems = err.value.problems
    assert len(problems) == listed + 1, len(problems)
    assert first in problems[0]
    assert problems[-1].endswith(f"and {5000 - listed} more problems (fix these first)")


def test_the_embedded_policy_still_loads() -> None:
    assert load_policy().tier_rules


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=dana@example.com", "-c", "user.name=dana", *args],
                   check=True, capture_output=True)


RUN_REFUSALS = [
    ("production_branch_missing", ["--production-branch", "mian"], "no branch 'mian' (the production branch)"),
]


@pytest.mark.parametrize(("label", "extra", "reason"), RUN_REFUSALS, ids=[r[0] for r in RUN_REFUSALS])
def test_run_refuses_before_judging(tmp_path, label, extra, reason) -> None:
    """`run` with a production branch that does not exist once judged the candidate with no
    production baseline (no regression check), took the sign-offs, and only then failed."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "init")
    store = tmp_path / "store"
    done = cli("run", str(repo), "--system", "support-assistant", "--requester", "dana", "--approve", "sam",
               "--approve", "rene", "--store", str(store), *extra, timeout=180)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {repo}: ") and reason in lines[0], done.stderr[-2000:]
    assert not any(store.rglob("decision.json"))  # nothing judged, nothing recorded
