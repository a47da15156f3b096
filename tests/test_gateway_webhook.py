"""POST /github/webhook with deliveries shaped and signed as GitHub sends them (the fake GitHub
fills the payloads from its state); the starter records what would be handed to Prefect."""

from __future__ import annotations

import asyncio
import json
import warnings

import pytest
from pydantic import SecretStr
from starlette.routing import Route
from starlette.responses import PlainTextResponse

with warnings.catch_warnings():  # starlette 1.x would like httpx2 behind its TestClient; httpx works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from promotion_gate.config.settings import Settings
from promotion_gate.gateway.app import build_app
from promotion_gate.gateway.github_webhook import github_webhook_route
from promotion_gate.notifications.github_events import MAX_BODY_BYTES, Promote, Supersede, Withdraw, event_identity
from tests.fakes.fixtures import github_client
from tests.fakes.github_payloads import build_webhook_request, sign_webhook
from tests.github_support import BLOCKED, LABEL, PROMOTES, REPO, SECRET, governed_repo, labelled_delivery, relabelled_delivery


class Recorder:
    def __init__(self, fail: int = 0, delay: float = 0) -> None:
        self.asks, self.fail, self.delay, self.tries = [], fail, delay, 0

    async def __call__(self, ask) -> str:
        self.tries += 1
        await asyncio.sleep(self.delay)
        if self.tries <= self.fail:
            raise ConnectionError("prefect is down")
        self.asks.append(ask)
        return f"run-{len(self.asks)}"


@pytest.fixture
def starter() -> Recorder:
    return Recorder()


@pytest.fixture
def client(starter):
    app = build_app(Settings(github_webhook_secret=SecretStr(SECRET)), starter=starter)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def pull(fake_github):
    return governed_repo(fake_github, PROMOTES)


def post(client, body: bytes, headers: dict):
    """As GitHub posts: JSON (the content type a webhook is set to), unless the case says otherwise."""
    return client.post("/github/webhook", content=body, headers={"Content-Type": "application/json"} | headers)


def test_a_labelled_pr_starts_a_promotion_request_and_answers_202(client, starter, fake_github, pull):
    sha, number = pull
    body, headers = labelled_delivery(fake_github, number)
    response = post(client, body, headers)
    delivery = event_identity(body)  # a label event is keyed by its signed body (a redelivery resends it)
    assert response.status_code == 202
    assert response.json() == {"flow_run_id": "run-1", "key": f"{REPO}#{number}@{sha}/{delivery}"}
    assert starter.asks == [Promote(REPO, number, sha, "dana", "alice", delivery)]


def test_a_push_to_a_labelled_pr_supersedes(client, starter, fake_github, pull):
    old, number = pull
    new = fake_github.commit_files(REPO, "feature", {"ai-systems/x/more.md": "x\n"})
    response = post(client, *labelled_delivery(fake_github, number, action="synchronize"))
    assert response.status_code == 202 and starter.asks == [Supersede(REPO, number, new, "dana", old, "alice")]


def test_removing_the_label_withdraws_but_the_gates_own_swap_does_not(client, starter, fake_github, pull):
    sha, number = pull
    _remove(fake_github, number)
    response = post(client, *labelled_delivery(fake_github, number, action="unlabeled"))
    assert response.status_code == 202
    assert starter.asks == [Withdraw(REPO, number, sha, "dana", "promotion withdrawn by dana")]
    fake_github.add_labels(REPO, number, BLOCKED)
    response = post(client, *labelled_delivery(fake_github, number, action="unlabeled", sender="promotion-gate[bot]"))
    assert response.status_code == 200 and len(starter.asks) == 1


def _remove(fake, number: int) -> None:
    github_client(fake).get_repo(REPO).get_issue(number).remove_from_labels(LABEL)


@pytest.mark.parametrize("row, same", [
    ("GitHub's redelivery: the same body and X-GitHub-Delivery", True),
    ("a captured delivery replayed under a new X-GitHub-Delivery", True),
    ("a captured delivery replayed without X-GitHub-Delivery", True),
    ("a captured delivery replayed with the header in another case and padded", True),
    ("the label removed and added again: a new event", False),
])
def test_a_label_event_is_one_run_however_often_its_signed_body_arrives(client, starter, fake_github, pull, row, same):
    """X-GitHub-Delivery is not signed: whoever holds one signed body (a log, a proxy) could send it
    again under any id. The key is the body's, so only a new event (a new body) is a new run."""
    body, headers = labelled_delivery(fake_github, pull[1], delivery_id="d-1")
    first = post(client, body, headers).json()["key"]
    if row.startswith("GitHub's redelivery"):
        again = body, headers
    elif row.startswith("a captured delivery replayed under a new"):
        again = body, headers | {"X-GitHub-Delivery": "d-2"}
    elif row.startswith("a captured delivery replayed without"):
        again = body, {k: v for k, v in headers.items() if k != "X-GitHub-Delivery"}
    elif row.startswith("a captured delivery replayed with the header"):
        again = body, {k: v for k, v in headers.items() if k != "X-GitHub-Delivery"} | {"x-github-DELIVERY": " d-3 "}
    else:
        again = relabelled_delivery(fake_github, pull[1], delivery_id="d-4")
    assert (post(client, *again).json()["key"] == first) is same
    assert len({a.key for a in starter.asks}) == (1 if same else 2)


def test_ping_is_200(client, starter, fake_github, pull):
    body, headers = build_webhook_request("ping", fake_github.ping_event(REPO, "https://gate.example/github/webhook"), SECRET)
    response = post(client, body, headers)
    assert (response.status_code, response.json(), starter.asks) == (200, {"ok": True}, [])


@pytest.mark.parametrize("event, payload_args", [
    ("pull_request", {"action": "labeled", "label": "bug"}),
    ("pull_request", {"action": "edited", "label": None}),  # opened now asks the lock guard (tests/test_lock_guard.py)
    ("pull_request", {"action": "unlabeled", "label": "bug"}),
])
def test_other_labels_and_actions_are_ignored_with_2xx(client, starter, fake_github, pull, event, payload_args):
    response = post(client, *labelled_delivery(fake_github, pull[1], **payload_args))
    assert response.status_code == 200 and "ignored" in response.json() and starter.asks == []


def test_other_events_are_ignored_with_2xx(client, starter):
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    response = post(client, body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign_webhook(body, SECRET)})
    assert (response.status_code, response.json()) == (200, {"ignored": "event push is not handled"})


def _signed(body: bytes, headers: dict) -> dict:
    return headers | {"X-Hub-Signature-256": sign_webhook(body, SECRET)}


@pytest.mark.parametrize("mutate", [
    lambda body, headers: (body, {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}),
    lambda body, headers: (body, headers | {"X-Hub-Signature-256": sign_webhook(body, "a guess")}),
    lambda body, headers: (body, headers | {"X-Hub-Signature-256": "sha256=nothex"}),
    lambda body, headers: (body, headers | {"X-Hub-Signature-256": headers["X-Hub-Signature"]}),
    lambda body, headers: (body, headers | {"X-Hub-Signature-256": ""}),
    lambda body, headers: (body.replace(b'"labeled"', b'"labeled" '), headers),  # the body changed after signing
], ids=["missing", "forged", "malformed", "sha1-in-sha256", "empty", "tampered"])
def test_a_bad_signature_is_401_and_starts_nothing(client, starter, fake_github, pull, mutate):
    response = post(client, *mutate(*labelled_delivery(fake_github, pull[1])))
    assert response.status_code == 401 and starter.asks == []


@pytest.mark.parametrize("body, reason", [
    (b'{"action": "labeled", "pull_request": {', "the body is not JSON"),
    (b"[]", "the body is not a JSON object"),
    (b"42", "the body is not a JSON object"),
])
def test_a_body_that_is_not_a_json_object_is_400(client, starter, body, reason):
    response = post(client, body, _signed(body, {"X-GitHub-Event": "pull_request"}))
    assert (response.status_code, response.json()) == (400, {"error": reason}) and starter.asks == []


def test_a_labelled_event_without_a_head_sha_is_400(client, starter, fake_github, pull):
    body, headers = labelled_delivery(fake_github, pull[1])
    payload = json.loads(body)
    del payload["pull_request"]["head"]["sha"]
    body = json.dumps(payload).encode()
    response = post(client, body, _signed(body, headers))
    assert response.status_code == 400 and "head.sha" in response.json()["error"] and starter.asks == []


def test_a_body_over_25_mb_is_413_before_it_is_read(client, starter):
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    response = post(client, body, _signed(body, {"X-GitHub-Event": "pull_request"}))
    assert response.status_code == 413 and starter.asks == []


def test_a_streamed_body_over_25_mb_without_a_length_is_413(client, starter):
    def chunks():
        for _ in range(26):
            yield b" " * (1024 * 1024)

    headers = {"X-GitHub-Event": "pull_request", "Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + "0" * 64}
    response = client.post("/github/webhook", content=chunks(), headers=headers)
    assert response.status_code == 413 and starter.asks == []


def test_prefect_unreachable_is_503_so_github_can_redeliver(fake_github, pull):
    starter = Recorder(fail=99)
    app = build_app(Settings(github_webhook_secret=SecretStr(SECRET)), starter=starter)
    with TestClient(app) as client:
        response = post(client, *labelled_delivery(fake_github, pull[1]))
    assert response.status_code == 503 and "redeliver" in response.json()["error"]
    assert starter.tries == 1  # answered at once; GitHub keeps the failed delivery


def test_a_slow_start_is_answered_within_the_budget_and_finished_after(fake_github, pull):
    sha, number = pull
    starter = Recorder(delay=0.3, fail=1)  # slow, and its first try fails after the answer
    settings = Settings(github_webhook_secret=SecretStr(SECRET), gateway_ack_seconds=0.05)
    with TestClient(build_app(settings, starter=starter)) as client:
        body, headers = labelled_delivery(fake_github, number)
        response = post(client, body, headers)
        delivery = event_identity(body)
        assert response.status_code == 202 and response.elapsed.total_seconds() < 0.3
        assert response.json() == {"flow_run_id": None, "key": f"{REPO}#{number}@{sha}/{delivery}"}
    # leaving the client ran the app's shutdown: it waited for the start, retried once
    assert starter.tries == 2 and starter.asks == [Promote(REPO, number, sha, "dana", "alice", delivery)]


def test_extra_routes_are_mounted_and_health_answers(starter):
    async def hello(request):
        return PlainTextResponse("hi")

    app = build_app(Settings(github_webhook_secret=SecretStr(SECRET)), starter=starter,
                    extra_routes=[Route("/slack/actions", hello, methods=["POST"])])
    with TestClient(app) as client:
        assert client.post("/slack/actions").text == "hi"
        assert client.get("/healthz").json() == {"ok": True}
        assert client.get("/github/webhook").status_code == 405


@pytest.mark.parametrize("secret", [None, SecretStr("")])
def test_no_secret_no_app(secret):
    from promotion_gate.config.settings import SettingsError

    with pytest.raises(SettingsError, match="PROMOTION_GATE_GITHUB_WEBHOOK_SECRET is required"):
        build_app(Settings(github_webhook_secret=secret), starter=Recorder())
    with pytest.raises(ValueError, match="never accepts unsigned"):
        github_webhook_route(b"", LABEL, BLOCKED, Recorder())
