"""The gateway sets the pending signal itself (issue 10, point 10; gateway/early_pending.py): the real
gateway served by uvicorn (gateway.app.build_server), handing deliveries to Prefect's test server
(a deployment no worker serves, so whatever appears on GitHub came from the gateway), the fake
GitHub with its real signatures.

The early write is an extra call beyond the request run's budget (tests/test_github_flow.py):
token auth, the file list, the combined status and one status per system (3 calls, 1 write here);
App auth, the file list, the aggregate's lookup and its create. The rows assert those counts.

No timing is asserted: each row waits for the gateway's own count of early writes (``/metrics``)."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid

import httpx
import pytest
from prefect.client.orchestration import get_client
from promotion_gate.config.settings import load_settings
from promotion_gate.flows.dispatch import promotion_request
from promotion_gate.flows.promotion import promotion_gate
from promotion_gate.gateway.app import PrefectStarter, build_app, build_server
from pydantic import SecretStr

from tests.fakes.github_payloads import sign_webhook
from tests.github_support import PROMOTES, SECRET, gate_env, governed_repo, labelled_delivery, serving, wait_for

pytestmark = pytest.mark.usefixtures("prefect_harness")
STATUS = f"promotion-gate/{PROMOTES}"
UNSERVED = "promotion-request/early-pending-test"  # no worker, no runner: its runs stay scheduled


@pytest.fixture(scope="module")
def unserved(prefect_harness):
    promotion_request.to_deployment(name="early-pending-test").apply()
    yield UNSERVED
    _delete_scheduled("early-pending-test")


def _delete_scheduled(deployment_name: str) -> None:
    with get_client(sync_client=True) as client:  # leave nothing scheduled for later tests
        for run in client.read_flow_runs():
            if run.deployment_id and run.state and run.state.is_scheduled() and "promotion-request" in run.tags:
                if client.read_deployment(run.deployment_id).name == deployment_name:
                    client.delete_flow_run(run.id)


class Gate:
    def __init__(self, port: int, app) -> None:
        self.url, self.app = f"http://127.0.0.1:{port}", app

    def post(self, body: bytes, headers: dict) -> httpx.Response:
        return httpx.post(f"{self.url}/github/webhook", content=body, headers=headers, timeout=60)

    def early(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/metrics", timeout=10).json().get("early_pending", {})

    def handled(self, count: int) -> dict[str, int]:
        wait_for(lambda: sum(self.early().values()) >= count, 60, what=f"{count} early pending write(s) handled")
        return self.early()


@contextlib.contextmanager
def gateway(deployment: str):
    settings = load_settings()
    app = build_app(settings, starter=PrefectStarter(deployment), webhook_secret=SecretStr(SECRET))
    server = build_server(app, settings, log_level="warning")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, what="the gateway to start")
    try:
        yield Gate(sock.getsockname()[1], app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def token_env(fake_github, monkeypatch, tmp_path):
    gate_env(monkeypatch, fake_github, tmp_path / "store", GITHUB_RETRIES="6", GATEWAY_PENDING_SECONDS="60")


@pytest.fixture
def repo() -> str:
    return f"acme/early-{uuid.uuid4().hex[:8]}"


def pending_history(fake, repo: str, sha: str) -> list[dict]:
    return [s for s in fake.status_history(repo, sha) if s["context"] == STATUS]


def calls_on(fake, repo: str) -> list[tuple[str, str]]:
    return [(c[0], c[1]) for c in fake.requests if c[1].startswith(f"/repos/{repo}/")]


def test_the_pending_status_appears_with_no_worker_running(fake_github, token_env, unserved, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="early-1")
    with gateway(unserved) as gate:
        answer = gate.post(body, headers)
        assert answer.status_code == 202, answer.text
        assert gate.handled(1) == {"written": 1}
    with get_client(sync_client=True) as client:  # nothing ran it: the status can only be the gateway's
        run = client.read_flow_run(answer.json()["flow_run_id"]) if answer.json()["flow_run_id"] else None
    [status] = pending_history(fake_github, repo, sha)
    assert status["state"] == "pending" and status["description"] == f"evaluating {PROMOTES}: checklist and evidence at this commit"
    runs = _runs_of(repo, number)
    assert len(runs) == 1 and runs[0].state.is_scheduled()
    assert status["target_url"] == f"http://prefect.test/runs/flow-run/{runs[0].id}"  # the request run's own link
    assert run is None or run.id == runs[0].id
    # the extra calls of the early write: the file list, the combined status, one status
    assert calls_on(fake_github, repo) == [("GET", f"/repos/{repo}/pulls/{number}/files"),
                                           ("GET", f"/repos/{repo}/commits/{sha}/status"),
                                           ("POST", f"/repos/{repo}/statuses/{sha}")]


def _runs_of(repo: str, number: int):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[f"pr:{repo}#{number}", "promotion-request"])))


@pytest.mark.parametrize("forge", [
    "wrong secret", "no signature", "body altered after signing", "signature of another body",
])
def test_a_forged_delivery_writes_no_status_and_calls_github_not_at_all(fake_github, token_env, unserved, repo, forge):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id=f"forged-{uuid.uuid4().hex[:6]}")
    if forge == "wrong secret":
        headers = headers | {"X-Hub-Signature-256": sign_webhook(body, "not-the-secret")}
    elif forge == "no signature":
        headers = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    elif forge == "body altered after signing":
        body = body.replace(b'"labeled"', b'"labeled" ', 1)
    else:
        headers = headers | {"X-Hub-Signature-256": sign_webhook(b"{}", SECRET)}
    before = len(fake_github.requests)
    with gateway(unserved) as gate:
        assert gate.post(body, headers).status_code == 401
        assert gate.early() == {}
    assert fake_github.requests[before:] == [] and pending_history(fake_github, repo, sha) == []
    assert _runs_of(repo, number) == []


def test_a_redelivery_writes_no_second_status(fake_github, token_env, unserved, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="again-1")
    with gateway(unserved) as gate:
        first = gate.post(body, headers)
        assert gate.handled(1) == {"written": 1}
        again = gate.post(body, headers)  # GitHub's redelivery: the same X-GitHub-Delivery
        assert first.status_code == again.status_code == 202
        assert gate.handled(2) == {"written": 1, "skipped: already set": 1}
    assert len(pending_history(fake_github, repo, sha)) == 1 and len(_runs_of(repo, number)) == 1
    assert len(fake_github.calls("POST", f"/repos/{repo}/statuses/*")) == 1


def test_a_promoted_commit_labelled_again_keeps_its_success(fake_github, token_env, unserved, repo):
    """The request run starts nothing for a promoted commit, so the gateway must not reopen it."""
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    _set_status(fake_github, repo, sha, "success")
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="relabel-1")
    with gateway(unserved) as gate:
        assert gate.post(body, headers).status_code == 202
        assert gate.handled(1) == {"skipped: already set": 1}
    assert [s["state"] for s in pending_history(fake_github, repo, sha)] == ["success"]


def _set_status(fake, repo: str, sha: str, state: str) -> None:
    from promotion_gate.github_api.client import Retrying, open_github
    from promotion_gate.github_api.writes import set_status
    from promotion_gate.notifications.github_bodies import CommitStatus

    gh = open_github(load_settings(), repo).get_repo(repo, lazy=True)
    set_status(Retrying(retries=0), gh, sha, CommitStatus(state, STATUS, "decided", None))


def test_github_down_during_the_early_write_still_202_and_the_request_run_sets_it(fake_github, token_env, repo):
    """The early write fails (GitHub 502 on the status, no retry); the delivery was answered 202 and
    the request run, once a worker runs it, sets the pending status, and the gate decides."""
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="down-1")
    fake_github.fail_next(f"POST /repos/{repo}/statuses/*", 502, times=1)
    with serving(promotion_request, promotion_gate):
        with gateway("promotion-request/promotion-request") as gate:
            assert gate.post(body, headers).status_code == 202
            assert gate.handled(1) == {"failed": 1}
        wait_for(lambda: fake_github.statuses(repo, sha).get(STATUS, {}).get("state") == "success", 120,
                 what="the decision")
    states = [s["state"] for s in pending_history(fake_github, repo, sha)]
    assert states[0] == "success" and "pending" in states[1:]  # the request run's pending, after the early one failed
    assert [c.status for c in fake_github.calls("POST", f"/repos/{repo}/statuses/*")][0] == 502


def test_with_a_github_app_the_aggregate_check_run_is_opened_once(fake_github, monkeypatch, tmp_path, unserved, repo):
    from tests.github_support import as_github_app

    gate_env(monkeypatch, fake_github, tmp_path / "store", GATEWAY_PENDING_SECONDS="60")
    as_github_app(monkeypatch, fake_github, tmp_path)
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    fake_github.add_installation(7, 42, "acme", repositories=[repo])
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="app-1")
    with gateway(unserved) as gate:
        assert gate.post(body, headers).status_code == 202
        assert gate.handled(1) == {"written": 1}
        assert gate.post(body, headers).status_code == 202  # redelivered
        assert gate.handled(2) == {"written": 1, "skipped: already set": 1}
    from tests.fakes.github_routes_checks import check_runs

    runs = [r for r in check_runs(fake_github, repo, sha) if r["name"] == "promotion-gate"]
    assert len(runs) == 1 and runs[0]["status"] == "in_progress"
    assert runs[0]["external_id"] == f"{repo}#{number}@{sha}"  # the request run's aggregate key: it edits this run
    assert fake_github.status_history(repo, sha) == []  # an App writes check runs, not statuses


# what the early write refuses to do, called as the route calls it (no Prefect run needed)


@pytest.mark.parametrize("row", ["a push, not a label", "a run a worker has started", "past the deadline",
                                 "a PR that touches no system"])
def test_rows_the_early_write_leaves_to_the_request_run(fake_github, token_env, repo, row):
    from promotion_gate.gateway.early_pending import EarlyPending
    from promotion_gate.gateway.handoff import Started
    from promotion_gate.notifications.github_events import Promote, Supersede

    sha, number = governed_repo(fake_github, *(() if row == "a PR that touches no system" else (PROMOTES,)), repo=repo)
    now = [100.0]
    early = EarlyPending.from_settings(load_settings())
    early.clock = lambda: now[0]
    ask = Promote(repo, number, sha, "dana", "alice", "row-1")
    before = len(fake_github.requests)
    if row == "a push, not a label":
        early.after_start(Supersede(repo, number, sha, "dana", "b" * 40, "alice"), Started("run-1", True), 100.0)
        expected, calls = "skipped: not a new label", 0
    elif row == "a run a worker has started":
        early.after_start(ask, Started("run-1", False), 100.0)
        expected, calls = "skipped: the run has started", 0
    elif row == "past the deadline":
        now[0] = 100.0 + early.settings.gateway_pending_seconds + 1
        early.outcomes[early.write(ask, "run-1", 100.0)] += 1
        expected, calls = "skipped: too late", 0
    else:
        early.outcomes[early.write(ask, "run-1", 100.0)] += 1
        expected, calls = "skipped: no system", 1  # the file list only
    assert early.metrics() == {expected: 1} and early.in_flight == set()
    assert len(fake_github.requests) - before == calls and fake_github.status_history(repo, sha) == []
