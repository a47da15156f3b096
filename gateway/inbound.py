"""What the gateway lets in before anything is trusted: bounded bodies, bounded time, bounded readers.

Every inbound route reads its body through :func:`read_body`: refused by Content-Length (413)
before a byte is read, cut while streaming past the limit (413, chunked bodies too), cut when the
whole body has not arrived within ``read_seconds`` (408: a client sending a byte every two
seconds is gone after that), and fed chunk by chunk to the route's HMAC so a body is never held
twice. How many bodies a route reads at once is bounded (:class:`Slots`): when all are taken the
answer is 503 with Retry-After at once, never a queue. A connection that has not sent its request
headers within ``header_seconds`` is closed by the server (:func:`header_deadline_protocol`).

A refusal writes nothing anywhere: it is counted (``/metrics``) and logged at most once per
``log_every`` seconds per route and reason, with the number of refusals since the last line.
Every refusal that may leave body bytes unread closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import IO, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

log = logging.getLogger("promotion_gate.gateway")


class Refused(Exception):
    """The request is answered `status` and nothing else happens; `reason` is safe to show."""

    def __init__(self, status: int, reason: str, kind: str, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.kind, self.retry_after = status, reason, kind, retry_after


@dataclass(frozen=True)
class RouteLimits:
    route: str
    max_bytes: int
    read_seconds: float
    concurrency: int


class Slots:
    """At most `n` bodies read at once; one more is refused (503, Retry-After), not queued."""

    def __init__(self, n: int, retry_after: int = 5) -> None:
        self._free, self.retry_after, self.in_use = asyncio.Semaphore(n), retry_after, 0

    @contextlib.asynccontextmanager
    async def taken(self):
        if self._free.locked():
            raise Refused(503, "the gateway is reading as many bodies as it may; retry later", "busy", self.retry_after)
        async with self._free:
            self.in_use += 1
            try:
                yield
            finally:
                self.in_use -= 1


class Refusals:
    """Counts of refused requests per route and reason, and a log that says so without flooding."""

    def __init__(self, log_every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.log_every, self._clock = log_every, clock
        self.slots: dict[str, Slots] = {}  # the routes' readers, shown as "reading" in /metrics
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._last: dict[tuple[str, str], float] = {}
        self._quiet: dict[tuple[str, str], int] = defaultdict(int)

    def note(self, route: str, kind: str, reason: str) -> None:
        with self._lock:
            self._counts[route][kind] += 1
            key, now = (route, kind), self._clock()
            if key in self._last and now - self._last[key] < self.log_every:
                self._quiet[key] += 1
                return
            self._last[key], since = now, self._quiet.pop(key, 0)
        log.warning("%s: refused (%s): %s%s", route, kind, reason, f" (and {since} more since the last line)" if since else "")

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {route: dict(kinds) for route, kinds in self._counts.items()}

    def slots_for(self, route: str, n: int) -> Slots:
        self.slots[route] = Slots(n)
        return self.slots[route]

    def metrics(self) -> dict:
        """What ``GET /metrics`` shows: refusals per route and reason, bodies being read per route."""
        return {"refused": self.snapshot(), "reading": {route: slots.in_use for route, slots in self.slots.items()}}

    def answer(self, route: str, refused: Refused) -> JSONResponse:
        """The refusal as an answer: counted, logged quietly, the connection closed after it."""
        self.note(route, refused.kind, refused.reason)
        headers = {"connection": "close"}
        if refused.retry_after is not None:
            headers["retry-after"] = str(refused.retry_after)
        return JSONResponse({"error": refused.reason}, refused.status, headers=headers)


def refuse_declared(request: Request, limits: RouteLimits) -> None:
    """413 by Content-Length alone, before anything is read (400 when it is not a number)."""
    declared = request.headers.get("content-length")
    if declared is not None and not (declared.isascii() and declared.strip().isdigit()):
        raise Refused(400, "Content-Length is not a number", "malformed")
    if declared is not None and int(declared) > limits.max_bytes:
        raise Refused(413, f"the body is larger than {limits.max_bytes} bytes", "too_large")


async def read_body(request: Request, limits: RouteLimits, sink: IO[bytes], mac=None) -> int:
    """Stream the body into `sink` (and `mac`), within the size and time limits; its length."""
    refuse_declared(request, limits)
    loop = asyncio.get_running_loop()
    deadline, size = loop.time() + limits.read_seconds, 0
    chunks = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), max(deadline - loop.time(), 0))
        except StopAsyncIteration:
            return size
        except asyncio.TimeoutError:
            raise Refused(408, f"the body did not arrive within {limits.read_seconds:g} s", "slow") from None
        except ClientDisconnect:
            raise Refused(400, "the client went away before the body was read", "disconnected") from None
        size += len(chunk)
        if size > limits.max_bytes:
            raise Refused(413, f"the body is larger than {limits.max_bytes} bytes", "too_large")
        if mac is not None:
            mac.update(chunk)
        sink.write(chunk)


def header_deadline_protocol(header_seconds: float, refusals: Refusals | None = None):
    """uvicorn's h11 protocol, closing a connection whose request headers are not all in within
    `header_seconds` of it opening (or of the previous answer on a kept-alive connection)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadlineProtocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_deadline()

        def connection_lost(self, exc) -> None:
            timer = getattr(self, "_header_timer", None)
            if timer is not None:
                timer.cancel()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            timer = getattr(self, "_header_timer", None)
            if timer is not None:
                timer.cancel()
            self._header_timer = self.loop.call_later(header_seconds, self._header_deadline, self.cycle)

        def _header_deadline(self, cycle) -> None:
            waiting = self.cycle is cycle and (cycle is None or cycle.response_complete)  # no request since armed
            if waiting and not self.transport.is_closing():
                if refusals is not None:
                    refusals.note("http", "slow_headers", f"request headers not received within {header_seconds:g} s")
                self.transport.close()

    return HeaderDeadlineProtocol
