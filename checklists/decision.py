"""The decision: one object that feeds every renderer, the lock file and the ledger."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.candidate import LockedCost, LockedEvidence, ProductionLock
from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.checks import unusable_items
from promotion_gate.checklists.defaults import empty_list
from promotion_gate.checklists.findings import Recertification
from promotion_gate.checklists.provenance import select_candidate
from promotion_gate.checklists.signoff import RefusedClick, Signoff, SignoffState
from promotion_gate.checklists.waivers import apply_grants
from promotion_gate.checklists.trust import SigningKeyMark

DECISION_SCHEMA_VERSION = 1


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # check never builds these


class Verdict(str, Enum):
    promoted = "promoted"
    blocked = "blocked"
    expired = "expired"
    withdrawn = "withdrawn"
    error = "error"
    # kind "recertification": production re-judged under the current policy (checklists/recertify.py)
    recertified = "recertified"
    recertification_due = "recertification-due"
    out_of_policy = "out-of-policy"


class PromotionRequest(Frozen):
    """Who asked to promote which system at which commit (plain values: safe as flow parameters)."""

    repository: str = Field(description="owner/name on GitHub, or a local repository path")
    system: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    requester: str = Field(min_length=1, max_length=100)
    requested_at: datetime
    pull_request: int | None = Field(default=None, ge=1)
    author: str | None = None
    committers: list[str] = Field(default_factory=empty_list)
    run_url: str | None = None
    attempt: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$",
                                description="an explicit ask to evaluate the same commit again (a check re-run): a new decision")

    @property
    def key(self) -> str:
        pr = f"#{self.pull_request}" if self.pull_request else ""
        again = f"~{self.attempt}" if self.attempt else ""
        return f"{self.repository}{pr}@{self.commit}:{self.system}{again}"

    @property
    def short_sha(self) -> str:
        return self.commit[:7]


class TimelineEvent(Frozen):
    at: datetime
    event: str


class Promotion(Frozen):
    branch: str
    commit: str | None = None
    pull_request_url: str | None = None


class Decision(Frozen):
    schema_version: int = DECISION_SCHEMA_VERSION
    decision_id: str
    verdict: Verdict
    reasons: list[str]
    request: PromotionRequest
    checklist: Checklist | None = None
    signoffs: list[Signoff] = Field(default_factory=empty_list)
    refused: list[RefusedClick] = Field(default_factory=empty_list)
    decided_at: datetime
    timeline: list[TimelineEvent] = Field(default_factory=empty_list)
    promotion: Promotion | None = None
    follows: str | None = Field(default=None, description="the system's previous decision in the ledger (set when recorded)")
    signing_key: SigningKeyMark | None = Field(default=None, description="the key that signs this record, and whether it is a demo key")
    gate_version: str | None = Field(default=None, description="the promotion-gate release that recorded it (set when recorded; "
                                                               "absent from records made before the field existed)")
    kind: Literal["promotion", "recertification"] = "promotion"
    recertification: Recertification | None = Field(default=None, description="kind recertification: the findings")

    @property
    def blocked(self) -> bool:
        return self.verdict != Verdict.promoted

    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self)).hexdigest()


def canonical_json(decision: Decision) -> bytes:
    return json.dumps(decision.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def decision_id(request: PromotionRequest, checklist_digest: str | None, verdict: "Verdict") -> str:
    """Deterministic per run: a resumed run re-derives the same id (its side effects are not
    repeated); a new run (a new request time), other evidence or another verdict is a new decision."""
    seed = f"{request.key}|{request.requested_at.isoformat()}|{checklist_digest or '-'}|{verdict.value}"
    return f"{request.system}-{request.short_sha}-{hashlib.sha256(seed.encode()).hexdigest()[:10]}"


def promotion_branch(request: PromotionRequest) -> str:
    return f"promote/{request.system}/{request.short_sha}"


def decide(
    request: PromotionRequest,
    checklist: Checklist,
    signoff: SignoffState | None,
    *,
    signoffs: Sequence[Signoff] = (),
    refused: Sequence[RefusedClick] = (),
    now: datetime,
    timeline: Sequence[TimelineEvent] = (),
    expired: bool = False,
    withdrawn: str | None = None,
) -> Decision:
    """Derive the verdict: unusable input (an error on the manifest or evidence items) is an error;
    failures block (unless a granted waiver turns one into waived), a
    rejection blocks, a required sign-off not given blocks, no quorum in time expires."""
    checklist = apply_grants(checklist, list(signoffs))
    unusable = unusable_items(checklist.failures)
    reasons = [f"{r.id}: {r.reason}" for r in [*unusable, *(r for r in checklist.failures if r not in unusable)]]
    if unusable:  # a manifest or evidence that cannot be judged: an error decision (it blocks at every tier)
        verdict = Verdict.error
    elif checklist.blocked:
        verdict = Verdict.blocked
    elif withdrawn:
        verdict, reasons = Verdict.withdrawn, [withdrawn]
    elif signoff is None and checklist.signoff.quorum:
        needs = ", ".join(f"{n} {role}" for role, n in checklist.signoff.quorum.items())
        verdict, reasons = Verdict.blocked, [f"sign-off required ({needs}) but none was collected"]
    elif signoff is not None and signoff.status == "rejected":
        rej = signoff.rejection
        verdict = Verdict.blocked
        reasons = [f"rejected by {rej.identity} ({rej.role}): {rej.comment or 'no reason given'}"]
    elif signoff is not None and signoff.status == "waiting":
        verdict = Verdict.expired if expired else Verdict.blocked
        missing = ", ".join([f"{n} {role}" for role, n in signoff.missing.items()] + [f"a grant of the waiver of {i}" for i in signoff.missing_waivers])
        reasons = [f"no quorum within {checklist.signoff.time_limit_hours:g} h: missing {missing}" if expired else f"sign-off incomplete: missing {missing}"]
    else:
        verdict = Verdict.promoted
        reasons = [checklist.headline() + (" and every required sign-off was given" if checklist.signoff.quorum else "")]
    return Decision(
        decision_id=decision_id(request, checklist.digest, verdict), verdict=verdict, reasons=reasons,
        request=request, checklist=checklist, signoffs=list(signoffs), refused=list(refused),
        decided_at=now, timeline=list(timeline),
        promotion=None,
    )


def error_decision(request: PromotionRequest, reason: str, now: datetime, checklist: Checklist | None = None, timeline: Sequence[TimelineEvent] = ()) -> Decision:
    """Fail closed: anything that went wrong is a recorded decision that does not promote."""
    return Decision(
        decision_id=decision_id(request, checklist.digest if checklist else None, Verdict.error), verdict=Verdict.error,
        reasons=[reason], request=request, checklist=checklist, decided_at=now, timeline=list(timeline),
    )


def evidence_role(manifest, path: str) -> str:
    """What an evidence file is to the manifest: one of its evaluations, or (only) its fallback drill."""
    if any(ev.path == path for ev in manifest.evaluations):
        return "evaluation"
    return "drill" if manifest.fallback and manifest.fallback.drill and manifest.fallback.drill.path == path else "evaluation"


def build_lock(decision: Decision) -> ProductionLock:
    cl = decision.checklist
    if decision.verdict != Verdict.promoted or cl is None or cl.manifest is None:
        raise ValueError("only a promotion has a lock file")
    chosen = {r.path: select_candidate(r.parsed, cl.manifest.model).metrics if r.parsed else {} for r in cl.evidence}
    evidence = [
        LockedEvidence(
            path=r.path, format=r.format, sha256=r.sha256 or "",
            metrics={k: m.value for k, m in chosen[r.path].items()},
            samples={k: m.n for k, m in chosen[r.path].items() if m.n is not None},
            produced_at=r.parsed.provenance.created_at if r.parsed else None, role=evidence_role(cl.manifest, r.path),
            max_regression=next((dict(ev.max_regression) for ev in cl.manifest.evaluations if ev.path == r.path), {}),
        )
        for r in cl.evidence
    ]
    model = cl.manifest.model
    return ProductionLock(
        system=cl.system, source_commit=cl.commit, manifest_sha256=cl.manifest_sha256,
        model=model.id, evidence=evidence,
        decision_id=decision.decision_id, policy_version=cl.policy_version,
        policy_digest=cl.policy_digest, promoted_at=decision.decided_at,
        tier=cl.tier.value, approved_by=sorted({s.identity for s in decision.signoffs if getattr(s.action, "value", s.action) == "approve"}),
        cost=_locked_cost(cl),
    )


def _locked_cost(cl: Checklist) -> LockedCost | None:
    """Production's cost as PG-COST-001 judged it (the baseline of PG-COST-002)."""
    from promotion_gate.checklists.cost import build_cost_summary

    cost = build_cost_summary(cl.results)
    if cost is None:
        return None
    return LockedCost(
        cost_per_request_usd=cost.cost_per_request_usd, method=cost.method, price_key=cost.price_key,
        expected_monthly_requests=cost.expected_monthly_requests, projected_monthly_usd=cost.projected_monthly_usd,
    )
