"""The full production topology on 127.0.0.1 with PostgreSQL behind Prefect: `prefect server
start` on a fresh database, `prefect deploy --all` from prefect.yaml, a process worker, the
gateway served by uvicorn, the fake GitHub. A signed delivery in; a promotion PR out.

Marked `postgres` (deselect with `-m "not postgres"` on a machine without PostgreSQL); CI runs it
(.ci/run starts PostgreSQL). PostgreSQL missing is a failure here, never a silent skip."""

from __future__ import annotations

import asyncio
import shlex
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import missing_service
from tests.fakes.fixtures import fake_slack, slack_server  # noqa: F401, F811
from tests.github_support import PROMOTES, SECRET, governed_repo, labelled_delivery, wait_for
from tests.github_topology import BIN, Topology, postgres_database

pytestmark = pytest.mark.postgres
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def reachable(url: str) -> None:
    async def connect() -> None:
        connection = await asyncpg.connect(url, timeout=5)
        await connection.close()

    asyncio.run(connect())


def count_flow_runs(url: str) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=10)
        try:
            return await connection.fetchval(
                "SELECT count(*) FROM flow_run r JOIN flow f ON f.id = r.flow_id"
                " WHERE f.name IN ('promotion-request', 'promotion-gate')"
            )
        finally:
            await connection.close()

    return asyncio.run(count())


def test_a_signed_label_becomes_a_promotion_pr_through_server_worker_and_gateway(fake_github, tmp_path):
    try:
        reachable(ADMIN)
    except (OSError, asyncpg.PostgresError) as exc:
        missing_service(f"PostgreSQL is not reachable at {ADMIN} ({type(exc).__name__})")
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    repo = "acme/governed"
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    from tests.github_support import gate_key_pem

    pacing = {"PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_REQUESTS": "0", "PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_WRITES": "0",
              "PROMOTION_GATE_SIGNING_KEY": gate_key_pem()}  # the GitHub path refuses the demo key
    with postgres_database(ADMIN) as database, Topology(tmp_path, fake_github.base_url, SECRET, database_url=database,
                                                        gate_env=pacing) as topology:
        topology.start()
        body, headers = labelled_delivery(fake_github, number, repo=repo)
        response = httpx.post(f"{topology.gateway_url}/github/webhook", content=body, headers=headers, timeout=10)
        assert response.status_code == 202, response.text
        branch = f"promote/{PROMOTES}/{sha[:7]}"
        try:
            wait_for(lambda: fake_github.statuses(repo, sha).get(f"promotion-gate/{PROMOTES}", {}).get("state") == "success",
                     120, what="the success status")
        except AssertionError:
            raise AssertionError(topology.tail()) from None
        promotions = [p for p in fake_github.pulls(repo) if p["head"]["ref"] == branch]
        assert len(promotions) == 1 and "# Promotion PROMOTED" in promotions[0]["body"]
        assert count_flow_runs(database) == 2  # promotion-request and promotion-gate, in PostgreSQL
        # prefect.yaml's build step: each run starts the engine directly with the deploying interpreter
        # (one process, not the worker's two), gate runs at normal priority, request runs under nice;
        # the sweeper keeps the worker's own start
        deployed = httpx.post(f"{topology.api_url}/deployments/filter", json={}, timeout=10).json()
        commands = {d["name"]: d["job_variables"].get("command") for d in deployed}
        gate, request = shlex.split(commands.pop("promotion-gate")), shlex.split(commands.pop("promotion-request"))
        assert Path(gate[0]).parent == BIN and gate[1:] == ["-m", "prefect.engine"], gate
        assert request[1:3] == ["-n", "10"] and request[3:] == gate, request
        assert commands == {"promotion-gate-sweeper": None, "recertify": None}, commands
        assert (tmp_path / "audit-store" / "ledger.jsonl").read_text().count("\n") == 1


# fault rows on the real topology (issue 10): a flow-run process killed, the Prefect server restarted


def gate_runs_of(api_url: str, repo: str, number: int) -> list[dict]:
    response = httpx.post(f"{api_url}/flow_runs/filter", timeout=10, json={
        "flow_runs": {"tags": {"all_": [f"pr:{repo}#{number}", "promotion-gate"]}}})
    return response.json()


def state_of(fake, repo: str, sha: str) -> str | None:
    return fake.statuses(repo, sha).get(f"promotion-gate/{PROMOTES}", {}).get("state")


def test_fault_rows_on_the_real_topology(fake_github, tmp_path):
    """Row 1, a gate run's process killed mid-run (the worker reports it Crashed): the sweep decides
    it as an error (status, one comment, one ledger line), and the label added again promotes it,
    once. Row 2, the Prefect server restarted while a promotion runs: decided once, one PR."""
    try:
        reachable(ADMIN)
    except (OSError, asyncpg.PostgresError) as exc:
        missing_service(f"PostgreSQL is not reachable at {ADMIN} ({type(exc).__name__})")
    from tests.github_support import gate_key_pem

    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    env = {"PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_REQUESTS": "0", "PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_WRITES": "0",
           "PROMOTION_GATE_SIGNING_KEY": gate_key_pem()}
    with postgres_database(ADMIN) as database, Topology(tmp_path, fake_github.base_url, SECRET, database_url=database,
                                                        gate_env=env) as topology:
        topology.start()
        gateway = f"{topology.gateway_url}/github/webhook"
        try:
            # row 1: the gate run stalls on a rate limit (Retry-After 40) creating the tree; its process is killed
            crash_repo = "acme/crash"
            sha, number = governed_repo(fake_github, PROMOTES, repo=crash_repo)
            fake_github.fail_secondary_rate_limit("POST /repos/acme/crash/git/trees", retry_after=40, times=1)
            body, headers = labelled_delivery(fake_github, number, repo=crash_repo, delivery_id="crash-1")
            assert httpx.post(gateway, content=body, headers=headers, timeout=10).status_code == 202
            wait_for(lambda: any(c[1].endswith("/git/trees") for c in fake_github.requests), 120, what="the stalled write")
            assert topology.kill_flow_runs() >= 1
            wait_for(lambda: [r["state_type"] for r in gate_runs_of(topology.api_url, crash_repo, number)] == ["CRASHED"],
                     120, what="the gate run reported Crashed")
            topology.run(BIN / "prefect", "deployment", "run", "promotion-gate-sweeper/promotion-gate-sweeper")
            wait_for(lambda: state_of(fake_github, crash_repo, sha) == "error", 180, what="the sweep's error status")
            assert len(fake_github.comments(crash_repo, number)) == 1
            body, headers = labelled_delivery(fake_github, number, repo=crash_repo, delivery_id="crash-2")
            assert httpx.post(gateway, content=body, headers=headers, timeout=10).status_code == 202
            wait_for(lambda: state_of(fake_github, crash_repo, sha) == "success", 180, what="the second attempt")
            assert len([p for p in fake_github.pulls(crash_repo) if p["head"]["ref"].startswith("promote/")]) == 1
            assert len(gate_runs_of(topology.api_url, crash_repo, number)) == 2

            # row 2: the server restarts while the promotion runs (a 20 s rate limit keeps it running)
            restart_repo = "acme/restart"
            sha2, number2 = governed_repo(fake_github, PROMOTES, repo=restart_repo)
            fake_github.fail_secondary_rate_limit("POST /repos/acme/restart/git/trees", retry_after=20, times=1)
            body, headers = labelled_delivery(fake_github, number2, repo=restart_repo, delivery_id="restart-1")
            assert httpx.post(gateway, content=body, headers=headers, timeout=10).status_code == 202
            wait_for(lambda: any(c[1] == "/repos/acme/restart/git/trees" for c in fake_github.requests), 120, what="a running gate")
            topology.restart_server()
            wait_for(lambda: state_of(fake_github, restart_repo, sha2) == "success", 240, what="the decision after the restart")
            assert len([p for p in fake_github.pulls(restart_repo) if p["head"]["ref"].startswith("promote/")]) == 1
            history = [s["state"] for s in fake_github.status_history(restart_repo, sha2)
                       if s["context"] == f"promotion-gate/{PROMOTES}"]
            # decided once, nothing after it: the gateway's early pending (skipped if it came too late) and the request run's
            assert history[0] == "success" and history[1:] in (["pending"], ["pending", "pending"]), history
            assert len(gate_runs_of(topology.api_url, restart_repo, number2)) == 1
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{topology.tail()}") from None
        ledger = (tmp_path / "audit-store" / "ledger.jsonl").read_text().count("\n")
        assert ledger == 3  # the crashed run's error, its second attempt's promotion, the restarted run's promotion


def test_fault_row_worker_killed_while_a_slack_sign_off_waits(fake_github, fake_slack, tmp_path):
    """Issue 10, point 9/11: a high-tier promotion waits for two sign-offs in Slack; the worker is
    killed. Security approves while no worker is alive, and Slack delivers that click twice (a
    retry); risk approves while the run is resumed with nobody to run it. Neither reviewer is told
    "no longer waiting"; the second is told the answer is kept. The worker comes back, the sweep
    delivers the kept answer, and the promotion is decided once: counts of runs, PRs, comments,
    statuses, Slack requests and counted approvals."""
    try:
        reachable(ADMIN)
    except (OSError, asyncpg.PostgresError) as exc:
        missing_service(f"PostgreSQL is not reachable at {ADMIN} ({type(exc).__name__})")
    import json

    from promotion_gate.checklists.decision import Decision
    from promotion_gate.gateway.slack_routes import KEPT, NOT_WAITING
    from promotion_gate.notifications.slack_interactions import ACTION_APPROVE
    from tests.fakes import FakeSlack
    from tests.fakes.slack_payloads import build_interaction_request
    from tests.github_support import gate_key_pem
    from tests.slack_support import CHANNELS, add_reviewers

    slack_secret, system = "slack-signing-secret-topology", "support-assistant"
    add_reviewers(fake_slack)
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    repo = "acme/signoff"
    sha, number = governed_repo(fake_github, system, repo=repo)
    env = {"PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_REQUESTS": "0", "PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_WRITES": "0",
           "PROMOTION_GATE_SIGNING_KEY": gate_key_pem(), "PROMOTION_GATE_SIGNOFF_CHANNEL": "slack",
           "PROMOTION_GATE_SLACK_API_URL": fake_slack.base_url, "PROMOTION_GATE_SLACK_BOT_TOKEN": FakeSlack.BOT_TOKEN,
           "PROMOTION_GATE_SLACK_SIGNING_SECRET": slack_secret, "PROMOTION_GATE_SLACK_CHANNELS": json.dumps(CHANNELS),
           "PROMOTION_GATE_SLACK_TEAM_ID": "T0FAKE", "PROMOTION_GATE_SLACK_CLICK_WAIT_SECONDS": "3",
           "PROMOTION_GATE_SLACK_RETRY_BACKOFF_SECONDS": "0.01"}
    status = f"promotion-gate/{system}"

    def gate_state() -> list[str]:
        return [r["state_type"] for r in gate_runs_of(topology.api_url, repo, number)]

    def approve(channel: str, user: str) -> tuple[bytes, dict[str, str]]:
        payload = fake_slack.click(channel, fake_slack.messages(channel)[0]["ts"], ACTION_APPROVE, user)
        return build_interaction_request(payload, slack_secret)

    def told() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e in fake_slack.ephemerals():
            out.setdefault(e["user"], []).append(e["text"])
        return out

    with postgres_database(ADMIN) as database, Topology(tmp_path, fake_github.base_url, SECRET, database_url=database,
                                                        gate_env=env) as topology:
        topology.start()
        slack = f"{topology.gateway_url}/slack/interactions"
        try:
            body, headers = labelled_delivery(fake_github, number, repo=repo, delivery_id="signoff-1")
            assert httpx.post(f"{topology.gateway_url}/github/webhook", content=body, headers=headers, timeout=10).status_code == 202
            wait_for(lambda: gate_state() == ["PAUSED"] and fake_slack.messages("C0SEC") and fake_slack.messages("C0RISK"),
                     180, what="the sign-off request and the suspended run")
            topology.kill_worker()  # no worker alive from here on

            security = approve("C0SEC", "U0SAM")
            for _ in range(2):  # the same signed request twice: a retried delivery, a double click
                assert httpx.post(slack, content=security[0], headers=security[1], timeout=10).status_code == 200
            wait_for(lambda: gate_state() == ["SCHEDULED"], 60, what="the run resumed, with no worker to take it")
            risk = approve("C0RISK", "U0RENE")
            assert httpx.post(slack, content=risk[0], headers=risk[1], timeout=10).status_code == 200
            wait_for(lambda: told().get("U0RENE"), 60, what="the risk reviewer told the answer is kept")
            assert len(told()["U0RENE"]) == 1 and KEPT in told()["U0RENE"][0]

            topology.start_worker()
            for _ in range(24):  # the sweep (also scheduled every minute) delivers each kept answer once the run waits
                if state_of_status(fake_github, repo, sha, status) == "success":
                    break
                if gate_state() == ["PAUSED"]:
                    topology.run(BIN / "prefect", "deployment", "run", "promotion-gate-sweeper/promotion-gate-sweeper")
                time.sleep(10)
            wait_for(lambda: state_of_status(fake_github, repo, sha, status) == "success", 120, what="the promotion")
            wait_for(lambda: gate_state() == ["COMPLETED"], 60, what="the gate run to end")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{topology.tail()}") from None
        assert count_flow_runs(database) == 2  # one promotion-request, one promotion-gate: nothing started twice
    history = [(s["state"], s["description"].split(" (")[0].split(":")[0]) for s in fake_github.status_history(repo, sha)
               if s["context"] == status]
    # decided once; "evaluating" is the gateway's early signal and the request run's, the same status under the
    # same context (GitHub keeps one per context): written once by each when the gateway was in time
    assert history[:2] == [("success", "promoted"), ("pending", "waiting for sign-off")]
    assert history[2:] in ([("pending", "evaluating support-assistant")], [("pending", "evaluating support-assistant")] * 2), history
    assert len([p for p in fake_github.pulls(repo) if p["head"]["ref"].startswith("promote/")]) == 1
    assert fake_github.comments(repo, number) == []
    requests = [c for c in fake_slack.calls("chat.postMessage") if c.status == 200]
    assert sorted(c.args["channel"] for c in requests) == ["C0RISK", "C0SEC"]  # each role asked once, no reminder
    assert not any(NOT_WAITING in t for texts in told().values() for t in texts)
    assert set(told()) <= {"U0SAM", "U0RENE"}
    [decision_file] = (tmp_path / "audit-store" / "decisions").glob("*/decision.json")
    decision = Decision.model_validate_json(decision_file.read_bytes())
    assert decision.verdict.value == "promoted" and sorted(s.identity for s in decision.signoffs) == ["rene", "sam"]
    assert [c.reason for c in decision.refused] in ([], ["sam has already signed off this promotion"])
    assert (tmp_path / "audit-store" / "ledger.jsonl").read_text().count("\n") == 1


def state_of_status(fake, repo: str, sha: str, context: str) -> str | None:
    return fake.statuses(repo, sha).get(context, {}).get("state")
