"""Measures Slack sign-off: click → flow resumed, the gateway's answer to Slack, Slack API calls per promotion.

Run: .venv/bin/python bench/bench_slack.py --promotions 6 --answers 300
A real temporary Prefect server (Prefect's test harness), the promotion-gate deployment served by a
Runner polling every second (each run and each resume in its own process, as under a worker), the
gateway served by uvicorn on 127.0.0.1, and the fake Slack. Prints Markdown; docs/benchmarks.md
keeps the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECRET = "bench-signing-secret"


def configure(fake, store: Path) -> None:
    for user_id, name in [("U0SAM", "sam"), ("U0RENE", "rene"), ("U0DANA", "dana")]:
        fake.add_user(user_id, name, f"{name}@example.com")
    fake.add_usergroup("S0SECURITY", "security", ["U0SAM"])
    fake.add_usergroup("S0RISK", "risk", ["U0RENE"])
    os.environ.update({f"PROMOTION_GATE_{k}": v for k, v in {
        "SIGNOFF_CHANNEL": "slack", "SLACK_API_URL": fake.base_url, "SLACK_BOT_TOKEN": fake.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET, "SLACK_CHANNELS": json.dumps({"security": "C0SEC", "risk": "C0RISK"}),
        "AUDIT_STORE": str(store),
    }.items()})


def serve_gate():
    from prefect.runner import Runner

    from promotion_gate.flows.promotion import promotion_gate

    runner = Runner(name="bench", query_seconds=1, limit=None, pause_on_shutdown=False)
    loop = asyncio.new_event_loop()

    async def add() -> None:
        await runner.add_deployment(await promotion_gate.ato_deployment(name="bench"))

    loop.run_until_complete(add())
    threading.Thread(target=loop.run_until_complete, args=(runner.start(),), daemon=True).start()
    return "promotion-gate/bench"


def serve_gateway():
    from starlette.applications import Starlette

    from promotion_gate.config.settings import load_settings
    from promotion_gate.gateway.slack_routes import routes
    from tests.fakes.server import BackgroundServer

    server = BackgroundServer(Starlette(routes=routes(load_settings())), "gateway")
    return f"http://127.0.0.1:{server.start()}/slack/interactions"


def new_commit(repo: Path, i: int) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Dana", "GIT_AUTHOR_EMAIL": "dana@example.com",
           "GIT_COMMITTER_NAME": "Dana", "GIT_COMMITTER_EMAIL": "dana@example.com"}
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", f"bench {i}"], check=True, env=env)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def wait(condition, timeout: float = 120, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError("condition not met")


def click(http, url: str, fake, channel: str, user: str) -> tuple[float, float]:
    """POST a signed click; (seconds until the gateway answered, perf_counter when it was sent)."""
    from promotion_gate.notifications.slack_interactions import ACTION_APPROVE
    from tests.fakes.slack_payloads import build_interaction_request

    payload = fake.click(channel, fake.messages(channel)[-1]["ts"], ACTION_APPROVE, user)
    body, headers = build_interaction_request(payload, SECRET)
    sent = time.perf_counter()
    response = http.post(url, content=body, headers=headers)
    assert response.status_code == 200, response.text
    return time.perf_counter() - sent, sent


def one_promotion(http, url, fake, deployment: str, repo: Path, i: int, refusals: int = 0) -> dict:
    from prefect.deployments import run_deployment

    from promotion_gate.checklists.decision import PromotionRequest
    from promotion_gate.prefect_api.waiting import read_run_state, read_waiting

    fake.reset()
    configure(fake, Path(os.environ["PROMOTION_GATE_AUDIT_STORE"]))
    request = PromotionRequest(repository=str(repo), system="support-assistant", commit=new_commit(repo, i),
                               requester="dana-dev", requested_at=datetime.now(timezone.utc))
    run = str(run_deployment(deployment, parameters={"request": request.model_dump(mode="json")}, timeout=0).id)
    wait(lambda: read_run_state(run).is_paused() and read_waiting(run))
    before = len(fake.calls())
    refused = gateway_answers(http, url, fake, refusals)
    burst = slice(before, len(fake.calls()))
    answered, sent = click(http, url, fake, "C0SEC", "U0SAM")
    wait(lambda: not read_run_state(run).is_paused())
    left_paused = time.perf_counter() - sent
    wait(lambda: read_run_state(run).is_running())
    running = time.perf_counter() - sent
    wait(lambda: (r := read_waiting(run)) and r.seen == 1)
    applied = time.perf_counter() - sent
    wait(lambda: read_run_state(run).is_paused())
    click(http, url, fake, "C0RISK", "U0RENE")
    wait(lambda: read_run_state(run).is_final())
    every = fake.calls()
    calls = Counter(c.method for c in every[:burst.start] + every[burst.stop:])
    return {"answered": answered, "left_paused": left_paused, "running": running, "applied": applied, "calls": calls,
            "refused": refused}


def gateway_answers(http, url: str, fake, n: int) -> list[float]:
    """The answer time of `n` signed clicks that are judged and refused (the requester's own), one
    after the other as reviewers click: each waits for the previous one's ephemeral answer."""
    times = []
    for i in range(n):
        answered, _ = click(http, url, fake, "C0SEC", "U0DANA")
        times.append(answered)
        wait(lambda: len(fake.ephemerals()) > i)
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--promotions", type=int, default=6)
    parser.add_argument("--answers", type=int, default=300)
    args = parser.parse_args()
    os.environ.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="ERROR")
    import httpx
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from promotion_gate.cli.demo import build_example_repo
    from tests.fakes import FakeSlack

    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake, prefect_test_harness(server_startup_timeout=60), \
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), httpx.Client(timeout=30) as http:
        repo = Path(tmp) / "repo"
        build_example_repo(repo, datetime.now(timezone.utc))
        configure(fake, Path(tmp) / "store")
        deployment, url = serve_gate(), serve_gateway()
        runs = [one_promotion(http, url, fake, deployment, repo, i, args.answers if i == 0 else 0)
                for i in range(args.promotions)]
        answers = runs[0]["refused"] + [r["answered"] for r in runs]
    report(runs, answers)


def report(runs: list[dict], answers: list[float]) -> None:
    def row(name: str, values: list[float]) -> str:
        return f"| {name} | {statistics.median(values):.3f} s | {min(values):.3f} s | {max(values):.3f} s |"

    print(f"| what ({len(runs)} promotions) | median | min | max |\n|---|---|---|---|")
    print(row("valid click → run left Suspended (resume accepted)", [r["left_paused"] for r in runs]))
    print(row("valid click → resumed run Running (flow re-entered)", [r["running"] for r in runs]))
    print(row("valid click → answer applied, Slack updated", [r["applied"] for r in runs]))
    print(f"\n| gateway answer to Slack ({len(answers)} signed clicks) | p50 | p99 | max |\n|---|---|---|---|")
    print(f"| POST /slack/interactions | {pct(answers, .5) * 1000:.1f} ms | {pct(answers, .99) * 1000:.1f} ms "
          f"| {max(answers) * 1000:.1f} ms |")
    calls = runs[-1]["calls"]
    print("\n| Slack API calls in one high-tier promotion (2 roles, 2 approvals) | count |\n|---|---|")
    for method, n in sorted(calls.items()):
        print(f"| {method} | {n} |")


if __name__ == "__main__":
    main()
