"""The gateway handing deliveries to a real Prefect server (the test harness): one flow run per
key, however often GitHub delivers; and `promotion-gate serve` refusing to start half-configured."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
import warnings

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterIdempotencyKey
from pydantic import SecretStr

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from promotion_gate.flows.dispatch import promotion_request
from promotion_gate.config.settings import Settings
from promotion_gate.gateway.app import PrefectStarter, build_app
from promotion_gate.notifications.github_events import event_identity
from tests.github_support import PROMOTES, ROOT, SECRET, governed_repo, labelled_delivery, relabelled_delivery

DEPLOYMENT = "promotion-request/gateway-test"  # not served by any runner: its runs stay scheduled


@pytest.fixture(scope="module")
def deployment(prefect_harness):
    promotion_request.to_deployment(name="gateway-test").apply()
    yield DEPLOYMENT
    with get_client(sync_client=True) as client:  # leave nothing scheduled for later tests
        for run in client.read_flow_runs():
            if run.deployment_id and run.state and run.state.is_scheduled() and "promotion-request" in run.tags:
                client.delete_flow_run(run.id)


def settings(ack: float = 5) -> Settings:
    return Settings(github_webhook_secret=SecretStr(SECRET), gateway_ack_seconds=ack)


@pytest.fixture
def gateway(deployment):
    app = build_app(settings(), starter=PrefectStarter(deployment))
    with TestClient(app) as client:
        yield client


def test_a_delivery_starts_one_run_and_a_redelivery_or_a_replay_finds_it(gateway, fake_github):
    """A redelivery resends the signed body, and so does a replay under another X-GitHub-Delivery
    (the header is not signed): the same run. The label removed and added again is a new event, a
    new body: a new request run (the gate run it starts is deduplicated by prefect_api/gate_runs.py)."""
    repo = f"acme/models-{uuid.uuid4().hex[:8]}"
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="delivery-1")
    first = gateway.post("/github/webhook", content=body, headers=headers)
    again = gateway.post("/github/webhook", content=body, headers=headers)
    replay = gateway.post("/github/webhook", content=body, headers=headers | {"X-GitHub-Delivery": "delivery-2"})
    relabel = gateway.post("/github/webhook", **_as_posted(relabelled_delivery(fake_github, number, repo=repo)))
    assert first.status_code == again.status_code == replay.status_code == relabel.status_code == 202
    assert first.json()["flow_run_id"] == again.json()["flow_run_id"] == replay.json()["flow_run_id"]
    assert relabel.json()["flow_run_id"] != first.json()["flow_run_id"]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(first.json()["flow_run_id"])
    assert run.idempotency_key == f"{repo}#{number}@{sha}/{event_identity(body)}"
    assert run.parameters == {"action": "promote", "repository": repo, "pull_request": number, "head_sha": sha,
                              "sender": "dana", "author": "alice", "delivery": event_identity(body)}
    assert set(run.tags) >= {f"pr:{repo}#{number}", f"sha:{sha[:7]}", "promotion-request"}


def _as_posted(delivery: tuple[bytes, dict]) -> dict:
    return {"content": delivery[0], "headers": delivery[1]}


def test_fifty_concurrent_deliveries_of_ten_prs_make_ten_runs(deployment, fake_github):
    repo = f"acme/models-{uuid.uuid4().hex[:8]}"
    fake_github.create_repo(repo)
    deliveries = []
    for i in range(10):
        sha = fake_github.commit_files(repo, f"b{i}", {f"ai-systems/{PROMOTES}/x.txt": f"{i}\n"})
        number = fake_github.open_pull(repo, f"b{i}", "main", f"PR {i}", "alice", labels=("promote:production",))
        deliveries += [labelled_delivery(fake_github, number, repo=repo)] * 5
    app = build_app(settings(ack=0), starter=PrefectStarter(deployment))  # answer at once, start after

    async def deliver_all():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gate") as client:
                return await asyncio.gather(*(client.post("/github/webhook", content=b, headers=h) for b, h in deliveries))

    responses = asyncio.run(deliver_all())  # returns once the app has shut down: every start done
    assert {r.status_code for r in responses} == {202}
    keys = {r.json()["key"] for r in responses}
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=list(keys))))
    assert len(keys) == 10 and {run.idempotency_key for run in runs} == keys and len(runs) == 10


def run_serve(env: dict, *args: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PROMOTION_GATE_", "PREFECT_API_URL"))}
    return subprocess.run([sys.executable, "-m", "promotion_gate.cli", "serve", "--port", "0", *args], cwd=ROOT,
                          env=base | env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, message", [
    ({"PREFECT_API_URL": "http://127.0.0.1:9/api"},
     "error: setting PROMOTION_GATE_GITHUB_WEBHOOK_SECRET is required (or PROMOTION_GATE_GITHUB_WEBHOOK_SECRET_BLOCK, "
     "the name of a Prefect Secret block)"),
    ({"PROMOTION_GATE_GITHUB_WEBHOOK_SECRET": "s"},
     "error: setting PREFECT_API_URL is required: the gateway hands each promotion to a Prefect server"),
    ({"PROMOTION_GATE_GITHUB_API_URL": "ftp://github", "PROMOTION_GATE_GITHUB_WEBHOOK_SECRET": "s"},
     "error: setting PROMOTION_GATE_GITHUB_API_URL: Value error, must be an http(s) URL"),
    ({"PROMOTION_GATE_GITHUB_RETRIES": "many", "PROMOTION_GATE_GITHUB_WEBHOOK_SECRET": "s"},
     "error: setting PROMOTION_GATE_GITHUB_RETRIES: Input should be a valid integer, unable to parse string as an integer"),
])
def test_serve_refuses_to_start_with_one_line_and_exit_2(env, message):
    done = run_serve(env)
    assert (done.returncode, done.stderr.strip(), done.stdout) == (2, message, "")
