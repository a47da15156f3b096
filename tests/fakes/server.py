"""The parts both fakes share: a uvicorn server in a thread, recorded calls, injected faults."""

from __future__ import annotations

import fnmatch
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn


class BackgroundServer:
    """Serve an ASGI app on 127.0.0.1 at an ephemeral port, from a daemon thread."""

    def __init__(self, app: Any, name: str) -> None:
        self._app = app
        self._name = name
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    def start(self, timeout: float = 10.0) -> int:
        if self._server is not None:
            raise RuntimeError(f"{self._name} is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            timeout_keep_alive=120,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=self._name, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self._name} did not start")
            time.sleep(0.01)
        return self.port

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        assert self._thread is not None
        self._thread.join(timeout)
        self._server = None
        self._thread = None


@dataclass(frozen=True)
class RecordedCall:
    """One request the fake answered: what was asked, by whom, and the status it got."""

    method: str
    path: str
    status: int
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    token: str | None = None

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    """A canned answer for the next `times` requests whose key matches `pattern` (fnmatch).
    `applied`: the request is carried out first and only its answer is replaced (an answer lost
    on the way back: a proxy's 502/504, a connection reset after the server did the work)."""

    pattern: str
    status: int
    times: int
    headers: dict[str, str]
    body: Any
    applied: bool = False

    def matches(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.pattern)


class FaultQueue:
    """Faults in the order they were armed; the first one that matches a request is used up."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, fault: Fault) -> None:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(fault)

    def take(self, key: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(key):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class CallLog:
    """Every request answered, in order; `calls()` filters by method and an fnmatch pattern."""

    def __init__(self) -> None:
        self._calls: list[RecordedCall] = []
        self._lock = threading.Lock()

    def add(self, call: RecordedCall) -> None:
        with self._lock:
            self._calls.append(call)

    def all(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def filter(self, method: str | None = None, pattern: str | None = None) -> list[RecordedCall]:
        return [
            call
            for call in self.all()
            if (method is None or call.method == method.upper())
            and (pattern is None or fnmatch.fnmatchcase(call.path, pattern))
        ]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
