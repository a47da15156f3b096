"""Run the checklist: classify the tier, run each item's check, apply waivers, derive the verdict."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.candidate import Candidate, EvidenceRecord
from promotion_gate.checklists.checks import CHECKS, MANIFEST_ITEM
from promotion_gate.checklists.context import CheckContext
from promotion_gate.checklists.manifest import Manifest
from promotion_gate.checklists.policy import Policy, SignoffPolicy, Tier
from promotion_gate.checklists.results import AppliedWaiver, CheckResult, Outcome


class Checklist(BaseModel):
    """The automated part of a decision: every item's result against one candidate and policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str
    commit: str
    tier: Tier
    tier_reasons: list[str]
    results: list[CheckResult]
    evidence: list[EvidenceRecord] = Field(default_factory=list)
    manifest_sha256: str
    policy_version: str
    policy_digest: str
    digest: str = Field(description="what a reviewer approves: commit, manifest, evidence, policy")
    evaluated_at: datetime
    owner: str | None = None
    manifest: Manifest | None = None
    signoff: SignoffPolicy

    @property
    def blocked(self) -> bool:
        return any(r.outcome.blocks for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome.blocks]

    @property
    def needs_review(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome in (Outcome.warn, Outcome.inconclusive, Outcome.waived)]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.outcome.value] = out.get(r.outcome.value, 0) + 1
        return out


def _apply_waiver(result: CheckResult, manifest: Manifest, now: datetime) -> CheckResult:
    if result.outcome not in (Outcome.fail, Outcome.warn, Outcome.inconclusive):
        return result
    for waiver in manifest.waivers:
        if waiver.item != result.id:
            continue
        if waiver.expires < now.date():
            return result.model_copy(update={"reason": f"{result.reason} (waiver by {waiver.approver} expired {waiver.expires})"})
        applied = AppliedWaiver(approver=waiver.approver, reason=waiver.reason, expires=waiver.expires, waived_outcome=result.outcome)
        return result.model_copy(update={"outcome": Outcome.waived, "waiver": applied})
    return result


def _run(check, ctx: CheckContext) -> CheckResult:
    try:
        return check(ctx)
    except Exception as exc:  # a check that breaks blocks; it never passes
        return ctx.error(f"the check itself failed: {type(exc).__name__}: {exc}")


def evaluate(candidate: Candidate, policy: Policy, now: datetime) -> Checklist:
    manifest = candidate.manifest
    if manifest is None:
        tier, tier_reasons = Tier.high, ["the manifest could not be read, so the strictest tier applies"]
        item = policy.item(MANIFEST_ITEM)
        results = [CheckResult(
            id=item.id, title=item.title, outcome=Outcome.error, reason="; ".join(candidate.manifest_problems),
            remedy=item.remedy, controls=list(item.controls), facts={"problems": candidate.manifest_problems},
        )]
    else:
        tier, tier_reasons = policy.classify(manifest)
        results = []
        for item in policy.items_for(tier):
            if item.id == MANIFEST_ITEM:
                results.append(CheckResult(id=item.id, title=item.title, outcome=Outcome.passed, reason="manifest v1 is valid", controls=list(item.controls)))
                continue
            ctx = CheckContext(manifest=manifest, candidate=candidate, policy=policy, tier=tier, item=item, now=now)
            results.append(_apply_waiver(_run(CHECKS[item.id], ctx), manifest, now))
    return Checklist(
        system=candidate.system, commit=candidate.commit, tier=tier, tier_reasons=tier_reasons,
        results=results, evidence=candidate.evidence, manifest_sha256=candidate.manifest_sha256,
        policy_version=policy.version, policy_digest=policy.digest,
        digest=candidate.digest(policy.digest), evaluated_at=now,
        owner=manifest.owner if manifest else None, manifest=manifest,
        signoff=policy.tiers[tier].signoff,
    )
