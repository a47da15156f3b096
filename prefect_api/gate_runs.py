"""The gate's flow runs, as the Prefect API sees them: start one per key, find them, void them.

A gate run is started with the idempotency key ``{repo}#{pr}@{sha}:{system}`` (the same promotion
is one run, however often it is asked for, while it runs, waits or has promoted); once that run
ended without promoting (an error, a crash, a block, a withdrawal) a new ask of the same commit is
a new attempt, keyed ``…:{system}~2``, ``~3``, … (:func:`attempt_key`). Runs are tagged ``pr:{repo}#{pr}``, ``sha:{sha7}``,
``system:{name}`` and ``promotion-gate``, so a push or a withdrawal finds the runs it makes stale;
a run started for a label event also carries ``delivery:{event identity}`` (github_events.event_identity: the digest of its signed body), so the gateway
(gateway/early_pending.py) and the request run of that event, which both start it, start it once:
whichever comes second finds the run of its delivery, finished or not, and starts nothing.
Voiding sets them Cancelling (a suspended or scheduled run becomes Cancelled at once; a running
one is stopped by its worker) and waits until each is final, so a stopped run cannot write to
GitHub after the gate has said it was voided.

A void is the gate's word only when it is sealed. Anyone who can reach the Prefect API (or the UI)
can cancel a waiting run with any message ("promotion withdrawn by the security lead"), and the
sweeper records every cancelled run as a withdrawn decision (flows/withdrawn_runs.py). So before
it cancels a run, :func:`void_gate_runs` leaves on it a flow run input ``promotion-gate-void``: a
``void`` :class:`SignoffAnswer` holding the reason, sealed for that run with :func:`seal_answer`
and the key the sweeper already seals its reminders and expiries with (``answer_seal_key`` of the
Slack signing secret, which the worker running the ``promotion-request`` flow holds too:
docs/slack.md). The seal binds the run's id and the reason's text: copied onto another run, or
with its reason changed, it no longer holds (:func:`vouched_void`).

Why a flow run input, and not the state message or a tag: the seal, not where it sits, is what an
attacker cannot move (every place is writable through the API; the seal is not secret); the input
keeps the reason and its seal together as one structured value, is written before the cancel (a
sweep that sees the run Cancelled already finds it), stays off the message the operator and Slack
read, and does not depend on Prefect keeping a message on the Cancelled state of a suspended run
(it keeps none). What an attacker can do with the API is delete it: the gate's cancellation is
then recorded as one the gate cannot vouch for, never as the attacker's reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterIdempotencyKey,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Cancelled, Cancelling
from promotion_gate.checklists.decision import PromotionRequest
from promotion_gate.notifications.slack_interactions import SignoffAnswer, seal_answer, seal_holds
from pydantic import ValidationError

GATE_TAG = "promotion-gate"
VOID_KEY = "promotion-gate-void"  # the flow run input holding the gate's sealed reason for cancelling the run
PROMOTED = "Promoted"  # the name of a promoted run's final state (flows.promotion.final_state)
FINAL = [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED]


@dataclass(frozen=True)
class GateRun:
    id: str
    system: str
    commit: str
    started: bool  # False: the key already had a run (a redelivery or a retry)


def pr_tag(repository: str, pull_request: int) -> str:
    return f"pr:{repository}#{pull_request}"


def gate_tags(request: PromotionRequest) -> list[str]:
    return [pr_tag(request.repository, request.pull_request), f"sha:{request.short_sha}", f"system:{request.system}", GATE_TAG]


def delivery_tag(delivery: str) -> str:
    return f"delivery:{delivery}"


def attempt_key(request: PromotionRequest, earlier: list[FlowRun]) -> str | None:
    """The key of a new attempt, or None when an earlier run of this promotion still counts: it is
    running or waiting, or it promoted (re-running never opens a second PR)."""
    for run in earlier:
        state = run.state
        if state is None or not state.is_final() or (state.type == StateType.COMPLETED and state.name == PROMOTED):
            return None
    return request.key if not earlier else f"{request.key}~{len(earlier) + 1}"


def plan_gate_run(client: SyncPrefectClient, request: PromotionRequest,
                  delivery: str | None = None) -> tuple[str | None, GateRun | None]:
    """(the key to start a run with, None) or (None, the run that still counts). A run started for
    ``delivery`` (the same label event) always counts: its second starter must not make it a new
    attempt because it already finished."""
    earlier = fetch_attempts(client, request)
    if delivery:
        mine = [r for r in earlier if delivery_tag(delivery) in (r.tags or [])]
        if mine:
            return None, GateRun(str(mine[0].id), request.system, request.commit, started=False)
    key = attempt_key(request, earlier)
    if key is not None:
        return key, None
    current = next((r for r in earlier if r.state is None or not r.state.is_final()), earlier[0])
    return None, GateRun(str(current.id), request.system, request.commit, started=False)


def launch_gate_run(deployment: str, request: PromotionRequest, key: str, delivery: str | None = None) -> GateRun:
    tags = gate_tags(request) + ([delivery_tag(delivery)] if delivery else [])
    run = run_deployment(deployment, parameters={"request": request.model_dump(mode="json")}, timeout=0,
                         idempotency_key=key, tags=tags, as_subflow=False)
    return GateRun(str(run.id), request.system, request.commit, started=True)


def start_gate_run(client: SyncPrefectClient, deployment: str, request: PromotionRequest,
                   delivery: str | None = None) -> GateRun:
    """Start the gate for one system at one commit, unless a run of it still counts (see attempt_key)."""
    key, current = plan_gate_run(client, request, delivery)
    return current if key is None else launch_gate_run(deployment, request, key, delivery)


def fetch_attempts(client: SyncPrefectClient, request: PromotionRequest) -> list[FlowRun]:
    """Every run of this promotion (its key, and its attempts' keys ``~N``)."""
    tagged = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=gate_tags(request))), limit=200)
    keyed = client.read_flow_runs(flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=[request.key])), limit=1)
    runs = {str(r.id): r for r in [*keyed, *tagged]
            if r.idempotency_key == request.key or (r.idempotency_key or "").startswith(f"{request.key}~")}
    return list(runs.values())


def fetch_open_gate_runs(client: SyncPrefectClient, repository: str, pull_request: int) -> list[FlowRun]:
    """The gate runs of a PR that have not finished (scheduled, running, suspended for sign-off)."""
    return client.read_flow_runs(flow_run_filter=FlowRunFilter(
        tags=FlowRunFilterTags(all_=[pr_tag(repository, pull_request), GATE_TAG]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=FINAL)),
    ))


def void_gate_runs(client: SyncPrefectClient, runs: list[FlowRun], reason: str, wait_seconds: float = 30,
                   key: bytes | None = None) -> list[GateRun]:
    """Cancel `runs`, wait (bounded) until each is final; return what they were evaluating. With
    `key` (the seal key), each run first gets the reason sealed for it (:func:`seal_void`); without,
    the cancellation is one the sweeper cannot tell from anyone's (the caller logs why)."""
    at = datetime.now(timezone.utc)
    for run in runs:
        if key is not None:
            seal_void(client, run.id, reason, at, key)
        client.set_flow_run_state(run.id, Cancelling(message=reason))
    deadline = time.monotonic() + wait_seconds
    pending = {run.id for run in runs}
    while pending and time.monotonic() < deadline:
        pending = {i for i in pending if not client.read_flow_run(i).state.is_final()}
        if pending:
            time.sleep(0.25)
    for run in runs:  # a suspended run becomes Cancelled with no message: keep the reason on it
        state = client.read_flow_run(run.id).state
        if state is not None and state.type == StateType.CANCELLED and not state.message:
            client.set_flow_run_state(run.id, Cancelled(message=reason, name="Withdrawn"), force=True)
    return [_gate_run(run) for run in runs]


def seal_void(client: SyncPrefectClient, run_id, reason: str, at: datetime, key: bytes) -> None:
    """Leave on the run, before it is cancelled, the gate's reason sealed for it (a newer void of the
    same run replaces an older one: the run was still open, so the older cancel did not take)."""
    value = seal_answer(SignoffAnswer(kind="void", at=at, reason=reason), str(run_id), key).model_dump_json()
    try:
        client.create_flow_run_input(run_id, VOID_KEY, value, sender="promotion-gate-void")
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code != 409:
            raise
        client.delete_flow_run_input(run_id, VOID_KEY)
        client.create_flow_run_input(run_id, VOID_KEY, value, sender="promotion-gate-void")


def vouched_void(client: SyncPrefectClient, run_id, key: bytes) -> str | None:
    """The reason the gate sealed for cancelling this run, or None: no void input on it, or one whose
    seal does not hold for this run's id and its reason (copied from another run, reason altered)."""
    try:
        value = client.read_flow_run_input(run_id, VOID_KEY)
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code == 404:
            return None
        raise
    try:
        answer = SignoffAnswer.model_validate_json(value)
    except (ValidationError, ValueError):
        return None
    if answer.kind != "void" or not answer.reason or not seal_holds(answer, str(run_id), key):
        return None
    return answer.reason


def _gate_run(run: FlowRun) -> GateRun:
    request = run.parameters.get("request", {})
    return GateRun(str(run.id), str(request.get("system", "")), str(request.get("commit", "")), started=False)
