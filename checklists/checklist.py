"""Run the checklist: classify the tier, run each item's check, apply waivers, derive the verdict."""

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.candidate import Candidate, EvidenceRecord
from promotion_gate.checklists.checks import CHECKS, MANIFEST_ITEM
from promotion_gate.checklists.context import CheckContext
from promotion_gate.checklists.defaults import empty_list
from promotion_gate.checklists.manifest import Manifest
from promotion_gate.checklists.policy import Policy, SignoffPolicy, Tier, never_waivable
from promotion_gate.checklists.results import CheckResult, Outcome, WaiverRequest


class Checklist(BaseModel):
    """The automated part of a decision: every item's result against one candidate and policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str
    commit: str
    tier: Tier
    tier_reasons: list[str]
    results: list[CheckResult]
    evidence: list[EvidenceRecord] = Field(default_factory=empty_list)
    manifest_sha256: str
    policy_version: str
    policy_digest: str
    digest: str = Field(description="what a reviewer approves: commit, manifest, evidence, policy")
    evaluated_at: datetime
    owner: str | None = None
    manifest: Manifest | None = None
    signoff: SignoffPolicy
    control_titles: dict[str, str] = Field(default_factory=dict, description="the title of each control the results cite")
    risk_class: str | None = Field(default=None, description="the EU AI Act risk class the policy maps the manifest to")

    @property
    def blocked(self) -> bool:
        return any(r.outcome.blocks for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome.blocks]

    @property
    def needs_review(self) -> list[CheckResult]:
        return [r for r in self.results if r.outcome in (Outcome.warn, Outcome.inconclusive, Outcome.waived)]

    def headline(self) -> str:
        """The one-line summary of the automated items: clean only when nothing is warn, inconclusive or waived."""
        if self.blocked:
            return "blocked by " + ", ".join(r.id for r in self.failures)
        marks = [f"{r.id} {r.outcome.value}" + (f" (waived by {r.waiver.approver} until {r.waiver.expires})" if r.waiver else "")
                 for r in self.needs_review]
        return "no automated item blocked; for review: " + "; ".join(marks) if marks else "every automated item passed"

    @property
    def waiver_requests(self) -> list[WaiverRequest]:
        """Requests a sign-off could grant: on a failed item, allowed by the policy, within its limits."""
        return [r.waiver_request for r in self.results if r.waiver_request and r.waiver_request.grantable and r.outcome.blocks]

    @property
    def hard_blocked(self) -> bool:
        """Blocked whatever any reviewer does: a blocking item with no grantable waiver request."""
        return any(r.outcome.blocks and not (r.waiver_request and r.waiver_request.grantable) for r in self.results)

    @property
    def needs_signoff(self) -> bool:
        return bool(self.signoff.quorum) or bool(self.waiver_requests)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.outcome.value] = out.get(r.outcome.value, 0) + 1
        return out


def _waiver_request(result: CheckResult, manifest: Manifest, policy: Policy, tier: Tier, now: datetime) -> CheckResult:
    """Attach the manifest's waiver request to a failed item; it stays failed until a grant."""
    asked = next((w for w in manifest.waivers if w.item == result.id), None)
    if asked is None or result.outcome in (Outcome.passed, Outcome.not_applicable):
        return result
    item, tp = policy.item(result.id), policy.tiers[tier]
    latest = now.date() + timedelta(days=tp.waiver_max_days)
    problem = None
    if never_waivable(item.id) or not item.waivable_by:
        problem = f"{item.id} can never be waived"
    elif result.outcome == Outcome.error:
        problem = "an error (unusable input) can never be waived"
    elif result.outcome != Outcome.fail:
        problem = f"a {result.outcome.value} item needs no waiver"
    elif tp.waiver_max_days == 0:
        problem = f"the {tier.value} tier allows no waivers"
    elif asked.expires < now.date():
        problem = f"the requested expiry {asked.expires} has passed"
    elif asked.expires > latest:
        problem = f"the requested expiry {asked.expires} is beyond the {tp.waiver_max_days} days the {tier.value} tier allows ({latest})"
    request = WaiverRequest(item=item.id, reason=asked.reason, expires=asked.expires, asked_of=asked.approver,
                            waivable_by=list(item.waivable_by), latest_expiry=latest, problem=problem)
    shown = f"waiver requested until {asked.expires}: " + (f"cannot be granted: {problem}" if problem else f"needs a grant by {' or '.join(item.waivable_by)}")
    return result.model_copy(update={"waiver_request": request, "reason": f"{result.reason} ({shown})"})


def _route_inconclusive(result: CheckResult, policy: Policy, tier: Tier) -> CheckResult:
    """An inconclusive item needs a reviewer of a role the policy names for it, or it blocks."""
    if result.outcome != Outcome.inconclusive or reviewers_of(policy, tier, result.id):
        return result
    return result.model_copy(update={
        "outcome": Outcome.fail,
        "reason": f"{result.reason}; inconclusive, and the policy names no reviewer for it at the {tier.value} tier",
    })


def reviewers_of(policy: Policy, tier: Tier, item_id: str) -> list[str]:
    own = policy.item(item_id).inconclusive_reviewers
    return list(own) if own is not None else list(policy.tiers[tier].inconclusive_reviewers)


def effective_signoff(policy: Policy, tier: Tier, results: list[CheckResult]) -> SignoffPolicy:
    """The tier's quorum, plus one reviewer of the named role for every inconclusive item."""
    base = policy.tiers[tier].signoff
    quorum = dict(base.quorum)
    for r in results:
        if r.outcome == Outcome.inconclusive:
            for role in reviewers_of(policy, tier, r.id)[:1]:
                quorum[role] = max(quorum.get(role, 0), 1)
    return base if quorum == base.quorum else base.model_copy(update={"quorum": quorum})


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
            result = _route_inconclusive(_run(CHECKS[item.id], ctx), policy, tier)
            results.append(_waiver_request(result, manifest, policy, tier, now))
    return Checklist(
        system=candidate.system, commit=candidate.commit, tier=tier, tier_reasons=tier_reasons,
        results=results, evidence=candidate.evidence, manifest_sha256=candidate.manifest_sha256,
        policy_version=policy.version, policy_digest=policy.digest,
        digest=candidate.digest(policy.digest), evaluated_at=now,
        owner=manifest.owner if manifest else None, manifest=manifest,
        signoff=effective_signoff(policy, tier, results),
        control_titles=policy.titles_of({c for r in results for c in r.controls}),
        risk_class=policy.risk_class(manifest) if manifest else None,
    )
