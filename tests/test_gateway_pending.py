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
from promotion_gate.notifications.github_events import event_identity
from pydantic import SecretStr

from tests.fakes.github_payloads import sign_webhook
from tests.github_support import (
    PROMOTES, SECRET, delete_scheduled, gate_env, governed_repo, labelled_delivery, relabelled_delivery, serving, wait_for,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")
STATUS = f"promotion-gate/{PROMOTES}"
UNSERVED = "promotion-request/early-pending-test"  # no worker, no runner: its runs stay scheduled
UNSERVED_GATE = "promotion-gate/early-gate-test"  # the gate runs the gateway starts here stay scheduled too


@pytest.fixture(scope="module")
def unserved(prefect_harness):
    promotion_request.to_deployment(name="early-pending-test").apply()
    promotion_gate.to_deployment(name="early-gate-test").apply()
    yield UNSERVED
    delete_scheduled("early-pending-test")
    delete_scheduled("early-gate-test")


class Gate:
    def __init__(self, port: int, app) -> None:
        self.url, self.app = f"http://127.0.0.1:{port}", app

    def post(self, body: bytes, headers: dict) -> httpx.Response:
        return httpx.post(f"{self.url}/github/webhook", content=body, headers=headers, timeout=60)

    def early(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/metrics", timeout=10).json().get("early_pending", {})

    def gates(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/metrics", timeout=10).json().get("early_gates", {})

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
    gate_env(monkeypatch, fake_github, tmp_path / "store", GITHUB_RETRIES="6", GATEWAY_PENDING_SECONDS="60",
             GATE_DEPLOYMENT=UNSERVED_GATE)


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
        wait_for(lambda: gate.gates() == {"started": 1}, 30, what="the gateway's gate run")
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


def _runs_of(repo: str, number: int, kind: str = "promotion-request"):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[f"pr:{repo}#{number}", kind])))


def _gate_runs_of(repo: str, number: int):
    return _runs_of(repo, number, "promotion-gate")


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
        assert gate.gates() == {}
    assert fake_github.requests[before:] == [] and pending_history(fake_github, repo, sha) == []
    assert _runs_of(repo, number) == [] and _gate_runs_of(repo, number) == []


def test_a_redelivery_writes_no_second_status(fake_github, token_env, unserved, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="again-1")
    with gateway(unserved) as gate:
        first = gate.post(body, headers)
        assert gate.handled(1) == {"written": 1}
        again = gate.post(body, headers)  # GitHub's redelivery: the same X-GitHub-Delivery
        assert first.status_code == again.status_code == 202
        assert gate.handled(2) == {"written": 1, "skipped: already set": 1}
        wait_for(lambda: gate.gates() == {"started": 1, "found": 1}, 30, what="both gate starts")
    assert len(pending_history(fake_github, repo, sha)) == 1 and len(_runs_of(repo, number)) == 1
    assert len(fake_github.calls("POST", f"/repos/{repo}/statuses/*")) == 1
    assert len(_gate_runs_of(repo, number)) == 1


def test_a_promoted_commit_labelled_again_keeps_its_success(fake_github, token_env, unserved, repo):
    """The request run starts nothing for a promoted commit, so the gateway must not reopen it."""
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    _set_status(fake_github, repo, sha, "success")
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="relabel-1")
    with gateway(unserved) as gate:
        assert gate.post(body, headers).status_code == 202
        assert gate.handled(1) == {"skipped: already set": 1}
        wait_for(lambda: gate.gates() == {"started": 1}, 30, what="the gateway's gate run")
    assert [s["state"] for s in pending_history(fake_github, repo, sha)] == ["success"]
    assert len(_gate_runs_of(repo, number)) == 1  # nothing had promoted in Prefect: the gateway's own start


def _set_status(fake, repo: str, sha: str, state: str) -> None:
    from promotion_gate.github_api.client import Retrying, open_github
    from promotion_gate.github_api.writes import set_status
    from promotion_gate.notifications.github_bodies import CommitStatus

    gh = open_github(load_settings(), repo).get_repo(repo, lazy=True)
    set_status(Retrying(retries=0), gh, sha, CommitStatus(state, STATUS, "decided", None))


def test_github_down_during_the_early_write_still_202_and_the_request_run_sets_it(fake_github, token_env, repo,
                                                                                   monkeypatch):
    """The early write fails (GitHub 502 on the status, no retry); the delivery was answered 202 and
    the request run, once a worker runs it, sets the pending status, starts the gate run the
    gateway did not, and the gate decides."""
    monkeypatch.setenv("PROMOTION_GATE_GATE_DEPLOYMENT", "promotion-gate/promotion-gate")  # served below
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="down-1")
    fake_github.fail_next(f"POST /repos/{repo}/statuses/*", 502, times=1)
    with serving(promotion_request, promotion_gate):
        with gateway("promotion-request/promotion-request") as gate:
            assert gate.post(body, headers).status_code == 202
            assert gate.handled(1) == {"failed": 1}
            assert gate.gates() == {}  # no signal on GitHub: no gate run from the gateway
        wait_for(lambda: fake_github.statuses(repo, sha).get(STATUS, {}).get("state") == "success", 120,
                 what="the decision")
    states = [s["state"] for s in pending_history(fake_github, repo, sha)]
    assert states[0] == "success" and "pending" in states[1:]  # the request run's pending, after the early one failed
    assert [c.status for c in fake_github.calls("POST", f"/repos/{repo}/statuses/*")][0] == 502


def test_with_a_github_app_the_aggregate_check_run_is_opened_once(fake_github, monkeypatch, tmp_path, unserved, repo):
    from tests.github_support import as_github_app

    gate_env(monkeypatch, fake_github, tmp_path / "store", GATEWAY_PENDING_SECONDS="60", GATE_DEPLOYMENT=UNSERVED_GATE)
    as_github_app(monkeypatch, fake_github, tmp_path)
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    fake_github.add_installation(7, 42, "acme", repositories=[repo])
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="app-1")
    with gateway(unserved) as gate:
        assert gate.post(body, headers).status_code == 202
        assert gate.handled(1) == {"written": 1}
        assert gate.post(body, headers).status_code == 202  # redelivered
        assert gate.handled(2) == {"written": 1, "skipped: already set": 1}
        wait_for(lambda: gate.gates() == {"started": 1, "found": 1}, 30, what="both gate starts")
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
        early.outcomes[early.signal(ask, "run-1", 100.0)[0]] += 1
        expected, calls = "skipped: too late", 0
    else:
        early.outcomes[early.signal(ask, "run-1", 100.0)[0]] += 1
        expected, calls = "skipped: no system", 1  # the file list only
    assert early.metrics() == {expected: 1} and early.in_flight == set()
    assert len(fake_github.requests) - before == calls and fake_github.status_history(repo, sha) == []


def test_the_early_write_skips_a_pr_github_lists_only_in_part(fake_github, token_env, repo):
    """Past GitHub's 3000 files a system could be unseen: no early signal for the systems it saw
    (the request run refuses the PR, the lock guard fails it)."""
    from promotion_gate.gateway.early_pending import EarlyPending
    from promotion_gate.notifications.github_events import Promote

    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    sha = fake_github.commit_files(repo, "feature", {f"aa-vendor/f{i:04d}.txt": b"x\n" for i in range(3000)}, "vendor")
    early = EarlyPending.from_settings(load_settings())
    early.clock = lambda: 100.0
    outcome, systems = early.signal(Promote(repo, number, sha, "dana", "alice", "big-1"), "run-1", 100.0)
    assert (outcome, systems) == ("failed", []) and fake_github.status_history(repo, sha) == []


# the gateway starts the label's gate runs itself (gateway_early_gates): once, whoever comes second


def _request_run(repo: str, number: int, sha: str, delivery: str | None) -> list[str]:
    """The request run of the same label event, run in-process as a worker would run it."""
    return promotion_request(action="promote", repository=repo, pull_request=number, head_sha=sha, sender="dana",
                             author="alice", delivery=delivery)


def _end_as_blocked(run_id) -> None:
    from prefect.states import Completed

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Completed(name="Blocked", message="blocked: 1 item failed"), force=True)


@pytest.mark.parametrize("row", ["the gateway's run is still scheduled", "the gateway's run has already ended blocked"])
def test_the_gateway_starts_the_gate_run_and_the_request_run_of_that_delivery_starts_none(
        fake_github, token_env, unserved, repo, row):
    """A second starter must find the first one's run: were it to look only for an unfinished run,
    a quick block would look like a past attempt and the label would be evaluated twice (~2)."""
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="start-1")
    with gateway(unserved) as gate:
        assert gate.post(body, headers).status_code == 202
        assert gate.handled(1) == {"written": 1}
        wait_for(lambda: gate.gates() == {"started": 1}, 30, what="the gateway's gate run")
    [run] = _gate_runs_of(repo, number)
    assert run.state.is_scheduled() and run.idempotency_key == f"{repo}#{number}@{sha}:{PROMOTES}"
    assert f"delivery:{event_identity(body)}" in run.tags and f"system:{PROMOTES}" in run.tags
    request = run.parameters["request"]
    assert (request["system"], request["commit"], request["requester"], request["author"]) == (PROMOTES, sha, "dana", "alice")
    if row == "the gateway's run has already ended blocked":
        _end_as_blocked(run.id)
    statuses_before = len(fake_github.calls("POST", f"/repos/{repo}/statuses/*"))
    assert _request_run(repo, number, sha, event_identity(body)) == [str(run.id)]
    assert [r.id for r in _gate_runs_of(repo, number)] == [run.id]
    assert len(fake_github.calls("POST", f"/repos/{repo}/statuses/*")) == statuses_before  # no pending over a decision


def test_a_new_label_after_a_block_is_a_new_attempt_started_once(fake_github, token_env, unserved, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    with gateway(unserved) as gate:
        body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="first-label")
        first_label = event_identity(body)
        assert gate.post(body, headers).status_code == 202
        wait_for(lambda: gate.gates() == {"started": 1}, 60, what="the first gate run")
        [first] = _gate_runs_of(repo, number)
        _end_as_blocked(first.id)
        _set_status(fake_github, repo, sha, "failure")  # what the blocked run wrote
        body, headers = relabelled_delivery(fake_github, number, repo=repo, delivery_id="second-label")
        second_label = event_identity(body)
        assert gate.post(body, headers).status_code == 202
        wait_for(lambda: gate.gates() == {"started": 2}, 60, what="the second gate run")
    second = next(r for r in _gate_runs_of(repo, number) if r.id != first.id)
    assert second.idempotency_key == f"{repo}#{number}@{sha}:{PROMOTES}~2" and f"delivery:{second_label}" in second.tags
    _end_as_blocked(second.id)
    assert _request_run(repo, number, sha, first_label) == [str(first.id)]  # a late request run of the first label
    assert _request_run(repo, number, sha, second_label) == [str(second.id)]
    assert len(_gate_runs_of(repo, number)) == 2


@pytest.mark.parametrize("row", ["early gate starts switched off", "no such gate deployment"])
def test_rows_the_gateway_leaves_the_gate_runs_to_the_request_run(fake_github, token_env, unserved, repo, monkeypatch, row):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    if row == "early gate starts switched off":
        monkeypatch.setenv("PROMOTION_GATE_GATEWAY_EARLY_GATES", "false")
    if row == "no such gate deployment":
        monkeypatch.setenv("PROMOTION_GATE_GATE_DEPLOYMENT", "promotion-gate/not-deployed")
    body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="left-1")
    expected = {"early gate starts switched off": "skipped: off", "no such gate deployment": "failed"}[row]
    with gateway(unserved) as gate:
        assert gate.post(body, headers).status_code == 202
        assert gate.handled(1) == {"written": 1}  # the pending signal is set all the same
        wait_for(lambda: gate.gates() == {expected: 1}, 30, what=f"the gate start outcome {expected!r}")
    assert _gate_runs_of(repo, number) == [] and len(pending_history(fake_github, repo, sha)) == 1
