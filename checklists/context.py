"""What a check sees, and the constructors of its results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from promotion_gate.checklists.candidate import Candidate
from promotion_gate.checklists.manifest import Manifest
from promotion_gate.checklists.policy import Item, Policy, Tier, TierPolicy
from promotion_gate.checklists.results import CheckResult, Outcome


@dataclass(frozen=True)
class CheckContext:
    manifest: Manifest
    candidate: Candidate
    policy: Policy
    tier: Tier
    item: Item
    now: datetime

    @property
    def tier_policy(self) -> TierPolicy:
        return self.policy.tiers[self.tier]

    @property
    def data_classes(self) -> list[str]:
        """Every class the system touches: use_case.data_classes and the data sources' classifications."""
        return self.manifest.touched_data_classes()

    @property
    def sensitive_classes(self) -> set[str]:
        return set(self.data_classes) & set(self.policy.sensitive_data_classes)

    def _result(self, outcome: Outcome, reason: str, remedy: str | None, facts: dict[str, Any]) -> CheckResult:
        return CheckResult(
            id=self.item.id, title=self.item.title, outcome=outcome, reason=reason,
            remedy=remedy, controls=list(self.item.controls), facts=facts,
        )

    def passed(self, reason: str, **facts: Any) -> CheckResult:
        return self._result(Outcome.passed, reason, None, facts)

    def fail(self, reason: str, remedy: str | None = None, **facts: Any) -> CheckResult:
        outcome = Outcome.warn if self.tier in self.item.warn_only else Outcome.fail
        return self._result(outcome, reason, remedy or self.item.remedy, facts)

    def warn(self, reason: str, remedy: str | None = None, **facts: Any) -> CheckResult:
        return self._result(Outcome.warn, reason, remedy or self.item.remedy, facts)

    def inconclusive(self, reason: str, **facts: Any) -> CheckResult:
        return self._result(Outcome.inconclusive, reason, "a reviewer decides; or add samples", facts)

    def not_applicable(self, reason: str, **facts: Any) -> CheckResult:
        return self._result(Outcome.not_applicable, reason, None, facts)

    def error(self, reason: str, remedy: str | None = None, **facts: Any) -> CheckResult:
        return self._result(Outcome.error, reason, remedy or self.item.remedy, facts)

    def worst(self, results: list[CheckResult]) -> CheckResult:
        """Fold several findings of one item into one result: the most severe wins."""
        order = [Outcome.error, Outcome.fail, Outcome.inconclusive, Outcome.warn, Outcome.passed, Outcome.not_applicable]
        results = sorted(results, key=lambda r: order.index(r.outcome))
        head = results[0]
        same = [r for r in results if r.outcome == head.outcome]
        if len(same) == 1:
            return head
        facts: dict[str, Any] = {}
        for r in same:
            facts.update(r.facts)
        remedies = list(dict.fromkeys(r.remedy for r in same if r.remedy))
        return head.model_copy(update={
            "reason": "; ".join(r.reason for r in same), "facts": facts, "remedy": "; ".join(remedies) or None,
        })


Check = Callable[[CheckContext], CheckResult]
