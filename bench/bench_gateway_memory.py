"""Measures the gateway under hostile load: peak memory, /healthz latency, slow clients cut off.

Run: .venv/bin/python bench/bench_gateway_memory.py
Starts `promotion-gate serve` (uvicorn, the server of gateway.app.build_server, default limits)
as a subprocess on 127.0.0.1, with the Slack route mounted, then:

1. 100 concurrent 25 MB uploads to /github/webhook carrying a forged X-Hub-Signature-256 (the
   gateway must read them to find out: the worst case; an upload with no signature header is
   refused before its body is read), plus 4 chunked 100 MB uploads to /slack/interactions with a
   forged signature and no Content-Length (the streaming cap, not the header, refuses them);
2. 100 slow clients, each sending one byte of its body every 2 s, timed until the gateway has
   closed them all.

During 1 it samples /healthz every 50 ms; it reads the gateway's peak RSS (VmHWM in
/proc/<pid>/status) at the end. Prints Markdown; docs/benchmarks.md keeps the figures. Under 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
CHUNK = b" " * (256 * 1024)


def start_gateway(port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMOTION_GATE_", "PREFECT_API_URL"))}
    env |= {"PROMOTION_GATE_GITHUB_WEBHOOK_SECRET": "bench-webhook-secret", "PREFECT_API_URL": "http://127.0.0.1:9/api",
            "PROMOTION_GATE_SIGNOFF_CHANNEL": "slack", "PROMOTION_GATE_SLACK_BOT_TOKEN": "xoxb-bench",
            "PROMOTION_GATE_SLACK_SIGNING_SECRET": "bench-signing-secret", "PROMOTION_GATE_SLACK_TEAM_ID": "T0BENCH",
            "PROMOTION_GATE_SLACK_API_URL": "http://127.0.0.1:9/api/"}
    gateway = subprocess.Popen([sys.executable, "-m", "promotion_gate.cli", "serve", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                if b"200" in s.recv(100):
                    return gateway
        except OSError:
            time.sleep(0.2)
    gateway.kill()
    raise SystemExit(f"the gateway did not start: {gateway.stderr.read().decode()[-2000:]}")


def status_of(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MiB
    return float("nan")


async def upload(port: int, path: str, size: int, headers: str, chunked: bool) -> str:
    """Send `size` bytes as fast as the gateway takes them; the status it answered, or how it ended."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return f"connect failed ({type(exc).__name__})"
    framing = "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n"
    writer.write(f"POST {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n{headers}{framing}\r\n".encode())
    answer = asyncio.ensure_future(reader.readline())  # read while sending: a refusal comes before the end
    sent = 0
    try:
        while sent < size and not answer.done():
            writer.write(CHUNK if not chunked else b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            await writer.drain()
            sent += len(CHUNK)
    except ConnectionError:
        pass
    try:
        line = await asyncio.wait_for(answer, 60)
        return line.decode().split(" ")[1] if line else "closed without an answer"
    except (ConnectionError, asyncio.TimeoutError) as exc:
        return f"no answer ({type(exc).__name__})"
    finally:
        writer.close()


def healthz_samples(port: int, stop: threading.Event, samples: list[float]) -> None:
    """In its own thread, with blocking sockets: not queued behind the uploads' event loop."""
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                ok = b" 200 " in s.recv(100)
            samples.append(time.perf_counter() - started if ok else float("inf"))
        except OSError:
            samples.append(float("inf"))
        stop.wait(0.05)


async def burst(port: int, uploads: int, upload_mb: int, slack_uploads: int, slack_mb: int) -> tuple[Counter, Counter, list[float], float]:
    stop, samples = threading.Event(), []
    sampler = threading.Thread(target=healthz_samples, args=(port, stop, samples))
    sampler.start()
    github = "Content-Type: application/json\r\nX-GitHub-Event: pull_request\r\nX-Hub-Signature-256: sha256=" + "0" * 64 + "\r\n"
    slack = (f"Content-Type: application/x-www-form-urlencoded\r\nX-Slack-Request-Timestamp: {int(time.time())}\r\n"
             "X-Slack-Signature: v0=" + "0" * 64 + "\r\n")
    started = time.perf_counter()
    results = await asyncio.gather(
        *(upload(port, "/github/webhook", upload_mb * MB, github, chunked=False) for _ in range(uploads)),
        *(upload(port, "/slack/interactions", slack_mb * MB, slack, chunked=True) for _ in range(slack_uploads)))
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.3)
    stop.set()
    sampler.join()
    return Counter(results[:uploads]), Counter(results[uploads:]), samples, elapsed


async def slow_clients(port: int, clients: int, every: float) -> tuple[float, int]:
    """`clients` connections each sending a byte of a 1000-byte body every `every` s; seconds until all were closed."""
    async def one() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /github/webhook HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                     b"X-GitHub-Event: ping\r\nX-Hub-Signature-256: sha256=" + b"0" * 64 + b"\r\nContent-Length: 1000\r\n\r\n")
        started = time.perf_counter()
        try:
            while True:
                writer.write(b" ")
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), every) == b"" or reader.at_eof():
                        break
                    await reader.read()  # the answer (408 or 503); then the close
                    break
                except asyncio.TimeoutError:
                    continue
        except ConnectionError:
            pass
        writer.close()
        return time.perf_counter() - started

    times = await asyncio.gather(*(one() for _ in range(clients)))
    return max(times), sum(1 for t in times if t > 15)


def metrics(port: int) -> str:
    import json

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    refused = json.loads(data.split(b"\r\n\r\n", 1)[1])["refused"]
    return "; ".join(f"{route}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) for route, kinds in refused.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--upload-mb", type=int, default=25)
    parser.add_argument("--slack-uploads", type=int, default=4)
    parser.add_argument("--slack-mb", type=int, default=100)
    parser.add_argument("--slow-clients", type=int, default=100)
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    gateway = start_gateway(args.port)
    try:
        idle = status_of(gateway.pid, "VmRSS")
        github, slack, health, elapsed = asyncio.run(burst(args.port, args.uploads, args.upload_mb, args.slack_uploads, args.slack_mb))
        peak = status_of(gateway.pid, "VmHWM")
        counted = metrics(args.port)
        slowest, late = asyncio.run(slow_clients(args.port, args.slow_clients, 2.0))
        after = status_of(gateway.pid, "VmRSS")
    finally:
        gateway.terminate()
        gateway.wait(timeout=30)
    answered = [s for s in health if s != float("inf")]
    print(f"## gateway under hostile load ({args.uploads} x {args.upload_mb} MB forged webhooks + "
          f"{args.slack_uploads} x {args.slack_mb} MB chunked Slack bodies)\n")
    print("| figure | value |\n|---|---|")
    print(f"| gateway RSS idle | {idle:.0f} MiB |")
    print(f"| gateway peak RSS (VmHWM) over the burst | **{peak:.0f} MiB** (budget 200) |")
    print(f"| burst duration | {elapsed:.1f} s |")
    print(f"| /github/webhook answers | {', '.join(f'{n} x {s}' for s, n in github.most_common())} |")
    print(f"| /slack/interactions answers | {', '.join(f'{n} x {s}' for s, n in slack.most_common())} |")
    print(f"| refusals the gateway counted (/metrics) | {counted} |")
    if answered:
        print(f"| /healthz during the burst | {len(answered)}/{len(health)} answered; median "
              f"{statistics.median(answered) * 1000:.1f} ms, max {max(answered) * 1000:.1f} ms |")
    else:
        print(f"| /healthz during the burst | 0/{len(health)} answered |")
    print(f"| {args.slow_clients} slow clients (a byte every 2 s): all closed after | {slowest:.1f} s ({late} still open after 15 s) |")
    print(f"| gateway RSS after | {after:.0f} MiB |")


if __name__ == "__main__":
    main()
