"""Deadlines with no process alive: a scheduled sweeper flow (deployment ``promotion-gate-sweeper``).

A promotion waiting for sign-off is a suspended run; nothing of it runs until it is resumed.
Every minute the sweeper looks at the suspended gate runs and, from each run's own record:

- past the deadline: resumes it with an ``expire`` answer, so the flow itself blocks the
  promotion as expired and records the decision, status, comment, report and ledger entry;
- past the reminder share of the time limit: resumes it with a ``remind`` answer (the flow posts
  the reminder once and suspends again);

and for gate runs that ended without closing their Slack requests (cancelled when a push
superseded them, crashed, or decided before asking) it closes the messages, buttons removed.

Why not a suspend timeout: a pause that times out is failed by the server, so the flow never runs
again and nothing records the decision. Why not an automation: it could resume a run only by
reacting to an event, and nothing happens at a deadline. See docs/slack.md.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterEndTime, FlowRunFilterState, FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from pydantic import BaseModel, Field

from promotion_gate.flows.settings import load_settings
from promotion_gate.flows.slack_client import SlackUnavailable, build_slack_client, slack_call
from promotion_gate.flows.slack_waiting import read_waiting, send_answer, write_waiting
from promotion_gate.notifications.slack_interactions import SignoffAnswer, WaitingPromotion
from promotion_gate.notifications.slack_messages import build_closed_message

GATE_FLOW = "promotion-gate"
ENDED = [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED]
log = logging.getLogger("promotion_gate.expiry")


class Sweep(BaseModel):
    expired: list[str] = Field(default_factory=list)
    reminded: list[str] = Field(default_factory=list)
    closed: list[str] = Field(default_factory=list)


def due(record: WaitingPromotion, now: datetime) -> str | None:
    """What a waiting promotion is owed at `now`: "expire", "remind" or nothing."""
    if record.status != "waiting":
        return None
    if now >= record.deadline:
        return "expire"
    if now >= record.remind_at and not record.reminded:
        return "remind"
    return None


def ended_line(state, cancel_reason: str | None = None) -> str:
    """The outcome shown on the requests of a run that ended without closing them."""
    if state.type == StateType.CANCELLED:
        return f"Withdrawn: {cancel_reason or state.message or 'the promotion run was cancelled'}"
    if state.type == StateType.COMPLETED:
        return "Closed: the promotion was decided without this sign-off (see the report)"
    return f"Closed: the promotion run {state.name.lower()}; nothing was promoted"


def _gate_runs(client, types: list[StateType], ended_after: datetime | None = None):
    run_filter = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=types)))
    if ended_after is not None:
        run_filter.end_time = FlowRunFilterEndTime(after_=ended_after)
    return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[GATE_FLOW])),
                                 flow_run_filter=run_filter, limit=200)


def close_messages(record: WaitingPromotion, line: str) -> WaitingPromotion:
    """Close a promotion's requests from outside its flow: outcome shown, buttons removed, record closed."""
    client = build_slack_client(load_settings())
    body = build_closed_message(record, line)
    for ref in record.messages:
        try:
            slack_call(f"chat.update for {ref.role}", client.chat_update, channel=ref.channel, ts=ref.ts, **body)
        except SlackUnavailable as exc:
            log.warning("could not close the request of %s in %s: %s", record.key, ref.channel, exc)
    return write_waiting(record.model_copy(update={"status": "closed", "outcome": line}))


close_requests = task(name="close-slack-requests", cache_policy=NO_CACHE)(close_messages)


def close_voided(run_id: str, reason: str) -> bool:
    """For the side that voids a gate run (a new push, the label removed): close its Slack
    requests now, without waiting for the next sweep. False when it had none open."""
    record = read_waiting(run_id)
    if record is None or record.status != "waiting":
        return False
    close_messages(record, f"Withdrawn: {reason}")
    return True


def _cancel_reason(run) -> str | None:
    """Why a cancelled run was cancelled: the message of its Cancelling state (the Cancelled one has none)."""
    if run.state.type != StateType.CANCELLED:
        return None
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(run.id)
    return next((s.message for s in reversed(states) if s.type == StateType.CANCELLING and s.message), None)


@flow(name="promotion-gate-sweeper", log_prints=True)
def sweep_signoffs(lookback_hours: float = 48) -> Sweep:
    """Expire, remind and close what is due; a run busy with an answer is left for the next sweep."""
    now, done = datetime.now(timezone.utc), Sweep()
    with get_client(sync_client=True) as client:
        waiting = _gate_runs(client, [StateType.PAUSED])
        ended = _gate_runs(client, ENDED, now - timedelta(hours=lookback_hours))
    for run in waiting:
        record = read_waiting(run.id)
        kind = due(record, now) if record else None
        if kind and send_answer(run.id, SignoffAnswer(kind=kind, at=now), wait_seconds=0) == "sent":
            (done.expired if kind == "expire" else done.reminded).append(record.key)
    for run in ended:
        record = read_waiting(run.id)
        if record is not None and record.status == "waiting":
            done.closed.append(close_requests(record, ended_line(run.state, _cancel_reason(run))).key)
    get_run_logger().info("sweep: %d expired, %d reminded, %d closed", len(done.expired), len(done.reminded), len(done.closed))
    return done
