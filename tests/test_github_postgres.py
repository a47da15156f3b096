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
from tests.github_topology import Topology, postgres_database

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
    pacing = {"PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_REQUESTS": "0", "PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_WRITES": "0"}
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
        assert len(promotions) == 1 and promotions[0]["body"].startswith("# Promotion PROMOTED")
        assert count_flow_runs(database) == 2  # promotion-request and promotion-gate, in PostgreSQL
        assert (tmp_path / "audit-store" / "ledger.jsonl").read_text().count("\n") == 1
