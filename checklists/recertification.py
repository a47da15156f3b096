"""The decision of kind ``recertification``: one per production system per day and policy.

Its id is derived from the idempotency key (system, day, policy digest, lock digest), so a
second run on the same day under the same policy re-derives the same id and records nothing new.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from promotion_gate.checklists.decision import Decision, PromotionRequest, TimelineEvent, Verdict
from promotion_gate.checklists.findings import Recertification, RecertStatus

REQUESTER = "promotion-gate-recertify"
VERDICTS = {
    RecertStatus.current: Verdict.recertified,
    RecertStatus.due: Verdict.recertification_due,
    RecertStatus.out_of_policy: Verdict.out_of_policy,
}


def recertification_id(rc: Recertification) -> str:
    digest = hashlib.sha256(rc.key.encode()).hexdigest()[:10]
    return f"{rc.system}-recert-{rc.on:%Y%m%d}-{digest}"


def recertification_reasons(rc: Recertification) -> list[str]:
    if not rc.findings:
        return [f"still within policy {rc.policy_version} (approved under {rc.approved_policy_version or 'unknown'})"]
    return [f"{f.id}: {f.reason}" + (" (blocks the next promotion)" if f.blocking else "") for f in rc.findings]


def build_recertification_decision(rc: Recertification, source_commit: str | None, now: datetime,
                                   timeline: Sequence[TimelineEvent] = ()) -> Decision:
    commit = source_commit if source_commit and len(source_commit) == 40 else "0" * 40
    request = PromotionRequest(repository=rc.repository, system=rc.system, commit=commit,
                               requester=REQUESTER, requested_at=now)
    return Decision(
        decision_id=recertification_id(rc), verdict=VERDICTS[rc.status], reasons=recertification_reasons(rc),
        request=request, decided_at=now, timeline=list(timeline), kind="recertification", recertification=rc,
    )
