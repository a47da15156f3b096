"""GitHub budgets, measured on the production topology on 127.0.0.1: a Prefect server (SQLite),
the deployments from prefect.yaml, a process worker polling every second, the gateway served by
uvicorn, and the fake GitHub (which counts every API call).

Run: .venv/bin/python bench/bench_github.py [--rounds 5] [--runs 7] [--database postgres|sqlite]
(PostgreSQL, the production database, at 127.0.0.1:5432 by default; a fresh database is created
and dropped.) Prints Markdown; docs/benchmarks.md keeps the figures.

- GitHub API calls per decision (a system with two evidence files), to block and to promote;
- webhook acknowledgement: 50 concurrent signed deliveries (distinct PR heads) per round;
- webhook → pending status and → final status (automated path), pacing 0 and PyGithub's default.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")

import httpx  # noqa: E402

from tests.fakes import FakeGitHub  # noqa: E402
from tests.github_support import PROMOTES, SECRET, UNAPPROVED, governed_repo, labelled_delivery  # noqa: E402
from tests.github_topology import BIN, Topology, postgres_database  # noqa: E402

STATUS = f"promotion-gate/{PROMOTES}"
PACING_ZERO = {"PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_REQUESTS": "0", "PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_WRITES": "0"}
PACING_DEFAULT = {"PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_REQUESTS": "0.25", "PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_WRITES": "1"}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def state(fake: FakeGitHub, repo: str, sha: str) -> str | None:
    return fake.statuses(repo, sha).get(STATUS, {}).get("state")


def deliver_and_watch(fake: FakeGitHub, topology: Topology, repo: str, edit=None, timeout: float = 120) -> dict:
    """One labelled PR through the gateway; when pending and the final status appeared."""
    sha, number = governed_repo(fake, PROMOTES, repo=repo, edit=edit)
    before = len(fake.requests)
    body, headers = labelled_delivery(fake, number, repo=repo)
    start = time.perf_counter()
    response = httpx.post(f"{topology.gateway_url}/github/webhook", content=body, headers=headers, timeout=30)
    ack = time.perf_counter() - start
    assert response.status_code == 202, response.text
    pending = final = None
    while time.perf_counter() - start < timeout:
        current = state(fake, repo, sha)
        now = time.perf_counter() - start
        if current == "pending" and pending is None:
            pending = now
        if current not in (None, "pending"):
            final = now
            break
        time.sleep(0.02)
    if final is None:
        raise RuntimeError(f"no final status for {repo} within {timeout} s\n{topology.tail()}")
    calls = fake.requests[before:]
    return {"ack": ack, "pending": pending if pending is not None else final, "final": final, "state": current,
            "calls": calls, "sha": sha, "gate_start": gate_start(topology, repo, number, sha), "t0": start}


def gate_start(topology: Topology, repo: str, number: int, sha: str) -> float | None:
    """Seconds from the delivery to the gate run's start, as Prefect recorded it (wall clock)."""
    response = httpx.post(f"{topology.api_url}/flow_runs/filter", json={"flow_runs": {"tags": {"all_": [
        f"pr:{repo}#{number}", f"sha:{sha[:7]}", "promotion-gate"]}}}, timeout=10)
    runs = response.json()
    return runs[0]["start_time"] if runs else None


def budget(calls: list[tuple[str, str, int]]) -> tuple[int, int]:
    per_decision = [c for c in calls if not c[1].endswith("/files")]  # the PR's file list is read once per request
    return len(per_decision), len([c for c in per_decision if c[0] != "GET"])


async def ack_round(topology: Topology, deliveries: list[tuple[bytes, dict]]) -> tuple[list[float], list[str], int]:
    async with httpx.AsyncClient(timeout=30) as client:
        async def one(body: bytes, headers: dict) -> tuple[float, str, bool]:
            start = time.perf_counter()
            response = await client.post(f"{topology.ack_url}/github/webhook", content=body, headers=headers)
            elapsed = time.perf_counter() - start
            assert response.status_code == 202, response.text
            return elapsed, response.json()["key"], response.json()["flow_run_id"] is not None

        done = await asyncio.gather(*(one(b, h) for b, h in deliveries))
    return [d[0] for d in done], [d[1] for d in done], sum(d[2] for d in done)


def runs_exist(topology: Topology, keys: list[str]) -> int:
    response = httpx.post(f"{topology.api_url}/flow_runs/filter", timeout=30,
                          json={"flow_runs": {"idempotency_key": {"any_": keys}}, "limit": 200})
    return len(response.json())


def measure_acks(fake: FakeGitHub, topology: Topology, rounds: int) -> tuple[list[float], list[float], int]:
    """Ack latencies, the time until all 50 runs of a round exist, and how many answers carried the run id."""
    repo = "acme/ack-bench"
    fake.create_repo(repo)
    times: list[float] = []
    created: list[float] = []
    with_id = 0
    for r in range(rounds):
        deliveries = []
        for i in range(50):
            branch = f"r{r}-{i}"
            fake.commit_files(repo, branch, {f"ai-systems/{PROMOTES}/n.txt": f"{r}-{i}\n"})
            number = fake.open_pull(repo, branch, "main", branch, "alice", labels=("promote:production",))
            deliveries.append(labelled_delivery(fake, number, repo=repo))
        start = time.perf_counter()
        latencies, keys, ids = asyncio.run(ack_round(topology, deliveries))
        while runs_exist(topology, keys) < len(keys):
            time.sleep(0.05)
        created.append(time.perf_counter() - start)
        times += latencies
        with_id += ids
    return times, created, with_id


def start_ack_gateway(topology: Topology) -> None:
    """A second gateway whose deployment no worker serves: the acks are measured without the runs."""
    from tests.github_topology import free_port

    topology.run(BIN / "prefect", "work-pool", "create", "ack-bench-pool", "--type", "process")
    topology.run(sys.executable, "-c", "from promotion_gate.flows.dispatch import promotion_request as f; "
                 "f.to_deployment(name='ack-bench', work_pool_name='ack-bench-pool').apply()")
    port = free_port()
    topology.ack_url = f"http://127.0.0.1:{port}"
    saved = topology.env
    topology.env = saved | {"PROMOTION_GATE_REQUEST_DEPLOYMENT": "promotion-request/ack-bench"}
    topology.spawn("gateway-ack", BIN / "promotion-gate", "serve", "--host", "127.0.0.1", "--port", str(port))
    topology.env = saved
    topology.wait_http(f"{topology.ack_url}/healthz", 60, "the ack gateway")


def restart_worker(topology: Topology, env: dict) -> None:
    import signal

    worker = next(p for p in topology.processes if p.args[1:3] == ["worker", "start"])
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(30)
    topology.processes.remove(worker)
    topology.env |= env
    topology.spawn("worker", BIN / "prefect", "worker", "start", "--pool", "promotion-gate-pool", "--type", "process")
    time.sleep(5)


def latencies(fake: FakeGitHub, topology: Topology, runs: int, label: str) -> list[dict]:
    results = []
    for i in range(runs + 1):  # the first run warms the worker's imports; it is not counted
        result = deliver_and_watch(fake, topology, f"acme/{label}-{i}")
        if i:
            results.append(result)
    return results


def row(name: str, values: list[float]) -> str:
    return f"| {name} | {statistics.median(values):.2f} s | {min(values):.2f} s | {max(values):.2f} s | {len(values)} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 50 concurrent deliveries")
    parser.add_argument("--runs", type=int, default=7, help="deliveries timed end to end, per pacing")
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    args = parser.parse_args()
    print(f"Prefect server database: {args.database}\n")
    database = postgres_database() if args.database == "postgres" else contextlib.nullcontext(None)
    with FakeGitHub() as fake, tempfile.TemporaryDirectory() as tmp, database as url:
        fake.add_team("acme", "it-helpdesk", ["hank"])
        with Topology(Path(tmp), fake.base_url, SECRET, gate_env=PACING_ZERO, database_url=url) as topology:
            topology.start()
            start_ack_gateway(topology)
            blocked = deliver_and_watch(fake, topology, "acme/budget-block", edit=UNAPPROVED)
            promoted = deliver_and_watch(fake, topology, "acme/budget-promote")
            fast = latencies(fake, topology, args.runs, "pacing-zero")
            restart_worker(topology, PACING_DEFAULT)
            paced = latencies(fake, topology, args.runs, "pacing-default")
            acks = measure_acks(fake, topology, args.rounds)
    report(blocked, promoted, acks, fast, paced)


def own_time(result: dict) -> float | None:
    from datetime import datetime

    if not result["gate_start"]:
        return None
    started = datetime.fromisoformat(result["gate_start"].replace("Z", "+00:00")).timestamp()
    wall_t0 = time.time() - (time.perf_counter() - result["t0"])  # approximate: when the delivery was posted
    return result["final"] - (started - wall_t0)


def report(blocked: dict, promoted: dict, acks: tuple, fast: list[dict], paced: list[dict]) -> None:
    print("| decision | state | API calls (of which writes) | calls |")
    print("|---|---|---|---|")
    for name, result in (("block (2 evidence files)", blocked), ("promote (2 evidence files)", promoted)):
        total, written = budget(result["calls"])
        listing = ", ".join(f"{m} {p.split('/repos/', 1)[-1].split('/', 2)[-1]}" for m, p, _ in result["calls"])
        print(f"| {name} | {result['state']} | {total} ({written}) | {listing} |")
    print()
    times, created, with_id = acks
    print(f"Webhook acknowledgement, {len(times)} deliveries in rounds of 50 concurrent: "
          f"p50 {quantile(times, 0.5) * 1000:.0f} ms, p99 {quantile(times, 0.99) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; "
          f"{with_id} answers carried the run id, the others its key; all 50 runs of a round existed after "
          f"{statistics.median(created):.2f} s (median of {len(created)} rounds)")
    print(f"Sequential deliveries (one at a time, end-to-end runs below): ack median "
          f"{statistics.median([r['ack'] for r in fast]) * 1000:.0f} ms")
    print()
    print("| from the webhook to | median | min | max | runs |")
    print("|---|---|---|---|---|")
    print(row("pending status (pacing 0)", [r["pending"] for r in fast]))
    print(row("final status (pacing 0)", [r["final"] for r in fast]))
    print(row("final status, the gate's own time (pacing 0)", [t for t in map(own_time, fast) if t is not None]))
    print(row("pending status (PyGithub's pacing 0.25 s / 1 s)", [r["pending"] for r in paced]))
    print(row("final status (PyGithub's pacing)", [r["final"] for r in paced]))
    print(row("final status, the gate's own time (PyGithub's pacing)", [t for t in map(own_time, paced) if t is not None]))


if __name__ == "__main__":
    main()
