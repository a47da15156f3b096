"""The gateway under attack: the real app served by uvicorn on 127.0.0.1 (the server `promotion-gate
serve` runs, gateway.app.build_server), requests signed exactly as GitHub and Slack sign them, or
forged, oversized, malformed, slow. Every row asserts the HTTP answer, what was recorded (the
refusal counters at /metrics) and what was not (no promotion started, no input on the run).

Speeds are never asserted: the slow-client rows run with a one-second deadline and assert that the
connection was closed, however long that took."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from pydantic import SecretStr

from promotion_gate.config.settings import Settings, load_settings
from promotion_gate.gateway.app import build_app, build_server
from promotion_gate.notifications.slack_interactions import ACTION_APPROVE, MessageRef, SignoffTarget, WaitingPromotion, interaction_id
from promotion_gate.prefect_api.waiting import TAKEN_PREFIX
from tests.fakes.fixtures import fake_slack, slack_server  # noqa: F401
from tests.fakes.github_payloads import sign_webhook
from tests.fakes.slack_payloads import block_actions_payload, form_encode, sign_slack, signed_headers
from tests.github_support import PROMOTES, REPO, SECRET as GITHUB_SECRET, governed_repo, labelled_delivery
from tests.slack_support import SECRET as SLACK_SECRET, slack_env, wait_for  # noqa: F401
from tests.test_gateway_webhook import Recorder

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


# the gateway, served for real


class Gate:
    def __init__(self, port: int, starter: Recorder) -> None:
        self.port, self.starter, self.url = port, starter, f"http://127.0.0.1:{port}"

    def metrics(self) -> dict:
        return httpx.get(f"{self.url}/metrics").json()

    def refused(self, route: str) -> dict[str, int]:
        return self.metrics()["refused"].get(route, {})

    def post(self, path: str, body: bytes, headers: dict) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", content=body, headers=headers, timeout=60)


@contextlib.contextmanager
def serving(settings: Settings):
    starter = Recorder()
    app = build_app(settings, starter=starter, webhook_secret=SecretStr(GITHUB_SECRET))
    server = build_server(app, settings, log_level="warning")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the gateway to start")
    try:
        yield Gate(sock.getsockname()[1], starter)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def github_settings(**limits) -> Settings:
    return Settings(github_webhook_secret=SecretStr(GITHUB_SECRET), **limits)


@pytest.fixture
def gate():
    with serving(github_settings()) as gate:
        yield gate


def exchange(gate: Gate, head: str, body: bytes = b"", timeout: float = 120) -> tuple[int | None, dict, bool]:
    """One raw HTTP/1.1 exchange: send `head` and `body`, then read until the server closes.
    (status or None when nothing came back, headers, whether the server closed the connection)."""
    with socket.create_connection(("127.0.0.1", gate.port)) as conn:
        conn.settimeout(timeout)
        conn.sendall(head.encode("latin-1") + body)
        data, closed = b"", True
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            closed = False
    if not data:
        return None, {}, closed
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, closed


def webhook_head(length: int | None, *, signed: str | None = "sha256=" + "0" * 64, chunked: bool = False,
                 content_type: str = "application/json") -> str:
    head = f"POST /github/webhook HTTP/1.1\r\nHost: gate\r\nConnection: close\r\nContent-Type: {content_type}\r\n"
    head += "X-GitHub-Event: pull_request\r\n"
    head += f"X-Hub-Signature-256: {signed}\r\n" if signed else ""
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {length}\r\n"
    return head + "\r\n"


def signed_webhook(body: bytes, **headers) -> dict:
    return {"Content-Type": "application/json", "X-GitHub-Event": "pull_request",
            "X-Hub-Signature-256": sign_webhook(body, GITHUB_SECRET)} | headers


# GitHub: /github/webhook


def test_an_unsigned_or_forged_delivery_is_401_starts_nothing_and_is_counted(gate, fake_github):
    _, number = governed_repo(fake_github, PROMOTES)
    body, headers = labelled_delivery(fake_github, number)
    unsigned = {k: v for k, v in headers.items() if not k.lower().startswith("x-hub-signature")}
    forged = headers | {"X-Hub-Signature-256": sign_webhook(body, "a guess")}
    assert [gate.post("/github/webhook", body, h).status_code for h in (unsigned, forged)] == [401, 401]
    assert gate.starter.asks == [] and gate.refused("github") == {"unsigned": 2}
    assert gate.post("/github/webhook", body, headers).status_code == 202  # the same delivery, signed
    assert len(gate.starter.asks) == 1


@pytest.mark.parametrize("case, status, counted", [
    ("Content-Length above 25 MB, nothing sent", 413, "too_large"),
    ("chunked, no length, past 25 MB", 413, "too_large"),
    ("deep JSON, signed", 400, None),
    ("not UTF-8, signed", 400, None),
    ("not UTF-8, unsigned", 401, "unsigned"),
    ("a form body, signed", 400, "content_type"),
])
def test_malformed_and_oversized_deliveries_are_4xx_and_start_nothing(gate, case, status, counted):
    if case.startswith("Content-Length above"):
        answer = exchange(gate, webhook_head(26 * MB))
    elif case.startswith("chunked"):
        chunk = b" " * MB
        framed = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(25)) + b"1\r\n \r\n"  # 25 MB + 1 byte
        answer = exchange(gate, webhook_head(None, chunked=True), framed)
    else:
        body = {"deep JSON, signed": b"[" * 100_000 + b"]" * 100_000,
                "a form body, signed": b"payload=%7B%7D"}.get(case, b'{"action": "labeled", "x": "\xff\xfe"}')
        headers = signed_webhook(body)
        if case == "a form body, signed":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if case.endswith("unsigned"):
            del headers["X-Hub-Signature-256"]
        response = gate.post("/github/webhook", body, headers)
        answer = (response.status_code, dict(response.headers), True)
    assert answer[0] == status
    assert gate.starter.asks == []
    assert gate.refused("github") == ({counted: 1} if counted else {})


def test_a_deep_signed_json_is_refused_by_name():
    with serving(github_settings()) as gate:
        body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
        response = gate.post("/github/webhook", body, signed_webhook(body))
    assert (response.status_code, response.json()) == (400, {"error": "the body is nested too deeply"})


def test_a_slow_body_is_cut_off_and_the_connection_closed():
    with serving(github_settings(gateway_read_seconds=1)) as gate:
        status, headers, closed = exchange(gate, webhook_head(1000), b"{")  # one byte of a thousand, then silence
        assert (status, headers.get("connection"), closed) == (408, "close", True)
        assert gate.refused("github") == {"slow": 1} and gate.starter.asks == []


def test_slow_headers_are_cut_off_without_an_answer():
    with serving(github_settings(gateway_header_seconds=1)) as gate:
        status, _, closed = exchange(gate, "POST /github/webhook HTTP/1.1\r\nHost: gate\r\nX-Git")  # never finished
        assert (status, closed) == (None, True)
        assert gate.refused("http") == {"slow_headers": 1}
        assert httpx.get(f"{gate.url}/healthz").json() == {"ok": True}


def test_when_every_large_reader_is_taken_the_next_large_body_is_503_and_a_real_delivery_still_passes(fake_github):
    with serving(github_settings(gateway_github_bodies=1, gateway_read_seconds=5)) as gate:
        holder = threading.Thread(target=exchange, args=(gate, webhook_head(2 * MB), b"{"))  # holds the one large reader
        holder.start()
        wait_for(lambda: gate.metrics()["reading"]["github"] == 1, "the slow body to hold the reader")
        # refused at once, not queued: from the head alone (a client still sending 2 MB when the
        # answer comes may meet the close as a reset before it reads the 503, so only the head is sent)
        status, headers, _ = exchange(gate, webhook_head(2 * MB, signed=sign_webhook(b"{}", GITHUB_SECRET)))
        assert (status, headers.get("retry-after")) == (503, "5")
        _, number = governed_repo(fake_github, PROMOTES)
        assert gate.post("/github/webhook", *labelled_delivery(fake_github, number)).status_code == 202  # a label still counts
        assert httpx.get(f"{gate.url}/healthz").json() == {"ok": True}  # still answering
        holder.join()
        assert gate.refused("github") == {"busy": 1, "slow": 1} and len(gate.starter.asks) == 1


# start-up


@pytest.mark.parametrize("name", ["GITHUB_WEBHOOK_SECRET", "SLACK_SIGNING_SECRET"])
@pytest.mark.parametrize("blank", [" ", "\t \n"])
def test_a_blank_secret_stops_start_up_with_one_line_naming_it(name, blank):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMOTION_GATE_", "PREFECT_API_URL"))}
    env |= {"PROMOTION_GATE_GITHUB_WEBHOOK_SECRET": "webhook-secret", "PREFECT_API_URL": "http://127.0.0.1:9/api",
            "PROMOTION_GATE_SIGNOFF_CHANNEL": "slack", "PROMOTION_GATE_SLACK_BOT_TOKEN": "xoxb-1",
            "PROMOTION_GATE_SLACK_SIGNING_SECRET": "signing-secret", "PROMOTION_GATE_SLACK_TEAM_ID": "T0FAKE",
            f"PROMOTION_GATE_{name}": blank}
    done = subprocess.run([sys.executable, "-m", "promotion_gate.cli", "serve", "--port", "0"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (
        2, f"error: setting PROMOTION_GATE_{name} is blank (only whitespace): set the secret itself")


# Slack: /slack/interactions, against a run waiting on the Prefect server


@pytest.fixture
def slack_gate(slack_env, monkeypatch, prefect_harness):
    monkeypatch.setenv("PROMOTION_GATE_SLACK_TEAM_ID", "T0FAKE")
    monkeypatch.setenv("PROMOTION_GATE_GATEWAY_SLACK_BODIES", "64")
    monkeypatch.setenv("PROMOTION_GATE_SLACK_CLICK_WAIT_SECONDS", "5")
    with serving(load_settings()) as gate:
        yield gate


@pytest.fixture
def waiting_run(prefect_harness) -> WaitingPromotion:
    """A flow run paused for sign-off, with the record the flow publishes (prefect_api.waiting)."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Paused

    from promotion_gate.prefect_api.waiting import write_waiting

    @flow(name="attack-target")
    def attack_target() -> None:
        pass

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(attack_target)
        client.set_flow_run_state(run.id, Paused(timeout_seconds=3600, pause_key="signoff"), force=True)
    at = datetime.now(timezone.utc)
    record = WaitingPromotion(run=str(run.id), key="acme/models#7@" + "c" * 40, system="support-assistant",
                              commit="c" * 40, digest="0123456789abcdef", quorum={"security": 1}, excluded=[],
                              posted_at=at, deadline=at + timedelta(hours=1), remind_at=at + timedelta(minutes=30),
                              messages=[MessageRef(role="security", channel="C0SEC", ts="1700000000.000100")])
    return write_waiting(record)


def click_on(record: WaitingPromotion, user: str = "U0SAM") -> bytes:
    target = SignoffTarget(run=record.run, key=record.key, digest=record.digest, role="security")
    return form_encode(block_actions_payload(action_id=ACTION_APPROVE, user_id=user, value=target.encode(),
                                             channel_id="C0SEC", message={"ts": "1700000000.000100", "blocks": []}))


def inputs_on(run: str) -> list[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return sorted(i.key for i in client.filter_flow_run_input(UUID(run), "promotion-gate-", 1000, set()))


def test_a_forged_click_naming_a_waiting_run_writes_nothing(slack_gate, waiting_run, slack_env):
    body = click_on(waiting_run)
    for headers in ({"Content-Type": "application/x-www-form-urlencoded"},  # unsigned
                    signed_headers("not-the-secret", body),  # forged
                    signed_headers(SLACK_SECRET, body, int(datetime.now(timezone.utc).timestamp()) - 600)):  # replayed
        assert slack_gate.post("/slack/interactions", body, headers).status_code == 401
    assert inputs_on(waiting_run.run) == ["promotion-gate-slack-000001"]  # the flow's own record, nothing else
    assert slack_gate.refused("slack") == {"unsigned": 2, "stale": 1}
    assert slack_env.calls() == []  # nobody was asked or told anything


def test_220_forged_clicks_write_nothing_and_a_real_refusal_afterwards_is_kept(slack_gate, waiting_run, slack_env):
    body = click_on(waiting_run, user="U0OUT")  # casey: not a security reviewer

    def forged(i: int) -> int:
        return slack_gate.post("/slack/interactions", body, signed_headers(f"guess-{i}", body)).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(forged, range(220))) == {401}
    assert inputs_on(waiting_run.run) == ["promotion-gate-slack-000001"]
    assert slack_gate.refused("slack") == {"unsigned": 220}
    assert slack_gate.post("/slack/interactions", body, signed_headers(SLACK_SECRET, body)).status_code == 200
    wait_for(lambda: "promotion-gate-refused-000" in inputs_on(waiting_run.run), "the refusal to be kept")
    kept = inputs_on(waiting_run.run)  # the real click's claim (one interaction, judged once), its refusal, the record
    assert [k for k in kept if not k.startswith(TAKEN_PREFIX)] == ["promotion-gate-refused-000", "promotion-gate-slack-000001"]
    assert [k for k in kept if k.startswith(TAKEN_PREFIX)] == [TAKEN_PREFIX + interaction_id(body)]


@pytest.mark.parametrize("case, status, counted", [
    ("Content-Length of 100 MB", 413, "too_large"),
    ("chunked past 64 KiB", 413, "too_large"),
    ("not UTF-8, unsigned", 401, "unsigned"),
    ("not UTF-8, signed", 400, None),
    ("deep JSON, signed", 400, None),
    ("a form body without payload, signed", 400, None),
    ("JSON content type, signed", 400, "content_type"),
    ("a timestamp that is not a number", 401, "unsigned"),
    ("a timestamp of digits that are not ASCII", 401, "unsigned"),
])
def test_malformed_slack_requests_are_4xx_and_write_nothing(slack_gate, waiting_run, slack_env, case, status, counted):
    head = "POST /slack/interactions HTTP/1.1\r\nHost: gate\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    stamp = str(int(datetime.now(timezone.utc).timestamp()))
    if case.startswith("Content-Length"):
        answer = exchange(slack_gate, head + f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: v0=00\r\n"
                          f"Content-Length: {100 * MB}\r\n\r\n")[0]
    elif case.startswith("chunked"):
        chunk = b"a" * (64 * 1024 + 1)
        answer = exchange(slack_gate, head + f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: v0=00\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n", b"%x\r\n%s\r\n" % (len(chunk), chunk))[0]
    else:
        body = {"deep JSON, signed": b"payload=" + b"[" * 30_000 + b"]" * 30_000,  # 30,000 deep, under 64 KiB
                "a form body without payload, signed": b"text=hello",
                "JSON content type, signed": click_on(waiting_run)}.get(case, b"payload=\xff\xfe" + click_on(waiting_run))
        headers = signed_headers(SLACK_SECRET, body)
        if case.endswith("unsigned"):
            headers["X-Slack-Signature"] = sign_slack("a guess", headers["X-Slack-Request-Timestamp"], body)
        if case.startswith("JSON"):
            headers["Content-Type"] = "application/json"
        if case.startswith("a timestamp"):
            headers["X-Slack-Request-Timestamp"] = "1e9" if case.endswith("number") else "\u00b2\u00b3".encode("latin-1")  # "²³".isdigit()
        answer = slack_gate.post("/slack/interactions", body, headers).status_code
    assert answer == status
    assert inputs_on(waiting_run.run) == ["promotion-gate-slack-000001"]
    assert slack_gate.refused("slack") == ({counted: 1} if counted else {})
    assert slack_env.calls() == []


# the cap on refusal records, under writers in two processes


WRITER = """
import sys
from datetime import datetime, timezone
from promotion_gate.checklists.signoff import Action, RefusedClick
from promotion_gate.prefect_api.refusal_slots import record_refusal
run, n = sys.argv[1], int(sys.argv[2])
click = RefusedClick(reviewer="U0OUT", identity=None, action=Action.approve, at=datetime(2026, 11, 24, tzinfo=timezone.utc),
                     channel="slack", reason="not a reviewer")
print(sum(record_refusal(run, click) for _ in range(n)))
"""


def test_refusal_records_are_capped_at_200_even_with_two_writers_at_once(waiting_run):
    from prefect.settings import PREFECT_API_URL

    env = os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value()}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, waiting_run.run, "110"], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    kept = [int(w.communicate(timeout=300)[0].strip()) for w in writers]
    refused = [k for k in inputs_on(waiting_run.run) if k.startswith("promotion-gate-refused-")]
    assert sum(kept) == 200 and refused == [f"promotion-gate-refused-{i:03d}" for i in range(200)]


# the gate's comment is the gate's: a marker in someone else's comment is not the gate's comment


@pytest.fixture
def gate_forge(fake_github, monkeypatch, tmp_path):
    from promotion_gate.github_api.forge import GitHubForge
    from tests.github_support import gate_env

    gate_env(monkeypatch, fake_github, tmp_path / "store")
    return lambda: GitHubForge(load_settings(), REPO)


def post_as(fake_github, login: str, number: int, body: str) -> None:
    from tests.fakes.fixtures import github_client

    fake_github.add_token(f"{login}-token", login)
    github_client(fake_github, token=f"{login}-token").get_repo(REPO).get_issue(number).create_comment(body)


def as_github_app(fake_github, monkeypatch, tmp_path) -> None:
    from tests.github_support import as_github_app as app

    app(monkeypatch, fake_github, tmp_path, installation=None)
    fake_github.add_installation(7, 42, "acme", repositories=[REPO])


@pytest.mark.parametrize("impostor", [
    "{marker}\n### promotion-gate: approved, nothing to fix",  # the marker, then a fake verdict
    "{marker}",  # the marker alone
])
@pytest.mark.parametrize("auth, gate_login", [("token", "promotion-gate-bot"), ("app", "promotion-gate[bot]")])
def test_a_pr_authors_comment_with_the_marker_is_left_alone_and_the_gate_posts_its_own(
        fake_github, gate_forge, impostor, auth, gate_login, monkeypatch, tmp_path):
    from promotion_gate.notifications.github_bodies import comment_marker
    from promotion_gate.notifications.report import render_markdown
    from tests.github_support import UNAPPROVED, judge, request_for

    from promotion_gate.github_api import writes as github_ops

    monkeypatch.setattr(github_ops, "_OWN_LOGIN", {})  # who the gate is, not yet known in this process
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    if auth == "app":
        as_github_app(fake_github, monkeypatch, tmp_path)
    planted = impostor.format(marker=comment_marker(PROMOTES))
    post_as(fake_github, "alice", number, planted)  # alice wrote the PR
    request = request_for(sha, number)
    decision = judge(gate_forge(), request)
    for _ in range(2):  # a re-run edits the gate's own comment, still never alice's
        gate_forge().block(request, decision, render_markdown(decision))
    comments = fake_github.comments(REPO, number)
    assert [(c["user"]["login"], c["body"] == planted) for c in comments] == [("alice", True), (gate_login, False)]
    assert comments[1]["body"].startswith(comment_marker(PROMOTES)) and "failed" in comments[1]["body"]
    assert len(fake_github.calls("GET", "/app" if auth == "app" else "/user")) == 1  # who the gate is: asked once


# the refusal log cannot be flooded


def test_refusals_are_counted_each_and_logged_at_most_once_per_interval(caplog):
    from promotion_gate.gateway.inbound import Refusals

    now = [1000.0]
    refusals = Refusals(log_every=10, clock=lambda: now[0])
    caplog.set_level("WARNING", logger="promotion_gate.gateway")
    for _ in range(220):
        refusals.note("slack", "unsigned", "the Slack signature does not match")
    refusals.note("github", "too_large", "the body is larger than 26214400 bytes")
    now[0] += 10
    refusals.note("slack", "unsigned", "the Slack signature does not match")
    assert refusals.snapshot() == {"slack": {"unsigned": 221}, "github": {"too_large": 1}}
    assert [r.getMessage() for r in caplog.records] == [
        "slack: refused (unsigned): the Slack signature does not match",
        "github: refused (too_large): the body is larger than 26214400 bytes",
        "slack: refused (unsigned): the Slack signature does not match (and 219 more since the last line)",
    ]
