"""The decision: one object that feeds every renderer, the lock file and the ledger."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.candidate import LockedEvidence, ProductionLock
from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.signoff import RefusedClick, Signoff, SignoffState

DECISION_SCHEMA_VERSION = 1


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Verdict(str, Enum):
    promoted = "promoted"
    blocked = "blocked"
    expired = "expired"
    withdrawn = "withdrawn"
    error = "error"


class PromotionRequest(Frozen):
    """Who asked to promote which system at which commit (plain values: safe as flow parameters)."""

    repository: str = Field(description="owner/name on GitHub, or a local repository path")
    system: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    commit: str = Field(pattern=r"^[0-9a-f]{40}$")
    requester: str = Field(min_length=1, max_length=100)
    requested_at: datetime
    pull_request: int | None = Field(default=None, ge=1)
    author: str | None = None
    committers: list[str] = Field(default_factory=list)
    run_url: str | None = None

    @property
    def key(self) -> str:
        pr = f"#{self.pull_request}" if self.pull_request else ""
        return f"{self.repository}{pr}@{self.commit}:{self.system}"

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
    signoffs: list[Signoff] = Field(default_factory=list)
    refused: list[RefusedClick] = Field(default_factory=list)
    decided_at: datetime
    timeline: list[TimelineEvent] = Field(default_factory=list)
    promotion: Promotion | None = None

    @property
    def blocked(self) -> bool:
        return self.verdict != Verdict.promoted

    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self)).hexdigest()


def canonical_json(decision: Decision) -> bytes:
    return json.dumps(decision.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()


def decision_id(request: PromotionRequest, checklist_digest: str | None, verdict: "Verdict") -> str:
    """Deterministic: the same promotion of the same evidence with the same verdict is the same
    decision (a re-run records nothing new); a different verdict is a new decision."""
    seed = f"{request.key}|{checklist_digest or '-'}|{verdict.value}"
    return f"{request.system}-{request.short_sha}-{hashlib.sha256(seed.encode()).hexdigest()[:10]}"


def promotion_branch(request: PromotionRequest) -> str:
    return f"promote/{request.system}/{request.short_sha}"


def decide(
    request: PromotionRequest,
    checklist: Checklist,
    signoff: SignoffState | None,
    *,
    signoffs: list[Signoff] = (),
    refused: list[RefusedClick] = (),
    now: datetime,
    timeline: list[TimelineEvent] = (),
    expired: bool = False,
    withdrawn: str | None = None,
) -> Decision:
    """Derive the verdict: failures block, a rejection blocks, no quorum in time expires."""
    reasons = [f"{r.id}: {r.reason}" for r in checklist.failures]
    if checklist.blocked:
        verdict = Verdict.blocked
    elif withdrawn:
        verdict, reasons = Verdict.withdrawn, [withdrawn]
    elif signoff is not None and signoff.status == "rejected":
        rej = signoff.rejection
        verdict = Verdict.blocked
        reasons = [f"rejected by {rej.identity} ({rej.role}): {rej.comment or 'no reason given'}"]
    elif signoff is not None and signoff.status == "waiting":
        verdict = Verdict.expired if expired else Verdict.blocked
        missing = ", ".join(f"{n} {role}" for role, n in signoff.missing.items())
        reasons = [f"no quorum within {checklist.signoff.time_limit_hours:g} h: missing {missing}" if expired else f"sign-off incomplete: missing {missing}"]
    else:
        verdict = Verdict.promoted
        reasons = ["every automated item passed" + (" and every required sign-off was given" if checklist.signoff.quorum else "")]
    return Decision(
        decision_id=decision_id(request, checklist.digest, verdict), verdict=verdict, reasons=reasons,
        request=request, checklist=checklist, signoffs=list(signoffs), refused=list(refused),
        decided_at=now, timeline=list(timeline),
        promotion=None,
    )


def error_decision(request: PromotionRequest, reason: str, now: datetime, checklist: Checklist | None = None, timeline: list[TimelineEvent] = ()) -> Decision:
    """Fail closed: anything that went wrong is a recorded decision that does not promote."""
    return Decision(
        decision_id=decision_id(request, checklist.digest if checklist else None, Verdict.error), verdict=Verdict.error,
        reasons=[reason], request=request, checklist=checklist, decided_at=now, timeline=list(timeline),
    )


def build_lock(decision: Decision) -> ProductionLock:
    cl = decision.checklist
    if decision.verdict != Verdict.promoted or cl is None or cl.manifest is None:
        raise ValueError("only a promotion has a lock file")
    evidence = [
        LockedEvidence(
            path=r.path, format=r.format, sha256=r.sha256 or "",
            metrics={k: m.value for k, m in r.parsed.metrics.items()} if r.parsed else {},
            samples={k: m.n for k, m in r.parsed.metrics.items() if m.n is not None} if r.parsed else {},
        )
        for r in cl.evidence
    ]
    model = cl.manifest.model
    return ProductionLock(
        system=cl.system, source_commit=cl.commit, manifest_sha256=cl.manifest_sha256,
        model=f"{model.provider}/{model.name}@{model.version}", evidence=evidence,
        decision_id=decision.decision_id, policy_version=cl.policy_version,
        policy_digest=cl.policy_digest, promoted_at=decision.decided_at,
    )
