"""Shared parts of the Slack tests: the gate deployment served in-process, the fake workspace, the
gateway app, and waits on a run's state. Fixtures are re-exported by the test modules that use them."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
import warnings

from starlette.applications import Starlette

with warnings.catch_warnings():  # starlette's TestClient prefers httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from promotion_gate.checklists.decision import Decision, PromotionRequest
from promotion_gate.config.settings import load_settings
from promotion_gate.prefect_api.waiting import read_run_state, read_waiting
from promotion_gate.gateway.slack_routes import routes
from tests import github_support
from tests.fakes import FakeSlack
from tests.fakes.slack_payloads import build_interaction_request

SECRET = "slack-signing-secret-for-tests"
DEPLOYMENT = "promotion-gate/slack-tests"
CHANNELS = {"security": "C0SEC", "risk": "C0RISK"}
PEOPLE = [("U0SAM", "sam", "sam@example.com"), ("U0RENE", "rene", "rene@example.com"),
          ("U0DANA", "dana", "dana@example.com"), ("U0JORDAN", "jordan", "jordan@example.com"),
          ("U0OUT", "casey", "casey@elsewhere.example")]


@pytest.fixture(scope="session")
def gate_deployment(prefect_harness):
    """The promotion-gate flow served as a deployment by a Runner polling every second, in a thread;
    each flow run (and each resume) runs in its own process, as under a worker."""
    from prefect.runner import Runner

    from promotion_gate.flows.promotion import promotion_gate

    runner = Runner(name="slack-tests", query_seconds=1, limit=None, pause_on_shutdown=False)
    loop = asyncio.new_event_loop()

    async def add() -> None:  # by entrypoint, as a worker runs it (`python -m prefect.engine`), not a pickled flow
        await runner.add_deployment(await promotion_gate.ato_deployment(name="slack-tests"))

    loop.run_until_complete(add())
    thread = threading.Thread(target=loop.run_until_complete, args=(runner.start(),), name="runner", daemon=True)
    thread.start()
    yield DEPLOYMENT
    async def stop() -> None:
        await runner.stop()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=30)
    thread.join(timeout=30)


def add_reviewers(fake_slack) -> None:
    """The fake workspace's people, the two sign-off channels and the reviewers' user groups."""
    for user_id, name, email in PEOPLE:
        fake_slack.add_user(user_id, name, email)
    fake_slack.add_channel("C0SEC", "security-signoff")
    fake_slack.add_channel("C0RISK", "risk-signoff")
    fake_slack.add_usergroup("S0SECURITY", "security-reviewers", ["U0SAM"])
    fake_slack.add_usergroup("S0RISK", "risk-reviewers", ["U0RENE"])


@pytest.fixture
def slack_env(fake_slack, monkeypatch, tmp_path):
    """A fake workspace with the reviewers, and the settings that send sign-off through it."""
    add_reviewers(fake_slack)
    for name, value in {
        "SIGNOFF_CHANNEL": "slack", "SLACK_API_URL": fake_slack.base_url, "SLACK_BOT_TOKEN": FakeSlack.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET, "SLACK_CHANNELS": json.dumps(CHANNELS),
        "SLACK_RETRY_BACKOFF_SECONDS": "0", "SLACK_CLICK_WAIT_SECONDS": "30",  # served runs: no testing mode, no wait
        "AUDIT_STORE": str(tmp_path / "store"), "SLACK_TEAM_ID": "T0FAKE",
    }.items():
        monkeypatch.setenv(f"PROMOTION_GATE_{name}", value)
    return fake_slack


@pytest.fixture
def gateway(slack_env):
    """The Slack route in its own small app; TestClient runs the background work before it returns."""
    with TestClient(Starlette(routes=routes(load_settings()))) as client:
        yield client


def post_interaction(gateway, payload: dict, timestamp: int | None = None, secret: str = SECRET):
    body, headers = build_interaction_request(payload, secret, timestamp)
    return gateway.post("/slack/interactions", content=body, headers=headers)


def start_gate(repo: Path, commit: str, system: str = "support-assistant", requester: str = "dana-dev") -> str:
    from prefect.deployments import run_deployment

    request = PromotionRequest(repository=str(repo), system=system, commit=commit, requester=requester,
                               requested_at=datetime.now(timezone.utc))
    run = run_deployment(DEPLOYMENT, parameters={"request": request.model_dump(mode="json")}, timeout=0)
    return str(run.id)


def wait_for(condition, what: str, timeout: float = 60, poll: float = 0.1):
    return github_support.wait_for(condition, timeout=timeout, interval=poll, what=what)


def wait_suspended(run: str, seen: int = 0, timeout: float = 60):
    """The run's record once the run is suspended having applied `seen` answers."""
    def ready():
        state, record = read_run_state(run), read_waiting(run)
        if state is not None and state.is_final():
            raise AssertionError(f"run ended ({state.name}: {state.message}) while a wait was expected")
        return record if state is not None and state.is_paused() and record and record.seen >= seen else None
    return wait_for(ready, f"run {run} to suspend after {seen} answers", timeout)


def wait_final(run: str, timeout: float = 60):
    return wait_for(lambda: (s := read_run_state(run)) is not None and s.is_final() and s, f"run {run} to end", timeout)


def decision_of(store: Path, system: str = "support-assistant") -> Decision:
    """The one decision of `system` in the store. (A sweep in a test decides every gate run of the
    shared Prefect harness that ended without a decision, other tests' runs too: those land in
    this store under their own systems, and are not this test's.)"""
    found = [Decision.model_validate_json(p.read_bytes()) for p in sorted((store / "decisions").glob("*/decision.json"))]
    mine = [d for d in found if d.request.system == system]
    assert len(mine) == 1, [d.decision_id for d in found]
    return mine[0]


def report_of(store: Path) -> str:
    return next((store / "decisions").glob("*/report.md")).read_text()
