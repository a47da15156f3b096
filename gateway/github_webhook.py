"""``POST /github/webhook``: verify, parse, hand off to Prefect, answer within milliseconds.

413 above GitHub's 25 MB; 401 when X-Hub-Signature-256 is missing, malformed or wrong (checked
over the raw body with ``hmac.compare_digest``); 400 for a body that is not a JSON object or an
event without what it must carry; 200 for ``ping`` and for ignored events; 202 with the run's
idempotency key and the flow run's id when a ``promotion-request`` run was started (or found: the
key makes a redelivery start nothing new) within the acknowledgement budget, ``null`` while it
is still being created (gateway.handoff); 503 when Prefect cannot be reached, so GitHub shows
the failed delivery and it can be redelivered.
"""

from __future__ import annotations

import logging
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from promotion_gate.gateway.handoff import Handoff
from promotion_gate.notifications.github_events import MAX_BODY_BYTES, Ask, Ignore, Ping, WebhookError, parse_delivery, verify_signature

log = logging.getLogger("promotion_gate.gateway")


def github_webhook_route(secret: bytes, label: str, blocked_label: str, handoff: Handoff) -> Route:
    if not secret:
        raise ValueError("the GitHub webhook secret is empty: the gateway never accepts unsigned deliveries")

    async def github_webhook(request: Request) -> JSONResponse:
        delivery_id = _printable(request.headers.get("x-github-delivery", "-"))  # unauthenticated: logged safely
        try:
            body = await read_body(request, MAX_BODY_BYTES)
            if not verify_signature(secret, body, request.headers.get("x-hub-signature-256")):
                raise WebhookError(401, "X-Hub-Signature-256 is missing or does not match")
            delivery = parse_delivery(request.headers.get("x-github-event"), body, label=label, blocked_label=blocked_label)
        except WebhookError as exc:
            log.warning("delivery %s refused (%d): %s", delivery_id, exc.status, exc.reason)
            return JSONResponse({"error": exc.reason}, exc.status)
        if isinstance(delivery, Ping):
            log.info("delivery %s: ping", delivery_id)
            return JSONResponse({"ok": True})
        if isinstance(delivery, Ignore):
            log.info("delivery %s ignored: %s", delivery_id, delivery.reason)
            return JSONResponse({"ignored": delivery.reason})
        return await _start(handoff, delivery, delivery_id)

    return Route("/github/webhook", github_webhook, methods=["POST"])


async def _start(handoff: Handoff, ask: Ask, delivery_id: str) -> JSONResponse:
    try:
        run_id = await handoff.start(ask)
    except Exception as exc:  # Prefect down or the deployment missing: GitHub keeps the failed delivery
        log.error("delivery %s: could not start %s: %s", delivery_id, ask.key, type(exc).__name__)
        return JSONResponse({"error": "the promotion request could not be started; redeliver later"}, 503)
    log.info("delivery %s: %s -> flow run %s", delivery_id, ask.key, run_id or "(being created)")
    return JSONResponse({"flow_run_id": run_id, "key": ask.key}, 202)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) past `limit` bytes without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise WebhookError(413, f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookError(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _printable(value: str) -> str:
    return "".join(c for c in value[:64] if c.isalnum() or c == "-") or "-"
