"""Hand an ask to Prefect within the acknowledgement budget, and finish the slow ones after.

Creating a flow run costs the Prefect server tens of milliseconds, and a burst of deliveries
queues behind it (50 at once: seconds). GitHub only needs a fast 2xx, so the gateway waits up to
``ack_seconds`` for the run: in time, it answers with the run's id; otherwise it answers with the
run's idempotency key and lets the start finish in the background (retried; idempotent by that
key, so a retry or a redelivery never makes a second run: the gate's one retry primitive,
promotion_gate/retrying.py, on the failures :func:`start_wait` names). A start that fails within the budget
(Prefect unreachable) is a 503, so GitHub shows the failed delivery. On shutdown the gateway
waits for the starts in flight.

A start that is still going when the budget ends is acknowledged only if Prefect answers a health
probe at once (``GET {PREFECT_API_URL}/health``, no retries, ``PROBE_SECONDS``): Prefect's client
retries a lost connection for many seconds, so without the probe an outage would be answered 202
and the delivery lost. Unreachable is :class:`PrefectUnreachable`, which the route answers 503.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import httpx
from promotion_gate.notifications.github_events import Ask

from promotion_gate.retrying import GaveUp, RetryPolicy, aretry_call

log = logging.getLogger("promotion_gate.gateway")
Starter = Callable[[Ask], Awaitable[str]]
Probe = Callable[[], Awaitable[bool]]
Then = Callable[[str], None]
PROBE_SECONDS = 1.0


class Started(str):
    """A flow run's id, and whether the run was still scheduled (no worker had it) when Prefect
    answered: a fresh run, or a redelivery's run not started yet."""

    scheduled: bool

    def __new__(cls, run_id: str, scheduled: bool) -> "Started":
        started = super().__new__(cls, run_id)
        started.scheduled = scheduled
        return started


class PrefectUnreachable(Exception):
    """Prefect did not take the run and does not answer: the delivery must be answered 503."""


async def prefect_health(timeout: float = PROBE_SECONDS) -> bool:
    """True when the Prefect API answers its health check now (no API URL: an ephemeral server, assumed up)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return True
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            return (await client.get(f"{url.rstrip('/')}/health")).status_code == 200
    except httpx.HTTPError:
        return False


def is_unreachable(exc: BaseException) -> bool:
    """A failure that means Prefect is down (no connection, a timeout, a 502/503/504), not a bad request."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(exc, (httpx.TransportError, OSError, PrefectUnreachable)) or status in (502, 503, 504)


def start_wait(exc: Exception) -> bool:
    """Retry a start that failed because Prefect was unreachable or busy (429, 5xx); a refused one
    (no such deployment, a bad parameter) is final."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return is_unreachable(exc) or status == 429 or (isinstance(status, int) and 500 <= status < 600)


class Handoff:
    def __init__(self, starter: Starter, ack_seconds: float, retries: int = 3, backoff: float = 1.0,
                 concurrency: int = 8, probe: Probe = prefect_health) -> None:
        self.starter, self.ack_seconds = starter, ack_seconds
        self.retry = RetryPolicy(retries, backoff, max_wait=30.0)
        self.probe = probe
        self.in_flight: set[asyncio.Task] = set()
        self._slots = asyncio.Semaphore(concurrency)

    async def start(self, ask: Ask, then: Then | None = None) -> str | None:
        """The flow run's id; None when it is still being created (it will be). A start that
        fails within the budget, or outlasts it while Prefect does not answer, raises
        PrefectUnreachable (or the start's own error): the delivery is answered 503.
        ``then(run_id)`` is called when a start answered None finishes (after the answer); never
        for a start that failed."""
        first = asyncio.ensure_future(self._attempt(ask))
        try:
            run_id = await asyncio.wait_for(asyncio.shield(first), self.ack_seconds)
        except asyncio.TimeoutError:
            if not first.done() and not await self.probe():
                first.cancel()
                raise PrefectUnreachable("Prefect is unreachable: the run was not created") from None
            finish = asyncio.ensure_future(self._finish(ask, first))
            self.in_flight.add(finish)
            finish.add_done_callback(self._done(ask, then))
            return None
        except Exception as exc:
            if is_unreachable(exc):
                raise PrefectUnreachable(f"Prefect is unreachable: {type(exc).__name__}") from None
            raise
        return run_id

    async def _attempt(self, ask: Ask) -> str:
        async with self._slots:
            return await self.starter(ask)

    async def _finish(self, ask: Ask, first: asyncio.Future) -> str:
        """After the answer: the first attempt, then retries (the key makes them idempotent)."""
        pending: list[asyncio.Future] = [first]

        async def attempt() -> str:
            return await (pending.pop() if pending else self._attempt(ask))

        try:
            return await aretry_call(f"start of {ask.key}", self.retry, (Exception,), start_wait, attempt)
        except GaveUp as gave_up:
            raise gave_up.cause from None

    def _done(self, ask: Ask, then: Then | None = None):
        def done(task: asyncio.Task) -> None:
            self.in_flight.discard(task)
            if task.cancelled():
                log.error("start of %s cancelled", ask.key)
            elif task.exception() is not None:
                log.error("could not start %s: %s", ask.key, type(task.exception()).__name__)
            else:
                log.info("%s -> flow run %s (after the answer)", ask.key, task.result())
                _then(then, task.result())

        return done

    async def drain(self, timeout: float = 30) -> None:
        if self.in_flight:
            await asyncio.wait(list(self.in_flight), timeout=timeout)


def _then(then: Then | None, run_id: str) -> None:
    if then is None:
        return
    try:
        then(run_id)
    except Exception as exc:  # what follows a start never undoes it
        log.error("after the start of flow run %s: %s", run_id, type(exc).__name__)
