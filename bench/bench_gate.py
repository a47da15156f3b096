"""Measures `promotion-gate check` wall time and the flow's time per promotion on the examples.

Run: make bench   (or .venv/bin/python bench/bench_gate.py --runs 10)
Prints a Markdown table; docs/benchmarks.md keeps the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


NOW = "2026-11-24T12:00:00Z"  # the examples' evidence is dated 2026-11-20: judge it as of a fixed day
CHECK = [sys.executable, "-m", "promotion_gate.cli", "check", "examples/repo", "--system", "support-assistant", "--now", NOW]
FLOOR = [sys.executable, "-c", "import pydantic, yaml"]


def time_command(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, capture_output=True, check=False)
        out.append(time.perf_counter() - start)
    return out


def time_check(runs: int) -> tuple[list[float], list[float]]:
    """`check` and its floor (an interpreter importing pydantic and yaml), interleaved in one run."""
    check, floor = [], []
    for _ in range(runs):
        floor += time_command(FLOOR, 1)
        check += time_command(CHECK, 1)
    return check, floor


def time_flow(runs: int) -> tuple[float, list[float]]:
    os.environ.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from promotion_gate.checklists.decision import PromotionRequest
    from promotion_gate.cli.demo import build_example_repo
    from promotion_gate.flows.promotion import promotion_gate

    times = []
    with tempfile.TemporaryDirectory() as tmp, temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        repo = Path(tmp) / "repo"
        commit = build_example_repo(repo, datetime.now(timezone.utc))
        first = None
        for i in range(runs + 1):
            system = ("helpdesk-summarizer", "support-assistant", "loan-prescreener")[i % 3]
            req = PromotionRequest(repository=str(repo), system=system, commit=commit, requester=f"bench-{i}",
                                   requested_at=datetime.now(timezone.utc))
            start = time.perf_counter()
            promotion_gate(req, approvals=["sam", "rene"], store=str(Path(tmp) / "store"))
            elapsed = time.perf_counter() - start
            if first is None:
                first = elapsed
            else:
                times.append(elapsed)
    return first, times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    check, floor = time_check(args.runs)
    first, flow = time_flow(args.runs)
    print("| what | median | min | max |")
    print("|---|---|---|---|")
    print(f"| floor: `python -c 'import pydantic, yaml'` ({args.runs} runs) | {statistics.median(floor):.3f} s | {min(floor):.3f} s | {max(floor):.3f} s |")
    print(f"| `promotion-gate check` (support-assistant, {args.runs} runs, wall incl. interpreter) | {statistics.median(check):.3f} s | {min(check):.3f} s | {max(check):.3f} s |")
    print(f"| `check` as a ratio to the floor (medians) | {statistics.median(check) / statistics.median(floor):.2f}x | | |")
    print(f"| flow per promotion, embedded server warm ({len(flow)} runs, heartbeats off) | {statistics.median(flow):.3f} s | {min(flow):.3f} s | {max(flow):.3f} s |")
    print(f"| first flow run, including starting Prefect's embedded server | {first:.3f} s | | |")


if __name__ == "__main__":
    main()
