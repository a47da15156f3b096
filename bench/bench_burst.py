"""A burst of labels on the production topology with PostgreSQL (issue 10): `prefect server start`
on a fresh database (`pg_burst_*`, created and dropped), the deployments and limits from
prefect.yaml and docs/operations.md (pool 8; queue `gates` priority 1, limit 2; queue `requests`
priority 2, limit 1; the same limits on the deployments), a process worker polling every second,
the gateway (uvicorn; it sets the pending status itself after the 202), the fake GitHub. First
`--singles` labels one at a time on the quiet topology (each waits for its decision), then
`--labels` signed labels at once, one PR each (a low-tier system with two evidence files: an
automated promotion).

Run: .venv/bin/python bench/bench_burst.py [--labels 100] [--singles 10] [--timeout 900] [--early off]
     [--early-gates off] [--gates N] [--requests M]   (other queue limits than the shipped ones, for comparison)
Prints: the load average before and after; for the single labels, the pending status latency
(median, p90) as a ratio to the webhook's own answer time measured in the same run (the floor:
no status can come before the 202), and the time to the decision; for the burst, the time to the
first pending status, the first and the last decision, decisions a second, the peak resident
memory of the server, the worker with its flow-run processes, and the gateway (each process
tree), and the end-state counts (decisions, PRs, statuses). A delivery the gateway answers 503
(more bodies at once than it reads: gateway/inbound.py) is redelivered after its Retry-After, as
an operator redelivers a failed delivery; the redeliveries are counted. `--early off` runs the gateway with
PROMOTION_GATE_GATEWAY_EARLY_PENDING=false (the request run alone sets the pending status), for
comparison; `--early-gates off` with PROMOTION_GATE_GATEWAY_EARLY_GATES=false (the request runs
alone start the gate runs). The gateway's own counts (`/metrics`: early writes, gate starts) are
printed at the end. docs/benchmarks.md keeps the figures.
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
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")

import httpx  # noqa: E402

from tests.fakes import FakeGitHub  # noqa: E402
from tests.github_support import PROMOTES, SECRET, gate_key_pem, governed_repo, labelled_delivery  # noqa: E402
from tests.github_topology import QUEUES, Topology, postgres_database  # noqa: E402

STATUS = f"promotion-gate/{PROMOTES}"
ENV = {"PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_REQUESTS": "0", "PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_WRITES": "0",
       "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "2"}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Peak(threading.Thread):
    """Samples the resident memory of the server's, the worker's and the gateway's process trees every half second."""

    def __init__(self, topology: Topology) -> None:
        super().__init__(daemon=True)
        self.topology, self.done = topology, threading.Event()
        self.roots = {"server": topology.processes[0].pid, "worker": topology.worker.pid, "gateway": topology.gateway.pid}
        self.peak = dict.fromkeys(self.roots, 0) | {"all": 0}

    def run(self) -> None:
        while not self.done.wait(0.5):
            now = {name: self.topology.tree_rss(pid) for name, pid in self.roots.items()}
            now["all"] = sum(now.values())
            self.peak = {name: max(self.peak[name], now[name]) for name in self.peak}


def singles(topology: Topology, fake, prs: list, timeout: float) -> tuple[list[float], list[float], list[float]]:
    """One label at a time: (webhook answer times, pending status latencies, decision latencies)."""
    answers, pending, decided = [], [], []
    for i, (repo, sha, number) in enumerate(prs):
        body, headers = labelled_delivery(fake, number, repo=repo, delivery_id=f"single-{i}")
        start = time.perf_counter()
        code = httpx.post(f"{topology.gateway_url}/github/webhook", content=body, headers=headers, timeout=60).status_code
        answers.append(time.perf_counter() - start)
        assert code == 202, code
        seen = None
        while time.perf_counter() - start < timeout:
            state = fake.statuses(repo, sha).get(STATUS, {}).get("state")
            if state is not None and seen is None:
                seen = time.perf_counter() - start
                pending.append(seen)
            if state not in (None, "pending"):
                decided.append(time.perf_counter() - start)
                break
            time.sleep(0.01)
    return answers, pending, decided


def chain(api_url: str, repo: str, number: int, since: float) -> str:
    """The request run and the gate run behind one PR's decision, each from its creation: when it
    was handed to the worker (Pending), when its process began the flow (Running) and when it
    ended, in seconds after `since` (the burst's first delivery, a UNIX time)."""
    runs = httpx.post(f"{api_url}/flow_runs/filter", timeout=30,
                      json={"flow_runs": {"tags": {"all_": [f"pr:{repo}#{number}"]}}}).json()
    parts = []
    for run in sorted(runs, key=lambda r: r["created"]):
        states = httpx.get(f"{api_url}/flow_run_states/", params={"flow_run_id": run["id"]}, timeout=30).json()
        marks = {}
        for state in sorted(states, key=lambda st: st["timestamp"]):
            marks.setdefault(state["type"], datetime.fromisoformat(state["timestamp"]).timestamp() - since)
        kind = "gate" if "promotion-gate" in run["tags"] else "request"
        created = datetime.fromisoformat(run["created"]).timestamp() - since
        parts.append(f"{kind}: created {created:.1f}, pending {marks.get('PENDING', float('nan')):.1f}, "
                     f"running {marks.get('RUNNING', float('nan')):.1f}, ended {marks.get('COMPLETED', float('nan')):.1f}")
    return "; ".join(parts)


async def burst(url: str, deliveries: list[tuple[bytes, dict]], redeliveries: int = 5) -> tuple[list[int], int]:
    """All at once; a delivery answered 503 (the gateway busy) is redelivered after its Retry-After,
    as an operator redelivers a failed delivery from GitHub. (first answers, redeliveries made)."""
    async with httpx.AsyncClient(timeout=60) as client:
        async def post(body: bytes, headers: dict) -> httpx.Response:
            return await client.post(f"{url}/github/webhook", content=body, headers=headers)

        answers = await asyncio.gather(*(post(b, h) for b, h in deliveries))
        first, made = [a.status_code for a in answers], 0
        todo = [(d, a) for d, a in zip(deliveries, answers, strict=True) if a.status_code == 503]
        for _ in range(redeliveries):
            if not todo:
                break
            await asyncio.sleep(max(float(a.headers.get("retry-after", "1")) for _, a in todo))
            made += len(todo)
            again = await asyncio.gather(*(post(b, h) for (b, h), _ in todo))
            todo = [(d, a) for (d, _), a in zip(todo, again, strict=True) if a.status_code == 503]
    return first, made


def watch(fake: FakeGitHub, prs: list[tuple[str, str, int]], start: float, timeout: float,
          pending: dict[str, float], final: dict[str, float]) -> None:
    """Stamp each PR's first status and its first final one (seconds after ``start``), polling the
    fake GitHub every 0.2 s until every PR is decided or ``timeout``."""
    while len(final) < len(prs) and time.perf_counter() - start < timeout:
        now = time.perf_counter() - start
        for repo, sha, _ in prs:
            state = fake.statuses(repo, sha).get(STATUS, {}).get("state")
            if state is not None and repo not in pending:
                pending[repo] = now
            if state not in (None, "pending") and repo not in final:
                final[repo] = now
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--singles", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--early", choices=("on", "off"), default="on")
    parser.add_argument("--early-gates", choices=("on", "off"), default="on")
    parser.add_argument("--gates", type=int, help="the `gates` queue's limit (default: docs/operations.md's)")
    parser.add_argument("--requests", type=int, help="the `requests` queue's limit (default: docs/operations.md's)")
    args = parser.parse_args()
    load_before = os.getloadavg()
    fake = FakeGitHub().start()
    fake.add_team("acme", "it-helpdesk", ["hank"])
    one = [(f"acme/single-{i:03d}", *governed_repo(fake, PROMOTES, repo=f"acme/single-{i:03d}")) for i in range(args.singles)]
    prs = [(f"acme/burst-{i:03d}", *governed_repo(fake, PROMOTES, repo=f"acme/burst-{i:03d}")) for i in range(args.labels)]
    deliveries = [labelled_delivery(fake, number, repo=repo, delivery_id=f"burst-{i}") for i, (repo, _, number) in enumerate(prs)]
    limits = {queue: limit for queue, _, limit in QUEUES} | {k: v for k, v in (("gates", args.gates), ("requests", args.requests)) if v}
    queues = tuple((queue, priority, limits[queue]) for queue, priority, _ in QUEUES)
    env = ENV | {"PROMOTION_GATE_SIGNING_KEY": gate_key_pem(), "PROMOTION_GATE_GATEWAY_EARLY_PENDING": str(args.early == "on").lower(),
                 "PROMOTION_GATE_GATEWAY_EARLY_GATES": str(args.early_gates == "on").lower()}
    with tempfile.TemporaryDirectory() as tmp, postgres_database(prefix="pg_burst") as database, \
            Topology(Path(tmp), fake.base_url, SECRET, database_url=database, gate_env=env, queues=queues) as topology:
        topology.start()
        answers, single_pending, single_decided = singles(topology, fake, one, args.timeout)
        load_quiet = os.getloadavg()
        peak = Peak(topology)
        peak.start()
        pending: dict[str, float] = {}
        final: dict[str, float] = {}
        start, wall_start = time.perf_counter(), time.time()
        # GitHub's state is watched from the first delivery on, while the redeliveries still go out:
        # a status set before the last 503's redelivery is stamped when it was set, not after it.
        watcher = threading.Thread(target=watch, args=(fake, prs, start, args.timeout, pending, final), daemon=True)
        watcher.start()
        codes, redelivered = asyncio.run(burst(topology.gateway_url, deliveries))
        acked = time.perf_counter() - start
        watcher.join()
        peak.done.set()
        peak.join()
        states = [fake.statuses(repo, sha).get(STATUS, {}).get("state") for repo, sha, _ in prs]
        promotions = sum(1 for repo, _, _ in prs for p in fake.pulls(repo) if p["head"]["ref"].startswith("promote/"))
        ledger = Path(tmp) / "audit-store" / "ledger.jsonl"
        recorded = ledger.read_text().count("\n") if ledger.exists() else 0
        if len(final) < len(prs):
            print(topology.tail(15), file=sys.stderr)
        first = min(final, key=final.get) if final else None
        behind_first = chain(topology.api_url, first, next(n for r, _, n in prs if r == first), wall_start) if first else ""
        gateway_counts = httpx.get(f"{topology.gateway_url}/metrics", timeout=10).json()
    load_after = os.getloadavg()
    decided = sorted(final.values())
    print(f"load average (1, 5, 15 min): before {fmt_load(load_before)}; after the single labels {fmt_load(load_quiet)}; "
          f"after the burst {fmt_load(load_after)}")
    print(f"early pending status from the gateway: {args.early}; gate runs started by the gateway: {args.early_gates}")
    if single_pending:
        floor = statistics.median(answers)
        median = statistics.median(single_pending)
        print(f"single labels ({len(one)}, one at a time): webhook answer median {floor * 1000:.0f} ms (the floor); pending status "
              f"median {median:.2f} s ({median / floor:.1f}x the floor), p90 {quantile(single_pending, 0.9):.2f} s; "
              f"decision median {statistics.median(single_decided):.1f} s" if single_decided else "")
    print(f"burst: {args.labels} labels (PostgreSQL, pool 8, queues gates {limits['gates']} / requests {limits['requests']}, "
          "worker polling 1 s)")
    print(f"webhook answers: {dict((c, codes.count(c)) for c in sorted(set(codes)))}, {redelivered} redelivered after a 503, "
          f"all in {acked:.2f} s")
    if pending:
        print(f"pending status after the label: first {min(pending.values()):.1f} s, median {statistics.median(pending.values()):.1f} s, "
              f"p90 {quantile(list(pending.values()), 0.9):.1f} s, last {max(pending.values()):.1f} s")
    if decided:
        span = decided[-1] - decided[0]
        print(f"first decision {decided[0]:.1f} s, last {decided[-1]:.1f} s, "
              f"{len(decided) / decided[-1]:.2f} decisions/s overall ({(len(decided) - 1) / span if span else 0:.2f}/s after the first)")
        print(f"behind the first decision (s after the burst began): {behind_first}")
    print(f"decided {len(decided)}/{len(prs)}; statuses {dict((s, states.count(s)) for s in sorted(set(states), key=str))}; "
          f"promotion PRs {promotions}; ledger lines {recorded} (single labels and burst)")
    print(f"the gateway's counts: early pending {gateway_counts.get('early_pending')}, gate starts {gateway_counts.get('early_gates')}")
    print("peak resident memory (process trees): " + ", ".join(f"{name} {value / 2**20:.0f} MiB" for name, value in peak.peak.items()))
    fake.stop()
    return 0 if len(decided) == len(prs) else 1


def fmt_load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{x:.2f}" for x in load)


if __name__ == "__main__":
    sys.exit(main())
