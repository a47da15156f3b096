"""The explicit list of checks, keyed by their stable ids. Ids are never reused or renumbered."""

from __future__ import annotations

from collections.abc import Iterable

from promotion_gate.checklists import checks_declared as d
from promotion_gate.checklists import checks_evidence as e
from promotion_gate.checklists.context import Check
from promotion_gate.checklists.results import CheckResult, Outcome
from promotion_gate.checklists import cost, recertify

MANIFEST_ITEM = "PG-MANIFEST-001"
# the items that say whether the input can be judged at all: an error on one is unusable input, an error decision
INPUT_ITEMS = frozenset({MANIFEST_ITEM, "PG-EVAL-001", "PG-EVAL-002"})


def unusable_items(results: Iterable[CheckResult]) -> list[CheckResult]:
    """The errors that say the input cannot be judged (an error decision in the flow, exit 2 of `check`)."""
    return [r for r in results if r.outcome == Outcome.error and r.id in INPUT_ITEMS]

CHECKS: dict[str, Check] = {
    "PG-OWNER-001": d.owner_and_escalation_are_named,
    "PG-VENDOR-001": d.vendor_and_model_are_approved,
    "PG-VENDOR-002": d.model_version_is_pinned,
    "PG-DATA-001": d.data_classes_are_allowed,
    "PG-DATA-002": d.data_sources_are_declared,
    "PG-LOG-001": d.logging_protects_sensitive_data,
    "PG-TOOLS-001": d.tools_are_least_privilege,
    "PG-EVAL-001": e.evidence_is_present_and_fresh,
    "PG-EVAL-002": e.thresholds_respect_floors,
    "PG-EVAL-003": e.thresholds_are_met,
    "PG-EVAL-004": e.samples_are_sufficient,
    "PG-EVAL-005": e.no_regression_against_production,
    "PG-EVAL-006": e.evidence_matches_the_model,
    "PG-FALLBACK-001": d.fallback_is_declared,
    "PG-FALLBACK-002": d.fallback_model_is_approved,
    "PG-FALLBACK-003": e.fallback_was_drilled,
    "PG-IMPACT-001": d.user_impact_is_stated,
    "PG-REVIEW-001": d.human_review_is_in_the_loop,
    "PG-COST-001": cost.cost_within_budget,
    "PG-COST-002": cost.cost_did_not_regress,
    "PG-RECERT-010": recertify.candidate_resolves_blocking_findings,
}
