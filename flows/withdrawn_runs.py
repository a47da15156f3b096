"""A gate run cancelled before it decided (a push superseded it, the label was removed, the PR was
closed, someone cancelled it in the Prefect UI) is recorded as a ``withdrawn`` decision.

A cancelled run that was suspended has no process to record anything, so the sweeper does it
(flows/expiry.py): for each Cancelled gate run with no decision artifact and no sweep marker, one
``withdrawn`` decision, recorded in the ledger only. Its reason is the gate's ("superseded by
<sha7>", "promotion withdrawn by <login>") only when the gate sealed it for that run before
cancelling it (prefect_api/gate_runs.py ``vouched_void``: the seal binds the run's id and the
reason's text, keyed like the sweeper's own answers). Anyone who can reach the Prefect API can
cancel a run with any message; such a cancellation is still recorded (the run is cancelled,
nothing promotes), but its reason says it was cancelled outside the gate with no reason the gate
can vouch for, and quotes its message only as the canceller's unverified words, escaped and
capped (:func:`unvouched_reason`). The ledger records: GitHub already shows the voided
status or check, and a withdrawal is not a block (no comment, no label, no owner notice). Once:
the run is marked, and the decision id is deterministic. A run the sweeper cancelled because it
never started (state ``NeverStarted``) is an error, not a withdrawal (flows/expiry.py).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from promotion_gate.checklists.decision import Decision, PromotionRequest, Verdict, decision_id
from promotion_gate.notifications.error_text import build_error_line
from promotion_gate.prefect_api.gate_runs import vouched_void
from promotion_gate.slack_api.seal_key import sweeper_key

log = logging.getLogger("promotion_gate.expiry")
OUTSIDE = ("the promotion run was cancelled outside the gate (through the Prefect API or UI), with no reason the "
           "gate can vouch for; nothing was promoted")
UNCHECKED = ("the promotion run was cancelled; the sweeper could not check whether the gate cancelled it (the Slack "
             "signing secret is not set where it runs), so there is no reason the gate can vouch for; nothing was promoted")
MAX_QUOTED = 120
UNSET = object()


def unvouched_reason(message: str | None, checked: bool = True) -> str:
    """The reason of a cancellation the gate did not seal: what the gate knows (it was cancelled,
    nothing promoted) and the message only as the canceller's words, one line, capped, JSON-quoted
    (quotes, backslashes and anything not ASCII escaped)."""
    head = OUTSIDE if checked else UNCHECKED
    words = build_error_line(message, MAX_QUOTED) if message else ""
    if not words:
        return f"{head}; it carried no message"
    return f"{head}; the canceller's unverified words: {json.dumps(words, ensure_ascii=True)}"


def cancellation_reason(run, key: bytes | None) -> str:
    """Why a Cancelled gate run was cancelled, as far as the gate can say: its sealed reason, or
    :func:`unvouched_reason` of the message the cancellation carried (None `key`: not checkable)."""
    if key is not None:
        with get_client(sync_client=True) as client:
            vouched = vouched_void(client, run.id, key)
        if vouched:
            return build_error_line(vouched, 200)
    return unvouched_reason(_cancel_reason(run) or run.state.message, checked=key is not None)


def _cancel_reason(run) -> str | None:
    """Why a cancelled run was cancelled: the message of its Cancelling state (the Cancelled one has none)."""
    if run.state.type != StateType.CANCELLED:
        return None
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(run.id)
    return next((s.message for s in reversed(states) if s.type == StateType.CANCELLING and s.message), None)


def withdrawn_decision(request: PromotionRequest, reason: str, now: datetime) -> Decision:
    return Decision(decision_id=decision_id(request, None, Verdict.withdrawn), verdict=Verdict.withdrawn,
                    reasons=[reason], request=request, decided_at=now)


def decide_cancelled_run(run, key=UNSET) -> bool:
    """Record a withdrawn decision for a Cancelled gate run that recorded none; True when recorded.
    `key`: the seal key (the sweep reads it once; by default it is read here)."""
    from promotion_gate.config.settings import load_settings
    from promotion_gate.flows.expiry import _mark_swept, decide_as_error, never_started, unswept_request
    from promotion_gate.flows.promotion import record_decision, run_settings

    reason = never_started(run)
    if reason:  # not withdrawn: it never started (its sweep stopped half-way, or it stopped itself on the marker)
        return decide_as_error(run, reason, datetime.now(timezone.utc))
    request = unswept_request(run)
    if request is None:
        return False
    params = run.parameters or {}
    if key is UNSET:
        key = sweeper_key(load_settings())
    reason = cancellation_reason(run, key)
    settings = run_settings(params.get("store"), params.get("policy_path"), params.get("production_branch"))  # as that run's
    recorded = record_decision(withdrawn_decision(request, reason, datetime.now(timezone.utc)), settings)[0]
    with get_client(sync_client=True) as client:
        _mark_swept(client, run.id, recorded.decision_id)
    return True
