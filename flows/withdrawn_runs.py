"""A gate run cancelled before it decided (a push superseded it, the label was removed, the PR was
closed, someone cancelled it in the Prefect UI) is recorded as a ``withdrawn`` decision.

A cancelled run that was suspended has no process to record anything, so the sweeper does it
(flows/expiry.py): for each Cancelled gate run with no decision artifact and no sweep marker, one
``withdrawn`` decision whose reason is the cancellation's own message ("superseded by <sha7>",
"promotion withdrawn by <login>"), recorded in the ledger only: GitHub already shows the voided
status or check, and a withdrawal is not a block (no comment, no label, no owner notice). Once:
the run is marked, and the decision id is deterministic. A run the sweeper cancelled because it
never started (state ``NeverStarted``) is an error, not a withdrawal (flows/expiry.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from prefect.client.orchestration import get_client
from promotion_gate.checklists.decision import Decision, PromotionRequest, Verdict, decision_id

log = logging.getLogger("promotion_gate.expiry")


def withdrawn_decision(request: PromotionRequest, reason: str, now: datetime) -> Decision:
    return Decision(decision_id=decision_id(request, None, Verdict.withdrawn), verdict=Verdict.withdrawn,
                    reasons=[reason], request=request, decided_at=now)


def decide_cancelled_run(run) -> bool:
    """Record a withdrawn decision for a Cancelled gate run that recorded none; True when recorded."""
    from promotion_gate.flows.expiry import _cancel_reason, _mark_swept, decide_as_error, never_started, unswept_request
    from promotion_gate.flows.promotion import record_decision, run_settings

    reason = never_started(run)
    if reason:  # not withdrawn: it never started (its sweep stopped half-way, or it stopped itself on the marker)
        return decide_as_error(run, reason, datetime.now(timezone.utc))
    request = unswept_request(run)
    if request is None:
        return False
    params = run.parameters or {}
    reason = (_cancel_reason(run) or run.state.message or "the promotion run was cancelled")[:200]
    settings = run_settings(params.get("store"), params.get("policy_path"), params.get("production_branch"))  # as that run's
    recorded = record_decision(withdrawn_decision(request, reason, datetime.now(timezone.utc)), settings)[0]
    with get_client(sync_client=True) as client:
        _mark_swept(client, run.id, recorded.decision_id)
    return True
