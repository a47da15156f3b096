"""Deadlines with no process alive: a scheduled sweeper flow (deployment ``promotion-gate-sweeper``).

A promotion waiting for sign-off is a suspended run; nothing of it runs until it is resumed.
Every minute the sweeper looks at the suspended gate runs and, from each run's own record:

- past the deadline: resumes it with an ``expire`` answer, so the flow itself blocks the
  promotion as expired and records the decision, status, comment, report and ledger entry;
- past the reminder share of the time limit: resumes it with a ``remind`` answer (the flow posts
  the reminder once and suspends again);

each sealed for the run with the key derived from the Slack signing secret (:func:`sweeper_key`):
the flow acts on neither unsealed, since anyone who can reach the Prefect API could send one;

and for gate runs that ended without closing their Slack requests (cancelled when a push
superseded them, crashed, or decided before asking) it closes the messages, buttons removed.

Nothing lost in an outage (docs/operations.md):

- answers the gateway kept on a run it could not resume (busy, or resumed with no worker alive)
  are delivered, oldest first, once the run waits again;
- a gate run that ended Crashed or Failed with no decision recorded (no decision artifact on the
  run) is decided here as an *error*, through the gate's own publish steps: block comment, label,
  report and ledger entry, failure status. A marker on the run (``promotion-gate-swept``) makes it
  once; the error decision's id is deterministic, so even a repeat records nothing twice;
- a ``promotion-request`` run that ended Crashed or Failed before starting any gate run is started
  again once (key ``<its key>:retry``);
- a gate run still Scheduled, Late or Pending ``PROMOTION_GATE_UNSTARTED_GRACE_MINUTES`` after it
  was due (no worker, the pool paused, infrastructure that never took it) is cancelled, so it can
  never start and decide twice, and then decided as an *error* like a crashed one
  (:func:`decide_unstarted_run`). A marker set on the run before the cancel stops a run that
  starts in between: the flow reads it before doing anything (:func:`stopped_before_start`).

Why not a suspend timeout: a pause that times out is failed by the server, so the flow never runs
again and nothing records the decision. Why not an automation: it could resume a run only by
reacting to an event, and nothing happens at a deadline. See docs/slack.md.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.context import FlowRunContext
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Cancelled
from promotion_gate.config.settings import Settings, load_settings
from promotion_gate.notifications.error_text import build_error_line
from promotion_gate.notifications.slack_interactions import SignoffAnswer, WaitingPromotion, seal_answer
from promotion_gate.notifications.slack_messages import build_closed_message
from promotion_gate.flows.withdrawn_runs import cancellation_reason, decide_cancelled_run
from promotion_gate.prefect_api.waiting import mark_delivered, read_kept, read_pinned, read_waiting, send_answer, write_waiting
from promotion_gate.slack_api.client import SlackUnavailable, build_slack_client, slack_call
from promotion_gate.slack_api.seal_key import sweeper_key
from pydantic import BaseModel, Field

GATE_FLOW = "promotion-gate"
REQUEST_FLOW = "promotion-request"
ENDED = [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED]
BROKEN = [StateType.FAILED, StateType.CRASHED]
NOT_STARTED = [StateType.SCHEDULED, StateType.PENDING]
SWEPT_KEY = "promotion-gate-swept"
UNSTARTED_KEY = "promotion-gate-unstarted"
NEVER_STARTED = "NeverStarted"  # the name of the Cancelled state of a gate run decided before it started
RETRY_SUFFIX = ":retry"
log = logging.getLogger("promotion_gate.expiry")


class Sweep(BaseModel):
    expired: list[str] = Field(default_factory=list)
    reminded: list[str] = Field(default_factory=list)
    closed: list[str] = Field(default_factory=list)
    delivered: list[str] = Field(default_factory=list)
    decided: list[str] = Field(default_factory=list)
    restarted: list[str] = Field(default_factory=list)
    unstarted: list[str] = Field(default_factory=list)


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
    if state.type == StateType.CANCELLED and state.name == NEVER_STARTED:
        return "Closed: the promotion run never started; it was decided as an error and nothing was promoted"
    if state.type == StateType.CANCELLED:
        return f"Withdrawn: {cancel_reason or state.message or 'the promotion run was cancelled'}"
    if state.type == StateType.COMPLETED:
        return "Closed: the promotion was decided without this sign-off (see the report)"
    return f"Closed: the promotion run {state.name.lower()}; nothing was promoted"


def _gate_runs(client, types: list[StateType], ended_after: datetime | None = None, flow_name: str = GATE_FLOW):
    run_filter = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=types)))
    if ended_after is not None:
        run_filter.end_time = FlowRunFilterEndTime(after_=ended_after)
    return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                                 flow_run_filter=run_filter, limit=200)


def close_messages(record: WaitingPromotion, line: str, settings: Settings) -> WaitingPromotion:
    """Close a promotion's requests from outside its flow: outcome shown, buttons removed, record closed."""
    client = build_slack_client(settings)
    body = build_closed_message(record, line)
    for ref in record.messages:
        try:
            slack_call(f"chat.update for {ref.role}", client.chat_update, channel=ref.channel, ts=ref.ts, **body)
        except SlackUnavailable as exc:
            log.warning("could not close the request of %s in %s: %s", record.key, ref.channel, exc)
    return write_waiting(record.model_copy(update={"status": "closed", "outcome": line}))


close_requests = task(name="close-slack-requests", cache_policy=NO_CACHE)(close_messages)


def close_voided(run_id: str, reason: str, settings: Settings | None = None) -> bool:
    """For the side that voids a gate run (a new push, the label removed): close its Slack
    requests now, without waiting for the next sweep. False when it had none open."""
    record = read_waiting(run_id)
    if record is None or record.status != "waiting":
        return False
    close_messages(record, f"Withdrawn: {reason}", settings or load_settings())  # the voiding side's own, when it has them
    return True


@flow(name="promotion-gate-sweeper", log_prints=True)
def sweep_signoffs(lookback_hours: float = 48, now: datetime | None = None) -> Sweep:
    """Expire, remind and close what is due; a run busy with an answer is left for the next sweep.
    `now` is the sweep's time (the clock by default; tests give it)."""
    now, done, settings = now or datetime.now(timezone.utc), Sweep(), load_settings()  # read once, passed down
    grace = timedelta(minutes=settings.unstarted_grace_minutes)
    with get_client(sync_client=True) as client:
        unstarted = _gate_runs(client, NOT_STARTED)
        waiting = _gate_runs(client, [StateType.PAUSED])
        ended = _gate_runs(client, ENDED, now - timedelta(hours=lookback_hours))
        broken = _gate_runs(client, BROKEN, now - timedelta(hours=lookback_hours))
        broken_requests = _gate_runs(client, BROKEN, now - timedelta(hours=lookback_hours), REQUEST_FLOW)
        cancelled = _gate_runs(client, [StateType.CANCELLED], now - timedelta(hours=lookback_hours))
    key = sweeper_key(settings) if waiting or cancelled else None
    for run in waiting:
        if _deliver_kept(run.id):
            done.delivered.append(str(run.id))
            continue  # the run is busy with the kept answer; what else is due waits for the next sweep
        record = read_pinned(run.id)  # the deadline it was posted with: a newer version cannot put the expiry off
        kind = due(record, now) if record and key else None
        if kind and send_answer(run.id, seal_answer(SignoffAnswer(kind=kind, at=now), str(run.id), key), wait_seconds=0) == "sent":
            (done.expired if kind == "expire" else done.reminded).append(record.key)
    for run in ended:
        record = read_waiting(run.id)
        if record is not None and record.status == "waiting":
            why = cancellation_reason(run, key) if run.state.type == StateType.CANCELLED else None
            done.closed.append(close_requests(record, ended_line(run.state, why), settings).key)
    for run in broken:
        if _guarded(decide_broken_run, run):
            done.decided.append(str(run.id))
    for run in broken_requests:
        if _guarded(restart_request, run, settings):
            done.restarted.append(str(run.id))
    for run in cancelled:  # flows/withdrawn_runs.py: a withdrawal is a decision too
        if _guarded(decide_cancelled_run, run, key):
            done.decided.append(str(run.id))
    for run in unstarted:
        if is_overdue(run, now, grace) and _guarded(decide_unstarted_run, run, now, grace):
            done.unstarted.append(str(run.id))
    get_run_logger().info("sweep: %d expired, %d reminded, %d closed, %d kept answers delivered, %d broken runs "
                          "decided, %d requests restarted, %d never-started runs decided", len(done.expired),
                          len(done.reminded), len(done.closed), len(done.delivered), len(done.decided),
                          len(done.restarted), len(done.unstarted))
    return done


def _guarded(step, run, *args) -> bool:
    """One run's failure (GitHub down, a run of a deleted deployment) never stops the sweep; it is tried again next time."""
    try:
        return step(run, *args)
    except Exception as exc:  # noqa: BLE001 - logged, and the next sweep retries
        log.error("sweep: %s of run %s failed: %s", step.__name__, run.id, build_error_line(exc))
        return False


def _deliver_kept(run_id) -> bool:
    """Resume a waiting run with the oldest answer kept for it; True when one was delivered."""
    for key, answer in read_kept(run_id):
        delivery = send_answer(run_id, answer, wait_seconds=0)
        if delivery == "busy":
            return False
        mark_delivered(run_id, key)  # sent, or the run closed meanwhile (the flow would refuse it anyway)
        return delivery == "sent"
    return False


def _swept(client, run_id) -> bool:
    return bool(client.filter_flow_run_input(run_id, SWEPT_KEY, 1, set()))


def _mark_swept(client, run_id, what: str, key: str = SWEPT_KEY) -> None:
    try:
        client.create_flow_run_input(run_id, key, json.dumps(what), sender="promotion-gate-sweeper")
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code != 409:
            raise


def _has_decision(client, run_id) -> bool:
    found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return any((a.key or "").startswith("decision-") for a in found)


def broken_run_reason(state) -> str:
    """Why a gate run that never decided is an error, in one safe line."""
    what = build_error_line(state.message or "no message", 200)
    return f"the promotion run {state.name.lower()} before it recorded a decision ({what}); nothing was promoted"


def unswept_request(run):
    """The promotion request of a gate run that ended without a decision and was not swept yet,
    or None (swept, decided, or parameters that are not a request: logged)."""
    from promotion_gate.checklists.decision import PromotionRequest

    with get_client(sync_client=True) as client:
        if _swept(client, run.id) or _has_decision(client, run.id):
            return None
    try:
        return PromotionRequest.model_validate((run.parameters or {}).get("request"))
    except ValueError:
        log.error("gate run %s ended %s with parameters that are not a request", run.id, run.state.name)
        return None


def decide_broken_run(run) -> bool:
    """Decide a Crashed or Failed gate run that recorded no decision as an error, with the status,
    comment, report and ledger entry of any decision; once (the run is marked)."""
    return decide_as_error(run, broken_run_reason(run.state), datetime.now(timezone.utc))


# gate runs that never start


def unstarted_since(run) -> datetime | None:
    """When a gate run that has not started was due: when it went Pending, else its scheduled start."""
    state = run.state
    if state is None or state.type not in NOT_STARTED:
        return None
    if state.type == StateType.PENDING:
        return state.timestamp
    return state.state_details.scheduled_time or run.expected_start_time or state.timestamp


def is_overdue(run, now: datetime, grace: timedelta) -> bool:
    since = unstarted_since(run)
    return since is not None and now - since >= grace


def unstarted_reason(run, grace: timedelta) -> str:
    state = run.state
    return (f"the promotion run was never started ({state.name} for more than {grace.total_seconds() / 60:g} min: "
            "no worker took it); it was cancelled and nothing was promoted")


def decide_unstarted_run(run, now: datetime, grace: timedelta) -> bool:
    """Cancel a gate run that never started within `grace`, then decide it as an error; False when it
    started meanwhile (it decides itself). The marker goes on first, then the state is read again: a
    run not started by then reads the marker when it starts and stops (:func:`stopped_before_start`)."""
    reason = unstarted_reason(run, grace)
    with get_client(sync_client=True) as client:
        _mark_swept(client, run.id, reason, UNSTARTED_KEY)
        state = client.read_flow_run(run.id).state
        if state is None or state.type not in NOT_STARTED:  # it started before the marker: let it run
            client.delete_flow_run_input(run.id, UNSTARTED_KEY)
            return False
        result = client.set_flow_run_state(run.id, Cancelled(name=NEVER_STARTED, message=build_error_line(reason, 300)))
        if result.status != SetStateStatus.ACCEPT:  # the marker stays: when it starts, it stops, and ends Cancelled
            return False
    return decide_as_error(run, reason, now)


def stopped_before_start():
    """Inside a gate run, before anything else: the Cancelled state to end with when the sweeper
    decided this run because it had not started (its marker is on the run), else None."""
    context = FlowRunContext.get()
    run = context.flow_run if context else None
    if run is None or run.deployment_id is None:
        return None
    with get_client(sync_client=True) as client:
        if not client.filter_flow_run_input(run.id, UNSTARTED_KEY, 1, set()):
            return None
    return Cancelled(name=NEVER_STARTED, message="the sweeper decided this run as an error before it started")


def never_started(run) -> str | None:
    """For a Cancelled gate run: the reason the sweeper gave when it decided the run had never
    started (its marker on the run), else None (a withdrawal)."""
    with get_client(sync_client=True) as client:
        found = client.filter_flow_run_input(run.id, UNSTARTED_KEY, 1, set())
    if not found and run.state.name != NEVER_STARTED:
        return None
    said = json.loads(found[0].value) if found else None
    return said if isinstance(said, str) and said != "claimed" else "the promotion run was never started; nothing was promoted"


def decide_as_error(run, reason: str, now: datetime) -> bool:
    """Decide a gate run that recorded no decision as an error: status, comment, label, report and
    ledger entry; once (the run is marked, and the error's id is deterministic)."""
    from promotion_gate.checklists.decision import error_decision
    from promotion_gate.flows.promotion import block_promotion, publish_decision, run_settings
    from promotion_gate.prefect_api.run_links import run_url

    request = unswept_request(run)
    if request is None:
        return False
    params = run.parameters or {}
    settings = run_settings(params.get("store"), params.get("policy_path"), params.get("production_branch"))  # as that run's
    request = request.model_copy(update={"run_url": request.run_url or run_url(settings, str(run.id))})
    decision = error_decision(request, reason, now)
    try:
        block_promotion(request, decision, settings)
    except Exception as exc:  # the forge is down too: the recorded decision still says error
        log.error("could not mark %s as blocked: %s", request.key, build_error_line(exc))
    recorded, _ = publish_decision(request, decision, settings)
    with get_client(sync_client=True) as client:
        _mark_swept(client, run.id, recorded.decision_id)
    return True


def restart_request(run, settings: Settings) -> bool:
    """Start a Crashed or Failed ``promotion-request`` run again, once, when it started no gate run."""
    from prefect.deployments import run_deployment
    from promotion_gate.prefect_api.gate_runs import GATE_TAG

    key = run.idempotency_key or ""
    tags = [t for t in run.tags if t.startswith(("pr:", "sha:"))]
    with get_client(sync_client=True) as client:
        if key.endswith(RETRY_SUFFIX) or len(tags) < 2 or _swept(client, run.id):
            return False
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[*tags, GATE_TAG])), limit=1)
        if children:
            return False
        run_deployment(settings.request_deployment, parameters=run.parameters, timeout=0,
                       idempotency_key=f"{key}{RETRY_SUFFIX}", tags=list(run.tags), as_subflow=False)
        _mark_swept(client, run.id, "restarted")
    return True
