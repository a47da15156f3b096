"""A burst of labels on the production topology with PostgreSQL (issue 10): `prefect server start`
on a fresh database (`pg_burst_*`, created and dropped), the deployments and limits from
prefect.yaml and docs/operations.md (pool 8, gates 6, requests 2, gate queue first), a process
worker polling every second, the gateway (uvicorn), the fake GitHub. N signed labels at once,
one PR each (a low-tier system with two evidence files: an automated promotion).

Run: .venv/bin/python bench/bench_burst.py [--labels 100] [--timeout 900]
Prints: the time from the burst to the first and the last decision, decisions a second, the
pending status latency (median, p90), the peak resident memory of the worker's process tree, and
the end-state counts (decisions, PRs, statuses). docs/benchmarks.md keeps the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")

import httpx  # noqa: E402

from tests.fakes import FakeGitHub  # noqa: E402
from tests.github_support import PROMOTES, SECRET, gate_key_pem, governed_repo, labelled_delivery  # noqa: E402
from tests.github_topology import Topology, postgres_database  # noqa: E402

STATUS = f"promotion-gate/{PROMOTES}"
ENV = {"PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_REQUESTS": "0", "PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_WRITES": "0",
       "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Peak(threading.Thread):
    """Samples the worker tree's resident memory every half second."""

    def __init__(self, topology: Topology) -> None:
        super().__init__(daemon=True)
        self.topology, self.peak, self.done = topology, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.peak = max(self.peak, self.topology.worker_tree_rss())


async def burst(url: str, deliveries: list[tuple[bytes, dict]]) -> list[int]:
    async with httpx.AsyncClient(timeout=60) as client:
        answers = await asyncio.gather(*(client.post(f"{url}/github/webhook", content=b, headers=h) for b, h in deliveries))
    return [a.status_code for a in answers]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    fake = FakeGitHub().start()
    fake.add_team("acme", "it-helpdesk", ["hank"])
    prs = [(f"acme/burst-{i:03d}", *governed_repo(fake, PROMOTES, repo=f"acme/burst-{i:03d}")) for i in range(args.labels)]
    deliveries = [labelled_delivery(fake, number, repo=repo, delivery_id=f"burst-{i}") for i, (repo, _, number) in enumerate(prs)]
    with tempfile.TemporaryDirectory() as tmp, postgres_database(prefix="pg_burst") as database, \
            Topology(Path(tmp), fake.base_url, SECRET, database_url=database,
                     gate_env=ENV | {"PROMOTION_GATE_SIGNING_KEY": gate_key_pem()}) as topology:
        topology.start()
        peak = Peak(topology)
        peak.start()
        start = time.perf_counter()
        codes = asyncio.run(burst(topology.gateway_url, deliveries))
        acked = time.perf_counter() - start
        pending: dict[str, float] = {}
        final: dict[str, float] = {}
        while len(final) < len(prs) and time.perf_counter() - start < args.timeout:
            now = time.perf_counter() - start
            for repo, sha, _ in prs:
                state = fake.statuses(repo, sha).get(STATUS, {}).get("state")
                if state is not None and repo not in pending:
                    pending[repo] = now
                if state not in (None, "pending") and repo not in final:
                    final[repo] = now
            time.sleep(0.2)
        peak.done.set()
        peak.join()
        states = [fake.statuses(repo, sha).get(STATUS, {}).get("state") for repo, sha, _ in prs]
        promotions = sum(1 for repo, _, _ in prs for p in fake.pulls(repo) if p["head"]["ref"].startswith("promote/"))
        ledger = Path(tmp) / "audit-store" / "ledger.jsonl"
        recorded = ledger.read_text().count("\n") if ledger.exists() else 0
        if len(final) < len(prs):
            print(topology.tail(15), file=sys.stderr)
    decided = sorted(final.values())
    print(f"labels: {args.labels} (PostgreSQL, pool 8 / gates 6 / requests 2, worker polling 1 s)")
    print(f"webhook answers: {dict((c, codes.count(c)) for c in sorted(set(codes)))} in {acked:.2f} s")
    if pending:
        print(f"pending status after the label: median {statistics.median(pending.values()):.1f} s, "
              f"p90 {quantile(list(pending.values()), 0.9):.1f} s, first {min(pending.values()):.1f} s")
    if decided:
        span = decided[-1] - decided[0]
        print(f"first decision {decided[0]:.1f} s, last {decided[-1]:.1f} s, "
              f"{len(decided) / decided[-1]:.2f} decisions/s overall ({(len(decided) - 1) / span if span else 0:.2f}/s after the first)")
    print(f"decided {len(decided)}/{len(prs)}; statuses {dict((s, states.count(s)) for s in sorted(set(states), key=str))}; "
          f"promotion PRs {promotions}; ledger lines {recorded}")
    print(f"peak resident memory of the worker tree: {peak.peak / 2**20:.0f} MiB")
    fake.stop()
    return 0 if len(decided) == len(prs) else 1


if __name__ == "__main__":
    sys.exit(main())
