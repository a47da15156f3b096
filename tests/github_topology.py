"""The production topology on 127.0.0.1, for the end-to-end test and the bench: a Prefect server
(`prefect server start`, SQLite or PostgreSQL), the deployments from prefect.yaml (`prefect
deploy --all`), a process worker polling every second, the gateway (`promotion-gate serve`, i.e.
uvicorn), and the fake GitHub the caller runs. Every process is started here, in its own process
group, and stopped here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
QUEUES = (("gates", 1, 2), ("requests", 2, 1))  # docs/operations.md, "Capacity": (queue, priority, concurrency limit)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Topology:
    def __init__(self, workdir: Path, github_url: str, secret: str, *, database_url: str | None = None,
                 gate_env: dict[str, str] | None = None, queues: tuple[tuple[str, int, int], ...] = QUEUES) -> None:
        self.workdir, self.logs = workdir, workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.api_port, self.gateway_port = free_port(), free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}/api"
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"
        self.processes: list[subprocess.Popen] = []
        self.pool_limit, self.worker, self.gateway, self.queues = 8, None, None, queues
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "PROMOTION_GATE_"))} | {
            "PWD": str(ROOT), "PREFECT_HOME": str(workdir / "prefect-home"), "PREFECT_API_URL": self.api_url, "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1", "PREFECT_LOGGING_LEVEL": "INFO",
            "PROMOTION_GATE_GITHUB_API_URL": github_url, "PROMOTION_GATE_GITHUB_TOKEN": "topology-token",
            "PROMOTION_GATE_GITHUB_WEBHOOK_SECRET": secret, "PROMOTION_GATE_AUDIT_STORE": str(workdir / "audit-store"),
            "PROMOTION_GATE_PREFECT_UI_URL": f"http://127.0.0.1:{self.api_port}",
        } | (gate_env or {})
        if database_url:
            self.env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url

    # lifecycle

    def start(self, *, worker: bool = True, gateway: bool = True, deploy: bool = True) -> "Topology":
        self._spawn_server()
        self.wait_http(f"{self.api_url}/health", 120, "the Prefect server")
        if deploy:  # as docs/operations.md says: the pool's limit, the queues' priorities, then the deployments
            self.run(BIN / "prefect", "work-pool", "create", "promotion-gate-pool", "--type", "process")
            self.run(BIN / "prefect", "work-pool", "set-concurrency-limit", "promotion-gate-pool", str(self.pool_limit))
            for queue, priority, limit in self.queues:  # limits on the queues: the worker is never handed a run it cannot start
                self.run(BIN / "prefect", "work-queue", "create", queue, "--pool", "promotion-gate-pool", "--priority", str(priority),
                         "--limit", str(limit))
            self.run(BIN / "prefect", "--no-prompt", "deploy", "--all")
        if worker:
            self.start_worker()
        if gateway:
            self.gateway = self.spawn("gateway", BIN / "promotion-gate", "serve", "--host", "127.0.0.1", "--port", str(self.gateway_port))
            self.wait_http(f"{self.gateway_url}/healthz", 60, "the gateway")
        return self

    def _spawn_server(self) -> subprocess.Popen:
        return self.spawn("server", BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.api_port))

    def start_worker(self) -> subprocess.Popen:
        self.worker = self.spawn("worker", BIN / "prefect", "worker", "start", "--pool", "promotion-gate-pool", "--type", "process")
        return self.worker

    def kill_worker(self) -> None:
        """The worker and every flow-run process it started (its process group), at once, as a crash would."""
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(10)
        self.processes.remove(self.worker)

    def restart_server(self) -> None:
        """Stop the Prefect server (SIGTERM to its group) and start it again on the same port and database."""
        server = self.processes[0]
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
        self.processes.remove(server)
        restarted = self._spawn_server()
        self.processes.remove(restarted)
        self.processes.insert(0, restarted)  # stopped last, as before
        self.wait_http(f"{self.api_url}/health", 120, "the Prefect server, restarted")

    def kill_flow_runs(self) -> int:
        """SIGKILL every process under the worker (its flow runs), not the worker: it reports them Crashed."""
        tree = self._tree(self.worker.pid) - {self.worker.pid}
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return len(tree)

    def _tree(self, root: int) -> set[int]:
        parents = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
        tree, grew = {root}, True
        while grew:
            more = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree |= more
            grew = bool(more)
        return tree

    def worker_tree_rss(self) -> int:
        """Bytes resident in the worker's process tree (the worker and every flow-run process under it)."""
        return self.tree_rss(self.worker.pid)

    def tree_rss(self, root: int) -> int:
        """Bytes resident in the process tree under `root` (the server, the worker, the gateway)."""
        procs: dict[int, tuple[int, int]] = {}  # pid -> (parent, rss pages)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            procs[int(stat.parent.name)] = (int(fields[1]), int(fields[21]))
        tree, grew = {root}, True
        while grew:
            more = {pid for pid, (parent, _) in procs.items() if parent in tree} - tree
            tree |= more
            grew = bool(more)
        return sum(procs[p][1] for p in tree if p in procs) * os.sysconf("SC_PAGE_SIZE")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.processes.clear()

    def __enter__(self) -> "Topology":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # helpers

    def spawn(self, name: str, *command) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen([str(c) for c in command], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.processes.append(process)
        return process

    def run(self, *command) -> str:
        done = subprocess.run([str(c) for c in command], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def wait_http(self, url: str, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"a process exited while waiting for {what}; logs in {self.logs}\n{self.tail()}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{what} did not answer within {timeout} s; logs in {self.logs}\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        out = []
        for log in sorted(self.logs.glob("*.log")):
            out.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


def postgres_database(admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres", prefix: str = "pg_gate"):
    """A fresh database for one run (created and dropped through asyncpg); yields its SQLAlchemy URL."""
    import asyncio
    from contextlib import contextmanager

    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(admin_url, timeout=10)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    @contextmanager
    def database():
        asyncio.run(execute(f'CREATE DATABASE "{name}"'))
        try:
            yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        finally:
            asyncio.run(execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}"'))

    return database()
