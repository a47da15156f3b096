"""The gate's flow runs, as the Prefect API sees them: start one per key, find them, void them.

A gate run is started with the idempotency key ``{repo}#{pr}@{sha}:{system}`` (the same promotion
is one run, however often it is asked for) and tagged ``pr:{repo}#{pr}``, ``sha:{sha7}``,
``system:{name}`` and ``promotion-gate``, so a push or a withdrawal finds the runs it makes stale.
Voiding sets them Cancelling (a suspended or scheduled run becomes Cancelled at once; a running
one is stopped by its worker) and waits until each is final, so a stopped run cannot write to
GitHub after the gate has said it was voided.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter, FlowRunFilterIdempotencyKey, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from promotion_gate.checklists.decision import PromotionRequest

GATE_TAG = "promotion-gate"
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


def start_gate_run(client: SyncPrefectClient, deployment: str, request: PromotionRequest) -> GateRun:
    """Start the gate for one system at one commit, unless its key already has a run."""
    found = client.read_flow_runs(flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=[request.key])), limit=1)
    if found:
        return GateRun(str(found[0].id), request.system, request.commit, started=False)
    run = run_deployment(deployment, parameters={"request": request.model_dump(mode="json")}, timeout=0,
                         idempotency_key=request.key, tags=gate_tags(request), as_subflow=False)
    return GateRun(str(run.id), request.system, request.commit, started=True)


def fetch_open_gate_runs(client: SyncPrefectClient, repository: str, pull_request: int) -> list[FlowRun]:
    """The gate runs of a PR that have not finished (scheduled, running, suspended for sign-off)."""
    return client.read_flow_runs(flow_run_filter=FlowRunFilter(
        tags=FlowRunFilterTags(all_=[pr_tag(repository, pull_request), GATE_TAG]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(not_any_=FINAL)),
    ))


def void_gate_runs(client: SyncPrefectClient, runs: list[FlowRun], reason: str, wait_seconds: float = 30) -> list[GateRun]:
    """Cancel `runs`, wait (bounded) until each is final; return what they were evaluating."""
    for run in runs:
        client.set_flow_run_state(run.id, Cancelling(message=reason))
    deadline = time.monotonic() + wait_seconds
    pending = {run.id for run in runs}
    while pending and time.monotonic() < deadline:
        pending = {i for i in pending if not client.read_flow_run(i).state.is_final()}
        if pending:
            time.sleep(0.25)
    return [_gate_run(run) for run in runs]


def _gate_run(run: FlowRun) -> GateRun:
    request = run.parameters.get("request", {})
    return GateRun(str(run.id), str(request.get("system", "")), str(request.get("commit", "")), started=False)
