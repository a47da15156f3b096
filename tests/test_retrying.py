"""The one retry primitive (promotion_gate/retrying.py): what each caller retries, how long it waits, and
what it never retries. No test sleeps: stamina's testing mode is on for the session
(tests/conftest.py); where a row shows the wait stamina would take, testing mode is off and a
retry hook reads the wait and stops the run before the sleep."""

from __future__ import annotations

import asyncio
from urllib.error import URLError

import httpx
import pytest
import requests
import stamina
from github import GithubException
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse
from stamina.instrumentation import set_on_retry_hooks

from promotion_gate.github_api.client import GITHUB_FAILURES, GitHubUnavailable, Retrying
from promotion_gate.retrying import GaveUp, RetryPolicy, backoff_hook, retry_call
from promotion_gate.config.settings import Settings
from promotion_gate.slack_api.client import SLACK_FAILURES, build_slack_client, slack_call, slack_wait, SlackUnavailable
from promotion_gate.gateway.handoff import Handoff, PrefectUnreachable, start_wait
from promotion_gate.notifications.github_events import Promote
from tests.fakes import FakeSlack

POLICY = RetryPolicy(retries=3, backoff=0.5, max_wait=60)
NOW = 1000.0


def gh(status: int, headers: dict | None = None, message: str = "x") -> GithubException:
    return GithubException(status, {"message": message}, headers or {})


def slack(status: int, error: str = "x", headers: dict | None = None) -> SlackApiError:
    response = SlackResponse(client=None, http_verb="POST", api_url="https://slack.test/api/chat.postMessage",
                             req_args={}, data={"ok": False, "error": error}, headers=headers or {}, status_code=status)
    return SlackApiError(error, response)


def prefect(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://prefect.test/api/deployments/x/create_flow_run")
    return httpx.HTTPStatusError(str(status), request=request, response=httpx.Response(status, request=request))


github_hook = backoff_hook(POLICY, GITHUB_FAILURES, Retrying(clock=lambda: NOW).wait_for)
slack_hook = backoff_hook(POLICY, SLACK_FAILURES, slack_wait)
start_hook = backoff_hook(POLICY, (Exception,), start_wait)


# what stamina's on= hook answers: False (not retried), True (the exponential backoff), seconds (the server's wait)
@pytest.mark.parametrize("hook, exc, answer", [
    (github_hook, gh(502), True),
    (github_hook, gh(500), True),
    (github_hook, requests.ConnectionError("reset"), True),
    (github_hook, requests.Timeout("slow"), True),
    (github_hook, gh(403, {"Retry-After": "7"}, "You have exceeded a secondary rate limit."), 7.0),
    (github_hook, gh(429, {"Retry-After": "0"}), 0.0),
    (github_hook, gh(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1030"}), 30.0),
    (github_hook, gh(403, {"Retry-After": "3600"}), False),  # longer than max_wait: not waited for
    (github_hook, gh(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "99999"}), False),
    (github_hook, gh(403, {"Retry-After": "-5"}), False),  # a negative wait is no wait at all: given up
    (github_hook, gh(403, {"Retry-After": "nan"}), False),
    (github_hook, gh(403, {"Retry-After": "inf"}), False),
    (github_hook, gh(403, {}, "Resource not accessible by integration"), False),
    (github_hook, gh(404), False),
    (github_hook, gh(422), False),
    (github_hook, gh(401), False),
    (github_hook, ValueError("a bug, not GitHub"), False),
    (github_hook, slack(503), False),  # another client's failure is not GitHub's to retry
    (slack_hook, slack(500, "internal_error"), True),
    (slack_hook, slack(502, "Received a response in a non-JSON format"), True),
    (slack_hook, slack(429, "ratelimited", {"Retry-After": "2"}), 2.0),
    (slack_hook, slack(429, "ratelimited", {"retry-after": ["4"]}), 4.0),
    (slack_hook, slack(429, "ratelimited"), 1.0),  # no Retry-After: a second
    (slack_hook, slack(429, "ratelimited", {"Retry-After": "3600"}), False),
    (slack_hook, slack(429, "ratelimited", {"Retry-After": "soon"}), 1.0),
    (slack_hook, URLError("connection refused"), True),
    (slack_hook, ConnectionResetError("reset"), True),
    (slack_hook, slack(200, "channel_not_found"), False),
    (slack_hook, slack(200, "invalid_auth"), False),
    (slack_hook, slack(200, "ratelimited"), False),  # the error text alone, over HTTP 200, is not a rate limit
    (slack_hook, TimeoutError("read timed out"), False),  # a write that may have landed is not sent twice
    (slack_hook, gh(502), False),
    (start_hook, httpx.ConnectError("refused"), True),
    (start_hook, httpx.ReadTimeout("slow"), True),
    (start_hook, ConnectionRefusedError(), True),
    (start_hook, prefect(503), True),
    (start_hook, prefect(429), True),
    (start_hook, PrefectUnreachable("down"), True),
    (start_hook, prefect(404), False),  # no such deployment: final
    (start_hook, prefect(422), False),  # a bad parameter: final
    (start_hook, ValueError("bug"), False),
])
def test_what_is_retried_and_what_is_not(hook, exc, answer):
    got = hook(exc)
    assert got == answer and type(got) is type(answer)


def first_wait(policy: RetryPolicy, exc: Exception, errors=GITHUB_FAILURES, wait_for=None) -> float:
    """The wait stamina takes before the first retry, read by a retry hook that stops the run first."""
    class Stop(Exception):
        pass

    waits = []

    def hook(details):
        waits.append(details.wait_for)
        raise Stop

    def fail():
        raise exc

    set_on_retry_hooks([hook])
    try:
        with stamina.set_testing(False), pytest.raises(Stop):
            retry_call("x", policy, errors, wait_for or Retrying(clock=lambda: NOW).wait_for, fail)
    finally:
        set_on_retry_hooks(None)
    [wait] = waits
    return wait


def test_the_server_asks_and_the_wait_is_exactly_that():
    assert first_wait(POLICY, gh(403, {"Retry-After": "7"})) == 7.0
    assert first_wait(POLICY, gh(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1042"})) == 42.0
    assert first_wait(POLICY, slack(429, "ratelimited", {"Retry-After": "3"}), SLACK_FAILURES, slack_wait) == 3.0


def test_the_backoff_is_the_configured_one_with_a_bounded_jitter():
    assert 0.5 <= first_wait(POLICY, gh(502)) <= 1.0
    assert first_wait(RetryPolicy(retries=3, backoff=0, max_wait=60), gh(502)) == 0.0
    assert first_wait(RetryPolicy(retries=3, backoff=30, max_wait=10), gh(502)) == 10.0  # capped at max_wait


def counting(*answers):
    calls = []

    def operation():
        calls.append(1)
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return operation, calls


@pytest.mark.parametrize("answers, retries, outcome, tries", [
    ((gh(502), gh(503), "done"), 3, "done", 3),
    ((gh(502),), 2, "GaveUp transient", 3),  # 1 try + 2 retries, no more
    ((gh(502),), 0, "GaveUp transient", 1),
    ((gh(403, {"Retry-After": "3600"}),), 5, "GaveUp transient", 1),  # too long a wait: at once
    ((gh(422),), 5, "GaveUp final", 1),
    ((ValueError("bug"),), 5, "ValueError", 1),  # not a named failure: untouched, once
    ((KeyError("bug"), "done"), 5, "KeyError", 1),
])
def test_the_number_of_tries_is_the_policy_s(answers, retries, outcome, tries):
    operation, calls = counting(*answers)
    try:
        got = retry_call("x", RetryPolicy(retries, 0.5, 60), GITHUB_FAILURES, Retrying(clock=lambda: NOW).wait_for, operation)
    except GaveUp as gave_up:
        got = f"GaveUp {'transient' if gave_up.transient else 'final'}"
        assert gave_up.tries == tries
    except Exception as exc:
        got = type(exc).__name__
    assert (got, len(calls)) == (outcome, tries)


def test_the_github_layer_says_how_many_tries(monkeypatch):
    operation, calls = counting(gh(502, message="Bad Gateway"))
    with pytest.raises(GitHubUnavailable, match=r"^GitHub 502 on post x: Bad Gateway \(after 5 tries\)$"):
        Retrying(retries=4)("post x", operation)
    assert len(calls) == 5


@pytest.fixture
def slack_settings(fake_slack):
    fake_slack.add_channel("C1", "signoff")
    return lambda **kw: Settings(slack_api_url=fake_slack.base_url, slack_bot_token=SecretStr(FakeSlack.BOT_TOKEN), **kw)


@pytest.mark.parametrize("fault, retries, ok, posts", [
    (dict(status=502, times=2), 2, True, 3),
    (dict(status=500, times=3), 2, False, 3),
    (dict(error="ratelimited", retry_after=0, times=1), 1, True, 2),
    (dict(error="ratelimited", retry_after=3600, times=1), 3, False, 1),  # longer than the max wait: not waited for
    (dict(error="channel_not_found"), 3, False, 1),
    (dict(error="not_in_channel"), 3, False, 1),
])
def test_slack_calls_are_retried_at_one_layer(fake_slack, slack_settings, fault, retries, ok, posts):
    fake_slack.fail_next("chat.postMessage", **fault)
    client = build_slack_client(slack_settings(slack_retries=retries, slack_retry_max_wait_seconds=30))
    try:
        slack_call("chat.postMessage to C1", client.chat_postMessage, channel="C1", text="x")
        answered = True
    except SlackUnavailable as exc:
        answered = False
        assert "xoxb" not in str(exc)
    assert (answered, len(fake_slack.calls("chat.postMessage"))) == (ok, posts)


def test_the_handoff_retries_a_start_after_the_answer_and_not_a_refused_one():
    a = Promote("acme/models", 1, "a" * 40, "dana")

    def starter(*failures):
        calls = []

        async def start(_ask) -> str:
            calls.append(1)
            if len(calls) <= len(failures):
                await asyncio.sleep(0)
                raise failures[len(calls) - 1]
            return "run-1"

        return start, calls

    async def up() -> bool:
        return True

    async def scenario(start) -> Exception | str:
        handoff = Handoff(start, 0, retries=3, probe=up)
        first = asyncio.ensure_future(start(a))
        try:
            return await handoff._finish(a, first)
        except Exception as exc:
            return exc

    start, calls = starter(httpx.ConnectError("refused"), prefect(503))
    assert asyncio.run(scenario(start)) == "run-1" and len(calls) == 3
    start, calls = starter(prefect(404))
    result = asyncio.run(scenario(start))
    assert isinstance(result, httpx.HTTPStatusError) and len(calls) == 1
    start, calls = starter(*[prefect(502)] * 9)
    result = asyncio.run(scenario(start))
    assert isinstance(result, httpx.HTTPStatusError) and len(calls) == 4  # the first try + 3 retries
