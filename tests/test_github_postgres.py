"""The full production topology on 127.0.0.1 with PostgreSQL behind Prefect: `prefect server
start` on a fresh database, `prefect deploy --all` from prefect.yaml, a process worker, the
gateway served by uvicorn, the fake GitHub. A signed delivery in; a promotion PR out.

Marked `postgres` (deselect with `-m "not postgres"` on a machine without PostgreSQL); CI runs it
(.ci/run starts PostgreSQL). PostgreSQL missing is a failure here, never a silent skip."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from tests.conftest import missing_service
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
