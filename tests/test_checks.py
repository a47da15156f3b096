"""Table tests of the checklist: each fixture manifest, named by the outcome it expects, against
the example evidence; asserts the exact set of failing (blocking) ids and the tier."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from promotion_gate.checklists.checklist import evaluate
from promotion_gate.checklists.results import Outcome
from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
from promotion_gate.config.policy_source import load_policy
from tests.conftest import FIXTURES, NOW, ROOT

POLICY = load_policy()
OTHER_ROOMS = ("PG-COST-", "PG-RECERT-")  # items of other rooms, asserted in their own tests
EXAMPLES = ROOT / "examples" / "repo"


class FixtureSource:
    """The fixture manifest as promotion.yaml, every other file from an example system's folder."""

    def __init__(self, manifest: Path, example: str) -> None:
        self.manifest, self.example = manifest, example
        self.tree = WorkingTree(EXAMPLES)

    @contextmanager
    def open(self, path: str):
        if path.endswith("/promotion.yaml"):
            with self.manifest.open("rb") as fh:
                yield fh
            return
        with self.tree.open(path.replace("ai-systems/" + path.split("/")[1], "ai-systems/" + self.example, 1)) as fh:
            yield fh


def run_fixture(name: str):
    path = FIXTURES / "manifests" / f"{name}.yaml"
    system = "support-assistant" if name.startswith("high") else "helpdesk-summarizer"
    candidate = read_candidate(FixtureSource(path, system), system, "a" * 40)
    return evaluate(candidate, POLICY, NOW)


CASES = {
    "high__pass__support_assistant": ("high", set()),
    "low__pass__helpdesk": ("low", set()),
    "high__fail__no_fallback": ("high", {"PG-FALLBACK-001", "PG-FALLBACK-003"}),
    "high__fail__no_escalation": ("high", {"PG-OWNER-001"}),
    "high__fail__unapproved_provider": ("high", {"PG-VENDOR-001", "PG-DATA-001", "PG-EVAL-003", "PG-EVAL-006"}),  # no results for acme-llm
    "high__fail__unpinned_version": ("high", {"PG-VENDOR-002", "PG-EVAL-003", "PG-EVAL-006"}),  # no results for version "latest"
    "high__fail__data_class_not_allowed": ("high", {"PG-DATA-001", "PG-FALLBACK-002"}),  # the fallback may not get it either
    "high__fail__logging_full_with_pii": ("high", {"PG-LOG-001"}),
    "high__fail__retention_too_long": ("high", {"PG-LOG-001"}),
    "high__fail__admin_tool": ("high", {"PG-TOOLS-001"}),
    "high__fail__threshold_below_floor": ("high", {"PG-EVAL-002"}),
    "high__fail__threshold_not_met": ("high", {"PG-EVAL-003"}),
    "high__fail__metric_missing": ("high", {"PG-EVAL-003"}),
    "high__error__evidence_missing": ("high", {"PG-EVAL-001", "PG-EVAL-003"}),
    "high__error__evidence_wrong_format": ("high", {"PG-EVAL-001", "PG-EVAL-003"}),
    "high__fail__no_human_review": ("high", {"PG-REVIEW-001"}),
    "high__fail__no_drill": ("high", {"PG-FALLBACK-003"}),
    "high__fail__fallback_not_approved": ("high", {"PG-FALLBACK-002"}),
    "high__waived__no_human_review": ("high", {"PG-REVIEW-001"}),  # a request: failed until a risk reviewer grants it
    "high__fail__waiver_expired": ("high", {"PG-REVIEW-001"}),
    "medium__inconclusive__few_samples": ("medium", set()),
    "medium__fail__write_tool_unjustified": ("medium", {"PG-TOOLS-001", "PG-EVAL-002"}),  # medium raises the floor above 0.85
    "low__warn__no_fallback_no_sources": ("low", set()),
    "low__fail__no_evaluations": ("low", {"PG-EVAL-001"}),
    "high__fail__evidence_for_other_model": ("high", {"PG-EVAL-003", "PG-EVAL-006"}),
}


def test_every_fixture_has_a_case() -> None:
    assert {p.stem for p in (FIXTURES / "manifests").glob("*.yaml")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_exact_failing_ids(name: str) -> None:
    tier, failing = CASES[name]
    checklist = run_fixture(name)
    assert checklist.tier.value == tier, checklist.tier_reasons
    assert {r.id for r in checklist.failures if not r.id.startswith(OTHER_ROOMS)} == failing
    assert checklist.blocked == bool({r.id for r in checklist.failures} | failing)
    expected_word = name.split("__")[1]
    outcomes = {r.outcome for r in checklist.results}
    if expected_word == "waived":  # waived only once granted: here the request, grantable
        assert checklist.waiver_requests and not checklist.hard_blocked
    if expected_word == "inconclusive":
        assert Outcome.inconclusive in outcomes
    if expected_word == "warn":
        assert Outcome.warn in outcomes
    if expected_word == "error":
        assert Outcome.error in outcomes


def test_every_failure_has_a_remedy_and_controls() -> None:
    for name in CASES:
        for r in run_fixture(name).failures:
            assert r.remedy and r.controls, (name, r.id)


def test_a_waiver_request_shows_who_may_grant_it_and_until_when() -> None:
    result = next(r for r in run_fixture("high__waived__no_human_review").results if r.id == "PG-REVIEW-001")
    assert result.outcome == Outcome.fail and result.waiver is None
    request = result.waiver_request
    assert request.grantable and request.waivable_by == ["risk"] and str(request.expires) == "2026-12-05"
    assert request.asked_of == "rene" and str(request.latest_expiry) == "2026-12-08"
    assert "needs a grant by risk" in result.reason


def test_expired_waiver_is_named_in_the_reason() -> None:
    result = next(r for r in run_fixture("high__fail__waiver_expired").results if r.id == "PG-REVIEW-001")
    assert "requested expiry 2026-01-31 has passed" in result.reason and not result.waiver_request.grantable


def test_tier_is_computed_with_reasons() -> None:
    cl = run_fixture("high__pass__support_assistant")
    assert cl.tier_reasons == ["customer-facing and handles personal, health or financial data"]


def test_digest_changes_with_evidence_and_policy() -> None:
    a = run_fixture("high__pass__support_assistant")
    b = run_fixture("high__fail__threshold_not_met")
    assert a.digest != b.digest  # the manifest differs
    assert len(a.digest) == 64


def test_stale_evidence_fails_freshness() -> None:
    from datetime import timedelta

    path = FIXTURES / "manifests" / "high__pass__support_assistant.yaml"
    candidate = read_candidate(FixtureSource(path, "support-assistant"), "support-assistant", "a" * 40)
    cl = evaluate(candidate, POLICY, NOW + timedelta(days=30))
    assert {r.id for r in cl.failures} == {"PG-EVAL-001"}
    assert "older than 14" in next(r.reason for r in cl.failures)
