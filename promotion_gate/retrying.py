"""The one retry primitive of the gate: stamina, at one layer, on the failures a caller names.

GitHub (github_api/client.py), Slack (slack_api/client.py) and the gateway's hand-off to
Prefect (gateway/handoff.py) each retry through :func:`retry_call` / :func:`aretry_call` and
nothing else (PyGithub's own retry and slack_sdk's retry handlers are off). A caller names:

- ``errors``: the exception types considered at all; anything else propagates at once, untouched;
- ``wait_for(exc)``: for one of those, ``False`` (final: not worth retrying), ``True`` (transient:
  retry after the exponential backoff) or a number of seconds (the wait the server asked for,
  Retry-After or a rate-limit reset).

A :class:`RetryPolicy` sizes it from settings: ``retries`` after the first try, the first
``backoff`` (doubling, plus a jitter of up to the same, never more than ``max_wait``), and
``max_wait``, the longest single wait: a server asking for longer is not waited for (the failure
is given up at once). A server's wait is honoured exactly: stamina (>= 25.2) takes a float from
the ``on=`` hook as that retry's backoff.

Giving up raises :class:`GaveUp` (the last failure, how many tries, whether it was transient), so
the caller can word its own error; it never carries a request, a header or a token.

Tests never sleep: stamina's testing mode (``stamina.set_testing``, on for the whole test session
in tests/conftest.py, attempts capped at what the policy says so call budgets stay the same)
makes every backoff, a server's wait included, zero.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

import stamina

log = logging.getLogger("promotion_gate.retry")
T = TypeVar("T")
Wait = bool | float  # False: final; True: retry after the backoff; seconds: retry after what the server asked
WaitFor = Callable[[Exception], Wait]


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    backoff: float = 0.5
    max_wait: float = 60.0


class GaveUp(Exception):
    """`cause` failed on the last of `tries`; `transient` says whether it was a failure worth retrying."""

    def __init__(self, cause: Exception, tries: int, transient: bool) -> None:
        super().__init__(f"{type(cause).__name__} after {tries} tries")
        self.cause, self.tries, self.transient = cause, tries, transient


def backoff_hook(policy: RetryPolicy, errors: tuple[type[Exception], ...], wait_for: WaitFor) -> Callable[[Exception], Wait]:
    """stamina's ``on=``: retry only the named errors that `wait_for` calls transient, a server's
    wait honoured when it is within ``max_wait`` and given up at once when it is not."""

    def on(exc: Exception) -> Wait:
        if not isinstance(exc, errors):
            return False
        wait = wait_for(exc)
        if isinstance(wait, bool):
            return wait
        return float(wait) if 0 <= wait <= policy.max_wait else False

    return on


class _Tries:
    """The try under way, and the hook that logs a transient failure before stamina retries it."""

    def __init__(self, what: str, policy: RetryPolicy, errors: tuple[type[Exception], ...], wait_for: WaitFor) -> None:
        self.what, self.policy, self.errors, self.wait_for, self.count = what, policy, errors, wait_for, 0
        self.decide = backoff_hook(policy, errors, wait_for)

    def on(self, exc: Exception) -> Wait:
        wait = self.decide(exc)
        if wait is not False and self.count <= self.policy.retries:
            log.warning("%s failed (%s), try %d of %d", self.what, type(exc).__name__, self.count, self.policy.retries + 1)
        return wait

    def context(self):
        policy = self.policy
        return stamina.retry_context(on=self.on, attempts=policy.retries + 1, timeout=None, wait_initial=policy.backoff,
                                     wait_max=policy.max_wait, wait_jitter=policy.backoff, wait_exp_base=2)

    def gave_up(self, exc: Exception) -> GaveUp | None:
        return GaveUp(exc, self.count, self.wait_for(exc) is not False) if isinstance(exc, self.errors) else None


def retry_call(what: str, policy: RetryPolicy, errors: tuple[type[Exception], ...], wait_for: WaitFor,
               operation: Callable[..., T], *args, **kwargs) -> T:
    """``operation(*args, **kwargs)``, retried as the policy and `wait_for` say (see the module)."""
    tries = _Tries(what, policy, errors, wait_for)
    try:
        for attempt in tries.context():
            with attempt:
                tries.count = attempt.num
                return operation(*args, **kwargs)
    except Exception as exc:
        gave_up = tries.gave_up(exc)
        if gave_up is None:
            raise
        raise gave_up from None
    raise AssertionError("unreachable")


async def aretry_call(what: str, policy: RetryPolicy, errors: tuple[type[Exception], ...], wait_for: WaitFor,
                      operation: Callable[[], Awaitable[T]]) -> T:
    """The same for a coroutine function (a fresh awaitable each try)."""
    tries = _Tries(what, policy, errors, wait_for)
    try:
        async for attempt in tries.context():
            with attempt:
                tries.count = attempt.num
                return await operation()
    except Exception as exc:
        gave_up = tries.gave_up(exc)
        if gave_up is None:
            raise
        raise gave_up from None
    raise AssertionError("unreachable")
