"""The fault table (issue 10): each row names a fault and asserts the end state by counts: flow
runs, PRs, comments, statuses, recorded decisions. Prefect's test harness with the deployments
served by a Runner (each run in its own process, as under a worker), the fake GitHub and Slack.
The rows that need a worker process killed or a server restarted are in tests/test_github_postgres.py."""

from __future__ import annotations

import asyncio
import re
import uuid
import warnings
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.deployments import run_deployment
from prefect.client.schemas.responses import SetStateStatus
from prefect.deployments.runner import EntrypointType
from prefect.states import Completed, Crashed, Pending, Running
from pydantic import SecretStr

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from promotion_gate.checklists.decision import Decision, TimelineEvent, Verdict
from promotion_gate.flows.dispatch import promotion_request
from promotion_gate.flows.expiry import (
    NEVER_STARTED, UNSTARTED_KEY, _mark_swept, decide_unstarted_run, sweep_signoffs, unstarted_since,
)
from promotion_gate.prefect_api.gate_runs import gate_tags, plan_gate_run
from promotion_gate.flows.promotion import artifact_key, failed_decision, promotion_gate
from promotion_gate.config.settings import Settings
from promotion_gate.slack_api.client import SlackUnavailable, build_slack_client, slack_call
from promotion_gate.gateway.app import PrefectStarter, build_app
from promotion_gate.gateway.handoff import Handoff, PrefectUnreachable
from promotion_gate.notifications.error_text import build_error_line
from promotion_gate.notifications.github_events import Promote, build_parameters, build_tags
from tests.fakes import FakeSlack
from tests.github_support import (
    BLOCKED, BLOCKS, LABEL, PROMOTES, SECRET, delete_scheduled, gate_env, governed_repo, labelled_delivery, request_for, serving, wait_for,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")
STATUS = f"promotion-gate/{PROMOTES}"
HTML_PAGE = ("<!DOCTYPE html>\n<html><head><title>Slack is down</title><style>body{}</style></head>"
             "<body><h1>502 Bad Gateway</h1><p>@channel please retry</p></body></html>")


@pytest.fixture
def repo() -> str:
    return f"acme/models-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def env(fake_github, monkeypatch, tmp_path):
    gate_env(monkeypatch, fake_github, tmp_path / "store", GITHUB_RETRIES="2")
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    return tmp_path / "store"


@pytest.fixture
def served(env):
    with serving(promotion_request, promotion_gate):
        yield env


def ask(repo: str, sha: str, number: int, delivery: str) -> Promote:
    return Promote(repo, number, sha, "dana", "alice", delivery=delivery)


def deliver(a: Promote) -> str:
    """What the gateway does with a delivery: the promotion-request deployment, keyed by the ask."""
    run = run_deployment("promotion-request/promotion-request", parameters=build_parameters(a), timeout=0,
                         idempotency_key=a.key, tags=build_tags(a), as_subflow=False)
    return str(run.id)


def gate_runs(repo: str, number: int):
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[f"pr:{repo}#{number}", "promotion-gate"])))


def request_runs(repo: str, number: int):
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[f"pr:{repo}#{number}", "promotion-request"])))


def final_status(fake, repo: str, sha: str, timeout: float = 90) -> str:
    wait_for(lambda: fake.statuses(repo, sha).get(STATUS, {}).get("state") not in (None, "pending"), timeout,
             what=f"a final status on {sha[:7]}")
    return fake.statuses(repo, sha)[STATUS]["state"]


def all_final(found) -> bool:
    return all(r.state is not None and r.state.is_final() for r in found)


def promotion_prs(fake, repo: str) -> list[dict]:
    return [p for p in fake.pulls(repo) if p["head"]["ref"].startswith("promote/")]


def statuses(fake, repo: str, sha: str) -> list[str]:
    return [s["state"] for s in fake.status_history(repo, sha) if s["context"] == STATUS]


# rows through the served deployments


def test_row_duplicate_delivery_is_one_run_one_pr(fake_github, served, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    first = deliver(ask(repo, sha, number, "d-1"))
    again = deliver(ask(repo, sha, number, "d-1"))  # GitHub's redelivery keeps X-GitHub-Delivery
    assert first == again
    assert final_status(fake_github, repo, sha) == "success"
    wait_for(lambda: all_final(gate_runs(repo, number)), 60, what="the gate run to end")
    assert (len(request_runs(repo, number)), len(gate_runs(repo, number))) == (1, 1)
    assert len(promotion_prs(fake_github, repo)) == 1 and fake_github.comments(repo, number) == []
    assert statuses(fake_github, repo, sha) == ["success", "pending"]  # newest first: one pending, one final


def test_row_pr_fails_to_open_then_a_relabel_promotes(fake_github, served, repo):
    """GitHub refuses to open the PR (5xx on every try): an error, no branch left behind; the label
    added again on the same commit is a new attempt, not refused by the key, and promotes once."""
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    fake_github.fail_next("POST /repos/*/pulls", status=502, times=3)  # 1 try + 2 retries
    deliver(ask(repo, sha, number, "d-1"))
    assert final_status(fake_github, repo, sha) == "error"
    assert fake_github.branch_sha(repo, f"promote/{PROMOTES}/{sha[:7]}") is None
    wait_for(lambda: all_final(gate_runs(repo, number)), 60, what="the first attempt to end")
    [first] = gate_runs(repo, number)
    assert first.state.name == "Error" and "502" in first.state.message
    deliver(ask(repo, sha, number, "d-2"))  # the team adds the label again
    wait_for(lambda: fake_github.statuses(repo, sha)[STATUS]["state"] == "success", 90, what="the second attempt")
    wait_for(lambda: len(gate_runs(repo, number)) == 2 and all_final(gate_runs(repo, number)), 60, what="both ended")
    assert sorted(r.state.name for r in gate_runs(repo, number)) == ["Error", "Promoted"]
    assert len(request_runs(repo, number)) == 2 and len(promotion_prs(fake_github, repo)) == 1
    assert len(fake_github.comments(repo, number)) == 1  # the first attempt's block comment, not repeated
    deliver(ask(repo, sha, number, "d-3"))  # once promoted, a third label starts no gate run
    wait_for(lambda: all_final(request_runs(repo, number)) and len(request_runs(repo, number)) == 3, 60, what="third")
    assert len(gate_runs(repo, number)) == 2 and len(promotion_prs(fake_github, repo)) == 1


def test_row_rate_limit_on_the_pending_status_is_waited_out(fake_github, served, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    fake_github.fail_secondary_rate_limit("POST /repos/*/statuses/*", retry_after=0, times=1)  # the wait itself: tests/test_retrying.py
    deliver(ask(repo, sha, number, "d-1"))
    assert final_status(fake_github, repo, sha) == "success"
    assert statuses(fake_github, repo, sha) == ["success", "pending"]  # the pending was not dropped, nor late
    assert len(promotion_prs(fake_github, repo)) == 1


def test_row_a_crashed_request_run_is_started_again_once(fake_github, served, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    a = ask(repo, sha, number, "d-1")
    promotion_request.to_deployment(name="faults-unserved").apply()  # nothing runs it: it stays scheduled
    run = run_deployment("promotion-request/faults-unserved", parameters=build_parameters(a), timeout=0,
                         idempotency_key=a.key, tags=build_tags(a), as_subflow=False)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Crashed(message="Failed to submit flow run to infrastructure: 503"), force=True)
    first = sweep_signoffs()
    assert first.restarted == [str(run.id)]
    assert final_status(fake_github, repo, sha) == "success"
    assert sweep_signoffs().restarted == []  # once
    assert (len(request_runs(repo, number)), len(gate_runs(repo, number)), len(promotion_prs(fake_github, repo))) == (2, 1, 1)


# rows of the gate run alone (no runner needed)


def test_row_a_crashed_gate_run_is_decided_as_an_error_by_the_sweep(fake_github, env, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    request = request_for(sha, number, repo=repo)
    promotion_gate.to_deployment(name="faults-unserved").apply()
    run = run_deployment("promotion-gate/faults-unserved", parameters={"request": request.model_dump(mode="json")},
                         timeout=0, idempotency_key=request.key, tags=["promotion-gate", f"pr:{repo}#{number}"],
                         as_subflow=False)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Crashed(message="Failed to submit flow run to infrastructure: 503 <html>"), force=True)
    swept = sweep_signoffs()
    assert str(run.id) in swept.decided
    writes = len([c for c in fake_github.requests if c[0] != "GET"])
    assert sweep_signoffs().decided == []  # once: the run is marked
    assert len([c for c in fake_github.requests if c[0] != "GET"]) == writes
    decisions = [Decision.model_validate_json(p.read_bytes()) for p in (env / "decisions").glob("*/decision.json")]
    decisions = [d for d in decisions if d.request.repository == repo]
    assert [d.verdict for d in decisions] == [Verdict.error]
    assert "crashed before it recorded a decision" in decisions[0].reasons[0] and "<html" not in decisions[0].reasons[0]
    assert statuses(fake_github, repo, sha) == ["error"]  # an error decision's status
    assert len(fake_github.comments(repo, number)) == 1 and BLOCKED in fake_github.labels(repo, number)
    assert LABEL not in fake_github.labels(repo, number) and promotion_prs(fake_github, repo) == []


def test_row_github_fails_to_create_the_promotion_tree_and_the_error_keeps_what_was_known(fake_github, env, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    fake_github.fail_next("POST /repos/*/git/trees", status=502, times=10)
    decision = promotion_gate(request_for(sha, number, repo=repo))
    assert decision.verdict == Verdict.error and "create the promotion tree" in decision.reasons[0]
    assert decision.checklist is not None and decision.checklist.system == PROMOTES
    assert any("checklist evaluated" in e.event for e in decision.timeline)
    assert statuses(fake_github, repo, sha) == ["error"] and promotion_prs(fake_github, repo) == []
    assert fake_github.branch_sha(repo, f"promote/{PROMOTES}/{sha[:7]}") is None


def test_an_error_after_sign_off_keeps_the_sign_offs_and_the_refusals(fake_github, env, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    request = request_for(sha, number, repo=repo)
    decided = promotion_gate(request)  # a real decision to start from
    fake_signoffs = decided.model_copy(update={"signoffs": [], "refused": []})
    from promotion_gate.checklists.signoff import Action, RefusedClick, Signoff
    at = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    signoff = Signoff(reviewer="U0SAM", identity="sam", role="security", action=Action.approve, at=at,
                      digest=decided.checklist.digest, channel="slack")
    refused = RefusedClick(reviewer="U0DANA", identity="dana", action=Action.approve, at=at, channel="slack", reason="x")
    known = {"checklist": decided.checklist,
             "decision": fake_signoffs.model_copy(update={"signoffs": [signoff], "refused": [refused]})}
    timeline = [TimelineEvent(at=at, event="sign-off approved: 1 counted, 1 refused")]
    error = failed_decision(request, RuntimeError("GitHub 502 on create the promotion tree: <html><body>x</body></html>"),
                            timeline, known)
    assert error.verdict == Verdict.error and error.checklist == decided.checklist
    assert (error.signoffs, error.refused, error.timeline) == ([signoff], [refused], timeline)
    assert "<html" not in error.reasons[0] and "\n" not in error.reasons[0]


def test_the_artifact_key_is_per_promotion_and_prefect_safe():
    request = request_for("ab" * 20, 12)
    assert artifact_key(request) == f"decision-{PROMOTES}-pr12-abababa"
    assert artifact_key(request.model_copy(update={"pull_request": None})) == f"decision-{PROMOTES}-abababa"


# Prefect unreachable: the webhook is 503, so GitHub keeps the delivery


@pytest.mark.parametrize("ack", [5.0, 0.0], ids=["within-the-ack-budget", "past-the-ack-budget"])
def test_row_prefect_down_is_503_never_202(fake_github, ack, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    name = f"acme/down-{uuid.uuid4().hex[:6]}"
    sha, number = governed_repo(fake_github, PROMOTES, repo=name)
    body, headers = labelled_delivery(fake_github, number, repo=name)
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        app = build_app(Settings(github_webhook_secret=SecretStr(SECRET), gateway_ack_seconds=ack),
                        starter=PrefectStarter("promotion-request/promotion-request"))
        with TestClient(app) as client:
            answer = client.post("/github/webhook", content=body, headers=headers)
    assert answer.status_code == 503 and "redeliver" in answer.text


def test_a_slow_start_is_acknowledged_only_while_prefect_answers():
    async def slow(_ask) -> str:
        await asyncio.sleep(0.5)
        return "run-1"

    async def down() -> bool:
        return False

    async def up() -> bool:
        return True

    a = Promote("acme/models", 1, "a" * 40, "dana")

    async def scenario(probe):
        handoff = Handoff(slow, 0.01, retries=0, probe=probe)
        try:
            return await handoff.start(a)
        finally:
            await handoff.drain()

    assert asyncio.run(scenario(up)) is None  # acknowledged; the start finishes after the answer
    with pytest.raises(PrefectUnreachable):
        asyncio.run(scenario(down))


# Slack's HTML error page never reaches a comment, a status or a report


def test_row_slack_answers_an_html_page(fake_slack, monkeypatch):
    fake_slack.add_channel("C0SEC", "security-signoff")
    settings = Settings(signoff_channel="slack", slack_api_url=fake_slack.base_url, slack_bot_token=SecretStr(FakeSlack.BOT_TOKEN),
                        slack_retries=0)
    fake_slack.fail_next("chat.postMessage", status=502, page=HTML_PAGE)
    client = build_slack_client(settings)
    with pytest.raises(SlackUnavailable) as caught:
        slack_call("chat.postMessage for security to C0SEC", client.chat_postMessage, channel="C0SEC", text="x")
    said = str(caught.value)
    assert said.startswith("chat.postMessage for security to C0SEC: Slack")
    assert "<" not in said and "@channel" not in said and "\n" not in said and len(said) < 200


@pytest.mark.parametrize(("text", "line"), [
    (HTML_PAGE, "an HTML error page (Slack is down)"),
    ("GitHub 502 on x: <html><body>bad</body></html>", "GitHub 502 on x: an HTML error page"),
    ("two\nlines\r\n\x1b[31mred\x1b[0m", "two lines [31mred [0m"),
    ("x" * 500, "x" * 199 + "…"),
    (None, ""),
])
def test_external_error_texts_become_one_safe_line(text, line):
    assert build_error_line(text) == line


# runs that never start: decided as errors by the sweep after the grace, cancelled first (time given)


def unserved_gate_run(request):
    """A gate run of a deployment no worker serves: it stays Scheduled (Late), as with no worker or a paused pool."""
    from promotion_gate.prefect_api.gate_runs import gate_tags

    promotion_gate.to_deployment(name="faults-unserved").apply()
    return run_deployment("promotion-gate/faults-unserved", parameters={"request": request.model_dump(mode="json")},
                          timeout=0, idempotency_key=request.key, tags=gate_tags(request), as_subflow=False)


def read_run(run_id):
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def decisions_of(store, repo: str) -> list[Decision]:
    found = [Decision.model_validate_json(p.read_bytes()) for p in (store / "decisions").glob("*/decision.json")]
    return [d for d in found if d.request.repository == repo]


GRACE = timedelta(minutes=30)  # the default of PROMOTION_GATE_UNSTARTED_GRACE_MINUTES


@pytest.mark.parametrize("stuck", ["Scheduled", "Pending"])
def test_row_a_gate_run_never_started_is_cancelled_and_decided_as_an_error_after_the_grace(fake_github, env, repo, stuck):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    request = request_for(sha, number, repo=repo)
    run = unserved_gate_run(request)
    if stuck == "Pending":  # a worker submitted it, and the infrastructure never picked it up
        with get_client(sync_client=True) as client:
            assert client.set_flow_run_state(run.id, Pending()).status == SetStateStatus.ACCEPT
    since = unstarted_since(read_run(run.id))
    assert since is not None
    early = sweep_signoffs(now=since + GRACE - timedelta(minutes=1))
    assert str(run.id) not in early.unstarted and read_run(run.id).state.type.value == stuck.upper()
    assert fake_github.statuses(repo, sha) == {} and decisions_of(env, repo) == []
    swept = sweep_signoffs(now=since + GRACE + timedelta(minutes=1))
    assert str(run.id) in swept.unstarted
    state = read_run(run.id).state
    assert (state.type.value, state.name) == ("CANCELLED", NEVER_STARTED)
    with get_client(sync_client=True) as client:  # cancelled: no worker can submit it any more
        assert client.set_flow_run_state(run.id, Pending()).status != SetStateStatus.ACCEPT
    writes = len([c for c in fake_github.requests if c[0] != "GET"])
    again = sweep_signoffs(now=since + GRACE + timedelta(minutes=2))  # once: neither as unstarted nor as withdrawn
    assert str(run.id) not in again.unstarted + again.decided
    assert len([c for c in fake_github.requests if c[0] != "GET"]) == writes
    [decision] = decisions_of(env, repo)
    assert decision.verdict == Verdict.error and "never started" in decision.reasons[0]
    assert statuses(fake_github, repo, sha) == ["error"]
    assert len(fake_github.comments(repo, number)) == 1 and BLOCKED in fake_github.labels(repo, number)
    assert promotion_prs(fake_github, repo) == []
    with get_client(sync_client=True) as client:  # the PR can be evaluated again: a new attempt's key
        assert plan_gate_run(client, request)[0] == f"{request.key}~2"


def test_row_a_never_started_run_is_evaluated_again_when_the_label_is_added_again(fake_github, env, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    run = unserved_gate_run(request_for(sha, number, repo=repo))
    since = unstarted_since(read_run(run.id))
    assert str(run.id) in sweep_signoffs(now=since + GRACE + timedelta(seconds=1)).unstarted
    assert statuses(fake_github, repo, sha) == ["error"]
    with serving(promotion_request, promotion_gate):
        deliver(ask(repo, sha, number, "d-2"))
        wait_for(lambda: fake_github.statuses(repo, sha)[STATUS]["state"] == "success", 90, what="the new attempt")
        wait_for(lambda: len(gate_runs(repo, number)) == 2 and all_final(gate_runs(repo, number)), 60, what="both ended")
        assert sorted(r.state.name for r in gate_runs(repo, number)) == [NEVER_STARTED, "Promoted"]
    assert len(promotion_prs(fake_github, repo)) == 1 and len(fake_github.comments(repo, number)) == 1
    assert sorted(d.verdict.value for d in decisions_of(env, repo)) == ["error", "promoted"]


def test_row_a_run_that_starts_after_the_sweep_marked_it_stops_and_is_decided_once(fake_github, env, repo):
    """The race: the sweep's marker is on the run (its cancel lost to a worker that took the run); the
    run reads the marker first, writes nothing to GitHub and ends NeverStarted; the sweep decides it once."""
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    request = request_for(sha, number, repo=repo)
    promotion_gate.to_deployment(name="promotion-gate", entrypoint_type=EntrypointType.MODULE_PATH).apply()
    run = run_deployment("promotion-gate/promotion-gate", parameters={"request": request.model_dump(mode="json")},
                         timeout=0, idempotency_key=request.key, tags=gate_tags(request), as_subflow=False)
    with get_client(sync_client=True) as client:
        _mark_swept(client, run.id, "claimed", UNSTARTED_KEY)
    with serving(promotion_gate):
        wait_for(lambda: read_run(run.id).state.is_final(), 90, what="the marked run to end")
        state = read_run(run.id).state
        assert (state.type.value, state.name) == ("CANCELLED", NEVER_STARTED), state.message
    assert [c for c in fake_github.requests if repo in c[1] and c[0] != "GET"] == []  # it acted on nothing
    assert str(run.id) in sweep_signoffs().decided
    assert str(run.id) not in sweep_signoffs().decided
    [decision] = decisions_of(env, repo)
    assert decision.verdict == Verdict.error and statuses(fake_github, repo, sha) == ["error"]
    assert len(fake_github.comments(repo, number)) == 1


def test_row_a_run_that_started_before_the_marker_is_left_to_decide_itself(fake_github, env, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    run = unserved_gate_run(request_for(sha, number, repo=repo))
    seen = read_run(run.id)  # what the sweep read: Scheduled
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Running(), force=True)  # a worker started it since
    since = unstarted_since(seen)
    assert decide_unstarted_run(seen, since + GRACE + timedelta(minutes=1), GRACE) is False
    with get_client(sync_client=True) as client:
        assert client.filter_flow_run_input(run.id, UNSTARTED_KEY, 1, set()) == []  # the marker is taken back
        assert client.read_flow_run(run.id).state.type.value == "RUNNING"
        client.set_flow_run_state(run.id, Completed(), force=True)
    assert decisions_of(env, repo) == [] and fake_github.statuses(repo, sha) == {}


# GitHub 5xx and rate limits on every write the gate makes: each one fault, retried; the same end
# state as without it, and every write landed exactly once (the gate run alone, in-process)

PROMOTED_WRITES = [  # token: the promotion branch and PR, the checkpoint on the ledger ref, the anchor, statuses
    "POST git/trees", "POST git/commits", "POST git/refs", "POST pulls", "POST pulls/N/requested_reviewers",
    "POST git/blobs", "POST git/trees", "POST git/commits", "POST git/refs", "PATCH pulls/N", "POST statuses/SHA",
    "POST statuses/SHA"]
BLOCKED_WRITES = ["POST issues/N/comments", "PUT issues/N/labels", "POST git/blobs", "POST git/trees", "POST git/commits",
                  "POST git/refs", "PATCH issues/comments/N", "POST statuses/SHA"]
WRITE_ROWS = [  # (the write, its route, the system whose run makes it)
    ("final status", "POST /repos/*/statuses/*", PROMOTES),
    ("block comment", "POST /repos/*/issues/*/comments", BLOCKS),
    ("block comment anchored", "PATCH /repos/*/issues/comments/*", BLOCKS),
    ("blocked label", "PUT /repos/*/issues/*/labels", BLOCKS),
    ("promotion tree", "POST /repos/*/git/trees", PROMOTES),
    ("promotion commit", "POST /repos/*/git/commits", PROMOTES),
    ("promotion branch", "POST /repos/*/git/refs", PROMOTES),
    ("promotion PR", "POST /repos/*/pulls", PROMOTES),
    ("promotion PR anchored", "PATCH /repos/*/pulls/*", PROMOTES),
    ("checkpoint blob", "POST /repos/*/git/blobs", BLOCKS),
    ("checkpoint commit", "POST /repos/*/git/commits", BLOCKS),
    ("checkpoint ref", "POST /repos/*/git/refs", BLOCKS),
]
_SHA, _NUM = re.compile(r"\b[0-9a-f]{40}\b"), re.compile(r"/\d+(?=/|$)")


def landed_writes(fake, repo: str) -> list[str]:
    """The writes GitHub accepted for `repo`, as "METHOD route" with numbers and SHAs generalised."""
    prefix = f"/repos/{repo}/"
    return [f"{method} {_NUM.sub('/N', _SHA.sub('SHA', path.removeprefix(prefix)))}"
            for method, path, status, *_ in fake.requests if method != "GET" and path.startswith(prefix) and status < 400]


def arm(fake, route: str, fault: str) -> None:
    if fault == "5xx":
        fake.fail_next(route, status=502, times=1)
    else:
        fake.fail_secondary_rate_limit(route, retry_after=1, times=1)


@pytest.mark.parametrize("fault", ["5xx", "rate-limit"])
@pytest.mark.parametrize(("write", "route", "system"), WRITE_ROWS, ids=[r[0] for r in WRITE_ROWS])
def test_row_one_github_fault_on_a_write_is_retried_and_the_write_lands_once(fake_github, env, repo, write, route, system, fault):
    sha, number = governed_repo(fake_github, system, repo=repo)
    arm(fake_github, route, fault)
    decision = promotion_gate(request_for(sha, number, system=system, repo=repo))
    failed = [c for c in fake_github.requests if c[1].startswith(f"/repos/{repo}/") and c[0] != "GET" and c[2] >= 400]
    assert len(failed) == 1, failed  # the fault was met, once
    promoted = system == PROMOTES
    assert decision.verdict == (Verdict.promoted if promoted else Verdict.blocked), decision.reasons
    assert landed_writes(fake_github, repo) == (PROMOTED_WRITES if promoted else BLOCKED_WRITES)
    assert statuses(fake_github, repo, sha) == (["success"] if promoted else [])
    if not promoted:
        assert [s["state"] for s in fake_github.status_history(repo, sha)] == ["failure"]
    assert len(promotion_prs(fake_github, repo)) == (1 if promoted else 0)
    assert len(fake_github.comments(repo, number)) == (0 if promoted else 1)
    assert (BLOCKED in fake_github.labels(repo, number), LABEL in fake_github.labels(repo, number)) == (not promoted, promoted)
    assert [d.decision_id for d in decisions_of(env, repo)] == [decision.decision_id]
    assert (env / "ledger.jsonl").read_text().count("\n") == 1


@pytest.fixture
def app_env(fake_github, env, monkeypatch, tmp_path):
    """The gate as a GitHub App (check runs instead of statuses), installation 7 on REPO."""
    from tests.github_support import as_github_app

    as_github_app(monkeypatch, fake_github, tmp_path)
    return env


@pytest.mark.parametrize("fault", ["5xx", "rate-limit"])
@pytest.mark.parametrize("system", [PROMOTES, BLOCKS])
def test_row_one_github_fault_on_a_check_run_is_retried_and_each_check_run_is_written_once(fake_github, app_env, system, fault):
    from tests.fakes.github_routes_checks import check_runs, latest_check_runs
    from tests.github_support import REPO

    sha, number = governed_repo(fake_github, system)
    fake_github.add_installation(7, 42, "acme", repositories=[REPO])
    arm(fake_github, "POST /repos/*/check-runs", fault)
    decision = promotion_gate(request_for(sha, number, system=system))
    failed = [c for c in fake_github.requests if c[1].startswith(f"/repos/{REPO}/") and c[0] != "GET" and c[2] >= 400]
    assert len(failed) == 1, failed
    promoted = system == PROMOTES
    assert decision.verdict == (Verdict.promoted if promoted else Verdict.blocked), decision.reasons
    names = [r["name"] for r in check_runs(fake_github, REPO, sha)]
    assert sorted(names) == sorted({*names}) == ["promotion-gate", f"promotion-gate / {system}"]  # one each, none repeated
    latest = latest_check_runs(fake_github, REPO, sha)
    assert {n: r["conclusion"] for n, r in latest.items()} == dict.fromkeys(names, "success" if promoted else "failure")
    assert len(promotion_prs(fake_github, REPO)) == (1 if promoted else 0)
    assert len(fake_github.comments(REPO, number)) == (0 if promoted else 1)
    assert [d.decision_id for d in decisions_of(app_env, REPO)] == [decision.decision_id]


# GitHub carried a write out and its answer was lost (a proxy's 502 after the work was done): the
# retry must not repeat it. A create first finds what the lost answer made (a comment by marker and
# author, a check run by name and external_id), or takes GitHub's "already exists" (a ref, a PR) for
# it once it checked it is the gate's; a whole-value write (PUT labels, PATCH a body) and a
# content-addressed one (blob, tree, commit: a second commit object is dangling, no ref names it)
# are carried out again, harmlessly. A commit status carried out twice is the one exception, argued
# at its row.

LOST_ROWS = [  # (the write, its route, the system whose run makes it, carried out again by the retry)
    ("lock-guard status", "POST /repos/*/statuses/*", PROMOTES, True),  # the first status: on the promotion commit
    ("final status", "POST /repos/*/statuses/{sha}", PROMOTES, True),
    ("block comment", "POST /repos/*/issues/*/comments", BLOCKS, False),
    ("block comment anchored", "PATCH /repos/*/issues/comments/*", BLOCKS, False),  # found already saying it
    ("blocked label", "PUT /repos/*/issues/*/labels", BLOCKS, True),
    ("promotion tree", "POST /repos/*/git/trees", PROMOTES, True),
    ("promotion commit", "POST /repos/*/git/commits", PROMOTES, True),
    ("promotion branch", "POST /repos/*/git/refs", PROMOTES, False),
    ("promotion PR", "POST /repos/*/pulls", PROMOTES, False),
    ("review request", "POST /repos/*/pulls/*/requested_reviewers", PROMOTES, True),  # a set: asking again adds no one
    ("promotion PR anchored", "PATCH /repos/*/pulls/*", PROMOTES, True),
    ("checkpoint blob", "POST /repos/*/git/blobs", BLOCKS, True),
    ("checkpoint commit", "POST /repos/*/git/commits", BLOCKS, True),
    ("checkpoint ref", "POST /repos/*/git/refs", BLOCKS, False),
]
LOST = 502


def applied_writes(fake, repo: str) -> list[str]:
    """The writes GitHub carried out for `repo`: those it answered, and those whose answer was lost."""
    prefix = f"/repos/{repo}/"
    return [f"{method} {_NUM.sub('/N', _SHA.sub('SHA', path.removeprefix(prefix)))}"
            for method, path, status, *_ in fake.requests
            if method != "GET" and path.startswith(prefix) and (status < 400 or status == LOST)]


def with_repeat(writes: list[str], route: str) -> list[str]:
    """`writes` with the first one `route` matches carried out a second time, right after."""
    name = re.sub(r"statuses/(\*|[0-9a-f]{40})$", "statuses/SHA", route.replace("/repos/*/", "")).replace("/*/", "/N/")
    name = re.sub(r"/\*$", "/N", name)
    at = writes.index(name)
    return writes[: at + 1] + [name] + writes[at + 1:]


@pytest.mark.parametrize(("write", "route", "system", "repeated"), LOST_ROWS, ids=[r[0] for r in LOST_ROWS])
def test_row_a_write_carried_out_whose_answer_was_lost_lands_once(fake_github, env, repo, write, route, system, repeated):
    sha, number = governed_repo(fake_github, system, repo=repo)
    route = route.format(sha=sha)
    fake_github.lose_answer_next(route, status=LOST, times=1)
    decision = promotion_gate(request_for(sha, number, system=system, repo=repo))
    lost = [c for c in fake_github.requests if c[1].startswith(f"/repos/{repo}/") and c[2] == LOST]
    assert len(lost) == 1, lost  # the lost answer was met, once
    promoted = system == PROMOTES
    assert decision.verdict == (Verdict.promoted if promoted else Verdict.blocked), decision.reasons
    expected = PROMOTED_WRITES if promoted else BLOCKED_WRITES
    assert applied_writes(fake_github, repo) == (with_repeat(expected, route) if repeated else expected)
    if promoted:
        # Statuses are append-only per context and GitHub shows the newest: the same state posted twice
        # (the lost answer's and the retry's, same state, description and link) reads as one to every
        # reader (branch protection, the PR page, the combined status). Finding it first would cost a GET
        # on every happy path, which the call budgets forbid; a status is never a create the gate counts.
        assert statuses(fake_github, repo, sha) == (["success", "success"] if write == "final status" else ["success"])
        promotion = fake_github.branch_sha(repo, f"promote/{PROMOTES}/{sha[:7]}")
        guard = [s["state"] for s in fake_github.status_history(repo, promotion) if s["context"] == "promotion-gate/lock-guard"]
        assert guard == (["success", "success"] if write == "lock-guard status" else ["success"])
    else:
        assert [s["state"] for s in fake_github.status_history(repo, sha)] == ["failure"]
    [*prs] = promotion_prs(fake_github, repo)
    assert len(prs) == (1 if promoted else 0)
    assert [t["slug"] for p in prs for t in p["requested_teams"]] == (["it-helpdesk"] if promoted else [])
    if promoted:  # the PR found after the lost answer is the one later anchored: the ledger head in its body
        assert (prs[0]["body"] or "").startswith("Ledger head: entry ")
    comments = fake_github.comments(repo, number)
    assert len(comments) == (0 if promoted else 1)
    assert all(c["user"]["login"] == "promotion-gate-bot" for c in comments)
    assert (BLOCKED in fake_github.labels(repo, number), LABEL in fake_github.labels(repo, number)) == (not promoted, promoted)
    assert len(fake_github.ref_log(repo, "refs/promotion-gate/ledger")) == 1  # one checkpoint, not two
    assert [d.decision_id for d in decisions_of(env, repo)] == [decision.decision_id]
    assert (env / "ledger.jsonl").read_text().count("\n") == 1


@pytest.mark.parametrize("system", [PROMOTES, BLOCKS])
def test_row_a_check_run_carried_out_whose_answer_was_lost_is_written_once(fake_github, app_env, system):
    from tests.fakes.github_routes_checks import check_runs, latest_check_runs
    from tests.github_support import REPO

    sha, number = governed_repo(fake_github, system)
    fake_github.add_installation(7, 42, "acme", repositories=[REPO])
    fake_github.lose_answer_next("POST /repos/*/check-runs", status=LOST, times=1)
    decision = promotion_gate(request_for(sha, number, system=system))
    lost = [c for c in fake_github.requests if c[1].startswith(f"/repos/{REPO}/") and c[2] == LOST]
    assert len(lost) == 1, lost
    promoted = system == PROMOTES
    assert decision.verdict == (Verdict.promoted if promoted else Verdict.blocked), decision.reasons
    runs = check_runs(fake_github, REPO, sha)
    names = [r["name"] for r in runs]
    assert sorted(names) == sorted({*names}) == ["promotion-gate", f"promotion-gate / {system}"]  # the lost one found, not repeated
    latest = latest_check_runs(fake_github, REPO, sha)
    assert {n: r["conclusion"] for n, r in latest.items()} == dict.fromkeys(names, "success" if promoted else "failure")
    assert len(promotion_prs(fake_github, REPO)) == (1 if promoted else 0)
    assert len(fake_github.comments(REPO, number)) == (0 if promoted else 1)
    assert [d.decision_id for d in decisions_of(app_env, REPO)] == [decision.decision_id]


def test_row_the_checkpoint_ref_moved_whose_answer_was_lost_moves_once(fake_github, env, repo):
    """The second decision moves refs/promotion-gate/ledger (PATCH, force=false); the move carried out
    and its answer lost, the retry finds the ref already at its checkpoint: one commit more, not two."""
    sha, number = governed_repo(fake_github, BLOCKS, PROMOTES, repo=repo)
    first = promotion_gate(request_for(sha, number, system=BLOCKS, repo=repo))
    assert len(fake_github.ref_log(repo, "refs/promotion-gate/ledger")) == 1
    fake_github.lose_answer_next("PATCH /repos/*/git/refs/*", status=LOST, times=1)
    second = promotion_gate(request_for(sha, number, system=PROMOTES, repo=repo))
    assert (first.verdict, second.verdict) == (Verdict.blocked, Verdict.promoted), second.reasons
    assert [c[2] for c in fake_github.requests if c[0] == "PATCH" and "/git/refs/" in c[1]][0] == LOST
    chain = fake_github.ref_log(repo, "refs/promotion-gate/ledger")
    assert len(chain) == 2 and len(set(chain)) == 2
    assert (env / "ledger.jsonl").read_text().count("\n") == 2
    assert len(promotion_prs(fake_github, repo)) == 1 and len(fake_github.comments(repo, number)) == 1


# The request run's writes, their answers lost (the gate run's rows are above). The request run runs
# in-process, as a worker runs it; the gate runs it starts stay scheduled (a deployment no worker
# serves), so everything on GitHub came from the request run. Each row: the lost answer met once,
# every create landed once (a comment by marker, a check run by name and external_id), one gate run
# per head, and only a commit status, append-only, posted again (the same state and text).

UNSERVED_GATE = "faults-request-unserved"


@pytest.fixture(scope="module")
def unserved_gate(prefect_harness):
    promotion_gate.to_deployment(name=UNSERVED_GATE).apply()
    yield f"promotion-gate/{UNSERVED_GATE}"
    delete_scheduled(UNSERVED_GATE)


REQUEST_LOST_ROWS = [  # (the write, its route, auth, what happens, carried out again by the retry)
    ("pending status", "POST /repos/*/statuses/{head}", "token", "label", True),
    ("no-system comment", "POST /repos/*/issues/*/comments", "token", "label on no system", False),
    ("lock-guard status on a push", "POST /repos/*/statuses/{head}", "token", "push", True),
    ("voided status on a push", "POST /repos/*/statuses/{before}", "token", "push", True),
    ("pending check run", "POST /repos/*/check-runs", "app", "label", False),
    ("lock-guard check run on a push", "POST /repos/*/check-runs", "app", "push", False),
    ("voided check run on a push", "PATCH /repos/*/check-runs/*", "app", "push", False),
]


def _request_run(ask_) -> list[str]:
    return promotion_request(**build_parameters(ask_))


@pytest.mark.parametrize(("write", "route", "auth", "event", "repeated"), REQUEST_LOST_ROWS, ids=[r[0] for r in REQUEST_LOST_ROWS])
def test_row_a_request_run_write_whose_answer_was_lost_lands_once(fake_github, env, monkeypatch, tmp_path, unserved_gate,
                                                                     repo, write, route, auth, event, repeated):
    from promotion_gate.notifications.github_bodies import NO_SYSTEM_MARKER
    from promotion_gate.notifications.github_events import Supersede
    from tests.fakes.github_routes_checks import check_runs
    from tests.github_support import as_github_app

    monkeypatch.setenv("PROMOTION_GATE_GATE_DEPLOYMENT", unserved_gate)
    if auth == "app":
        as_github_app(monkeypatch, fake_github, tmp_path)
    sha, number = governed_repo(fake_github, *(() if event == "label on no system" else (PROMOTES,)), repo=repo)
    if auth == "app":
        fake_github.add_installation(7, 42, "acme", repositories=[repo])
    before, head = None, sha
    if event == "push":  # a labelled PR is evaluated, then a new commit supersedes it
        assert len(_request_run(ask(repo, sha, number, "d-1"))) == 1
        before, head = sha, fake_github.commit_files(repo, "feature", {"docs/more.md": "more\n"}, author_login="alice")
    fake_github.lose_answer_next(route.format(head=head, before=before), status=LOST, times=1)
    started = _request_run(Supersede(repo, number, head, "dana", before, "alice") if event == "push"
                           else ask(repo, head, number, "d-2"))
    lost = [c for c in fake_github.requests if c[1].startswith(f"/repos/{repo}/") and c[2] == LOST]
    assert len(lost) == 1, lost  # the lost answer was met, once
    assert len(started) == (0 if event == "label on no system" else 1)
    runs = gate_runs(repo, number)
    assert sorted(r.state.name for r in runs) == (["Scheduled", "Withdrawn"] if event == "push"
                                                  else [] if event == "label on no system" else ["Scheduled"])
    comments = fake_github.comments(repo, number)
    assert [c["body"].startswith(NO_SYSTEM_MARKER) for c in comments] == ([True] if event == "label on no system" else [])
    for commit in {sha, head}:
        made = [(r["name"], r["external_id"]) for r in check_runs(fake_github, repo, commit)]
        assert len(made) == len(set(made)), made  # no check run created twice
        if auth == "app":
            assert fake_github.status_history(repo, commit) == []
    if auth == "token":
        history = [(c, s["context"], s["state"], s["description"]) for c in {sha, head} for s in fake_github.status_history(repo, c)]
        assert len(history) - len(set(history)) == (1 if repeated else 0), history  # the one lost status, posted again
    if event == "push":
        voided = [s for s in fake_github.status_history(repo, before) if s["context"] == STATUS] if auth == "token" else \
            [r for r in check_runs(fake_github, repo, before) if r["name"] == f"promotion-gate / {PROMOTES}"]
        assert voided and ((voided[0]["state"] == "error") if auth == "token" else (voided[0]["conclusion"] == "cancelled"))
