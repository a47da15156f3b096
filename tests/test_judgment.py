"""Judgment of evaluation evidence: every path of floors, intervals, samples, baseline,
provenance and freshness, as a table over built candidates; and malformed evidence never passes."""

from __future__ import annotations

import hashlib

import io
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promotion_gate.checklists.candidate import Candidate, EvidenceRecord, LockedEvidence, ProductionLock, read_evidence_record
from promotion_gate.checklists.checklist import evaluate
from promotion_gate.checklists.evidence.base import Metric, ParsedEvidence, Provenance
from promotion_gate.checklists.manifest import EvidenceRef, parse_manifest
from promotion_gate.checklists.results import Outcome
from promotion_gate.checklists.stats import drop_verdict, wilson
from promotion_gate.config.policy_source import load_policy
from tests.conftest import NOW, ROOT

POLICY = load_policy()
BASE = (ROOT / "examples/repo/ai-systems/support-assistant/promotion.yaml").read_text()
MODEL = "anthropic:messages:claude-sonnet-4-20250514"


def record(path: str, passed: int, failed: int, *, model: str | None = MODEL, age_days: float = 1, fmt: str = "promptfoo") -> EvidenceRecord:
    n = passed + failed
    parsed = ParsedEvidence(
        format=fmt,
        metrics={"pass_rate": Metric(name="pass_rate", value=passed / n, n=n, passed=passed, failed=failed)},
        provenance=Provenance(tool=fmt, model=model, created_at=NOW - timedelta(days=age_days)),
    )
    # each file its own digest: PG-FALLBACK-003 refuses a drill with the same bytes as an evaluation
    return EvidenceRecord(path=path, format=fmt, sha256=hashlib.sha256(path.encode()).hexdigest(), size=1, parsed=parsed)


def lock(pass_rate: float, n: int) -> ProductionLock:
    return ProductionLock(
        system="support-assistant", source_commit="c" * 40, manifest_sha256="d" * 64, model="anthropic/claude-sonnet-4@x",
        evidence=[LockedEvidence(path="evals/promptfoo.json", format="promptfoo", sha256="e" * 64,
                                 metrics={"pass_rate": pass_rate}, samples={"pass_rate": n})],
        decision_id="support-assistant-ccccccc-0000000000", policy_version="1", policy_digest="f" * 64,
        promoted_at=NOW - timedelta(days=30),
    )


def judge(main: EvidenceRecord, *, threshold: float = 0.97, baseline: ProductionLock | None = None, drill: EvidenceRecord | None = None):
    text = BASE.replace("thresholds: {pass_rate: {min: 0.97}}", f"thresholds: {{pass_rate: {{min: {threshold}}}}}")
    assert text != BASE or threshold == 0.97
    manifest = parse_manifest(text, "promotion.yaml")
    candidate = Candidate(
        system="support-assistant", commit="a" * 40, manifest_path="p", manifest_sha256="b" * 64, manifest=manifest,
        evidence=[main, drill or record("evals/fallback-drill.xml", 119, 1, model=None, fmt="junit")], baseline=baseline,
    )
    return {r.id: r for r in evaluate(candidate, POLICY, NOW).results}


CASES = [
    # (label, main evidence, kwargs, item, expected outcome, words in reason)
    ("clears the threshold with its interval", record("evals/promptfoo.json", 398, 2), {}, "PG-EVAL-003", Outcome.passed, ">= 0.97"),
    ("interval below the threshold", record("evals/promptfoo.json", 170, 30), {}, "PG-EVAL-003", Outcome.fail, "not >= 0.97"),
    ("interval straddles the threshold", record("evals/promptfoo.json", 196, 4), {}, "PG-EVAL-003", Outcome.inconclusive, "straddles"),
    ("threshold under the tier floor", record("evals/promptfoo.json", 398, 2), {"threshold": 0.9}, "PG-EVAL-002", Outcome.fail, "looser than the tier's floor >= 0.95"),
    ("floor applies even when the team's threshold is lower", record("evals/promptfoo.json", 170, 30), {"threshold": 0.5}, "PG-EVAL-003", Outcome.fail, "not >= 0.95"),
    ("too few samples for the tier", record("evals/promptfoo.json", 60, 0), {"threshold": 0.95}, "PG-EVAL-004", Outcome.inconclusive, "fewer than the 100"),
    ("enough samples", record("evals/promptfoo.json", 398, 2), {}, "PG-EVAL-004", Outcome.passed, "400 samples"),
    ("first promotion has no baseline", record("evals/promptfoo.json", 398, 2), {}, "PG-EVAL-005", Outcome.not_applicable, "first promotion"),
    ("regression beyond tolerance", record("evals/promptfoo.json", 380, 20), {"threshold": 0.9, "baseline": lock(0.995, 2000)}, "PG-EVAL-005", Outcome.fail, "regressed beyond"),
    ("drop within noise of a small baseline", record("evals/promptfoo.json", 392, 8), {"baseline": lock(0.995, 200)}, "PG-EVAL-005", Outcome.inconclusive, "may be noise"),
    ("no regression", record("evals/promptfoo.json", 398, 2), {"baseline": lock(0.99, 400)}, "PG-EVAL-005", Outcome.passed, "within"),
    ("stale evidence", record("evals/promptfoo.json", 398, 2, age_days=20), {}, "PG-EVAL-001", Outcome.fail, "older than 14"),
    ("evidence from the future", record("evals/promptfoo.json", 398, 2, age_days=-3), {}, "PG-EVAL-001", Outcome.fail, "in the future"),
    ("evidence for another model", record("evals/promptfoo.json", 398, 2, model="openai:gpt-4o-2024-08-06"), {}, "PG-EVAL-006", Outcome.error, "no results for anthropic/claude-sonnet-4-20250514"),
    ("evidence that does not name its model", record("evals/promptfoo.json", 398, 2, model=None), {}, "PG-EVAL-006", Outcome.fail, "does not name its model (high tier: fail)"),
    ("drill below the floor", record("evals/promptfoo.json", 398, 2), {"drill": record("evals/fallback-drill.xml", 80, 20, model=None, fmt="junit")}, "PG-FALLBACK-003", Outcome.fail, "did not engage"),
]


@pytest.mark.parametrize(("label", "main", "kwargs", "item", "outcome", "words"), CASES, ids=[c[0] for c in CASES])
def test_judgment_table(label, main, kwargs, item, outcome, words) -> None:
    result = judge(main, **kwargs)[item]
    assert result.outcome == outcome, result.reason
    assert words in result.reason


def test_wilson_matches_the_published_formula() -> None:
    # Wilson (1927) / Newcombe (1998) example: 81 successes out of 263 -> (0.2553, 0.3662)
    interval = wilson(81, 263)
    assert round(interval.low, 4) == 0.2553 and round(interval.high, 4) == 0.3662


@pytest.mark.parametrize(("old", "old_n", "new", "new_n", "tol", "verdict"), [
    (0.95, 1000, 0.94, 1000, 0.02, "within"),
    (0.95, 5000, 0.90, 5000, 0.02, "beyond"),
    (0.95, 50, 0.92, 50, 0.02, "uncertain"),
    (0.95, None, 0.90, None, 0.02, "beyond"),
])
def test_drop_verdict(old, old_n, new, new_n, tol, verdict) -> None:
    assert drop_verdict(old, old_n, new, new_n, tol) == verdict


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=2048), fmt=st.sampled_from(["promptfoo", "junit", "promptfoo-jsonl", "lm-eval", "inspect", "deepeval", "openai-evals", "generic-json", "generic-csv"]))
def test_malformed_evidence_never_passes_the_checklist(data: bytes, fmt: str) -> None:
    rec = read_evidence_record(EvidenceRef(format=fmt, path="evals/promptfoo.json"), io.BytesIO(data))
    results = judge(rec)
    if rec.error is not None:
        assert results["PG-EVAL-001"].outcome == Outcome.error
        assert results["PG-EVAL-003"].outcome == Outcome.error
    else:  # random bytes that happen to parse must still clear every bar to pass
        assert results["PG-EVAL-003"].outcome != Outcome.passed or rec.metric("pass_rate").value >= 0.95


# exact provenance: which group of a file is the candidate's

from promotion_gate.checklists.evidence.base import ModelGroup  # noqa: E402
from promotion_gate.checklists.manifest import ModelRef  # noqa: E402
from promotion_gate.checklists.provenance import select_candidate  # noqa: E402

PINNED = ModelRef(provider="openai", name="gpt-4o", version="gpt-4o-2024-08-06")
RATE = {"pass_rate": Metric(name="pass_rate", value=0.9, n=10, passed=9, failed=1)}


@pytest.mark.parametrize(("provider", "model", "version", "chosen"), [
    ("openai", "gpt-4o-2024-08-06", None, True),
    (None, "gpt-4o-2024-08-06", None, True),  # the provider the id does not name: the pinned id still must match
    ("openai", "gpt-4o", "gpt-4o-2024-08-06", True),  # a format that states name and version apart (lm-eval revision)
    ("openai", "gpt-4o", None, False),  # the name without the pinned version proves nothing
    ("openai", "gpt-4o-2024-08-06-ft:acme", None, False),  # a superstring is another model
    ("openai", "GPT-4o-2024-08-06", None, False),
    ("azure-openai", "gpt-4o-2024-08-06", None, False),
    ("openai", "gpt-4o-mini", "gpt-4o-2024-08-06", False),
])
def test_only_an_exact_group_is_the_candidates(provider, model, version, chosen) -> None:
    group = ModelGroup(provider=provider, model=model, version=version, raw=f"{provider}:{model}", metrics=RATE)
    parsed = ParsedEvidence(format="generic-json", metrics=RATE, provenance=Provenance(tool="t"), groups=(group,))
    got = select_candidate(parsed, PINNED)
    assert (got.problem is None) == chosen and (got.metrics == RATE) == chosen


def test_two_groups_claiming_the_candidate_are_ambiguous() -> None:
    groups = tuple(ModelGroup(provider="openai", model="gpt-4o-2024-08-06", raw=raw, metrics=RATE) for raw in ("a", "b"))
    parsed = ParsedEvidence(format="promptfoo", metrics={}, provenance=Provenance(tool="t"), groups=groups)
    assert "ambiguous" in select_candidate(parsed, PINNED).problem
