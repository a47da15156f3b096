"""``POST /github/webhook``: verify, parse, hand off to Prefect, answer within milliseconds.

Before a byte of the body is read (gateway.inbound): 400 unless Content-Type is application/json;
413 when Content-Length is above GitHub's 25 MB; 401 when X-Hub-Signature-256 is missing or not
``sha256=<64 hex>``; 503 with Retry-After when as many bodies as allowed are being read. While
reading: 413 past 25 MB (chunked too), 408 when the body is not in within the read deadline; the
HMAC is fed chunk by chunk and the body spooled to disk above a megabyte, so it is held once, and
only after the signature matched (``hmac.compare_digest``; else 401) is it parsed. Every refusal
so far is counted and logged quietly, and writes nothing. Then: 400 for a body that is not a JSON
object (not UTF-8, nested too deep) or an event without what it must carry; 200 for ``ping`` and
for ignored events; 202 with the run's idempotency key and the flow run's id when a
``promotion-request`` run was started (or found: the key, the signed body's digest, makes a
redelivery or a replay under another X-GitHub-Delivery start nothing new)
within the acknowledgement budget, ``null`` while it is still being created (gateway.handoff);
503 when Prefect cannot be reached, so GitHub shows the failed delivery and it can be redelivered.
"""

from __future__ import annotations

import hmac
import logging
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Callable

from promotion_gate.gateway.handoff import Handoff
from promotion_gate.gateway.inbound import Refusals, Refused, RouteLimits, Slots, read_body, refuse_declared
from promotion_gate.notifications.github_events import (
    MAX_BODY_BYTES,
    Ask,
    Ignore,
    Ping,
    Promote,
    WebhookError,
    event_identity,
    new_signature_mac,
    parse_delivery,
    parse_signature,
)
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger("promotion_gate.gateway")
ROUTE = "github"
SPOOL_BYTES = 1024 * 1024  # a body above this waits for its signature on disk, not in memory
SMALL_BODY = SPOOL_BYTES  # a real delivery is tens of kilobytes: at most this, and declared, it is "small"
SMALL_READERS = 64  # small bodies read at once (at most 64 MiB in memory), beside the large ones
DEFAULT_LIMITS = RouteLimits(ROUTE, MAX_BODY_BYTES, read_seconds=10, concurrency=4)


AfterStart = Callable[[Ask, str, float], None]  # (the ask, its run's id, when the delivery came in): gateway.early_pending


def github_webhook_route(secret: bytes, label: str, blocked_label: str, handoff: Handoff, *,
                         limits: RouteLimits = DEFAULT_LIMITS, refusals: Refusals | None = None,
                         after_start: AfterStart | None = None) -> Route:
    if not secret or not secret.strip():
        raise ValueError("the GitHub webhook secret is empty: the gateway never accepts unsigned deliveries")
    refusals = refusals or Refusals()
    readers = Readers(small=refusals.slots_for(f"{ROUTE}_small", SMALL_READERS), large=refusals.slots_for(ROUTE, limits.concurrency))

    async def github_webhook(request: Request) -> JSONResponse:
        received = time.monotonic()
        delivery_id = _printable(request.headers.get("x-github-delivery", "-"))  # unauthenticated: logged safely
        try:
            body = await read_verified(request, secret, limits, readers)
            delivery = parse_delivery(request.headers.get("x-github-event"), body, label=label, blocked_label=blocked_label)
        except Refused as exc:
            return refusals.answer(ROUTE, exc)
        except WebhookError as exc:
            log.warning("delivery %s refused (%d): %s", delivery_id, exc.status, exc.reason)
            return JSONResponse({"error": exc.reason}, exc.status)
        if isinstance(delivery, Ping):
            log.info("delivery %s: ping", delivery_id)
            return JSONResponse({"ok": True})
        if isinstance(delivery, Ignore):
            log.info("delivery %s ignored: %s", delivery_id, delivery.reason)
            return JSONResponse({"ignored": delivery.reason})
        if isinstance(delivery, Promote):  # keyed by what GitHub signed, never by the unsigned X-GitHub-Delivery
            delivery = replace(delivery, delivery=event_identity(body))
        return await _start(handoff, delivery, delivery_id, after_start, received)

    return Route("/github/webhook", github_webhook, methods=["POST"])


@dataclass(frozen=True)
class Readers:
    """Bodies declared at most SMALL_BODY (every real delivery) and the others (chunked, or large)
    are read under separate bounds, so uploads of 25 MB never crowd out a label's delivery."""

    small: Slots
    large: Slots

    def for_request(self, request: Request) -> Slots:
        declared = request.headers.get("content-length", "")
        return self.small if declared.isdigit() and int(declared) <= SMALL_BODY else self.large


async def read_verified(request: Request, secret: bytes, limits: RouteLimits, readers: Readers) -> bytes:
    """The raw body, once its HMAC (computed while it streamed in) matched X-Hub-Signature-256."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise Refused(400, "Content-Type must be application/json (the webhook's content type setting)", "content_type")
    refuse_declared(request, limits)
    claimed = parse_signature(request.headers.get("x-hub-signature-256"))
    if claimed is None:
        raise Refused(401, "X-Hub-Signature-256 is missing or malformed", "unsigned")
    mac = new_signature_mac(secret)
    async with readers.for_request(request).taken():
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            await read_body(request, limits, spool, mac)
            if not hmac.compare_digest(mac.hexdigest(), claimed):
                raise Refused(401, "X-Hub-Signature-256 does not match", "unsigned")
            spool.seek(0)
            return spool.read()


async def _start(handoff: Handoff, ask: Ask, delivery_id: str, after_start: AfterStart | None = None,
                 received: float = 0.0) -> JSONResponse:
    """Only here, past the signature and the parser, and once Prefect holds the run, does anything
    follow the delivery (``after_start``: after the 202 is sent, or when a late start finishes)."""
    then = None if after_start is None else (lambda run_id: after_start(ask, run_id, received))
    try:
        run_id = await handoff.start(ask, then)
    except Exception as exc:  # Prefect down or the deployment missing: GitHub keeps the failed delivery
        log.error("delivery %s: could not start %s: %s", delivery_id, ask.key, type(exc).__name__)
        return JSONResponse({"error": "the promotion request could not be started; redeliver later"}, 503)
    log.info("delivery %s: %s -> flow run %s", delivery_id, ask.key, run_id or "(being created)")
    background = BackgroundTask(then, run_id) if then is not None and run_id is not None else None
    return JSONResponse({"flow_run_id": run_id, "key": ask.key}, 202, background=background)


def _printable(value: str) -> str:
    return "".join(c for c in value[:64] if c.isalnum() or c == "-") or "-"
