"""The gateway app: one starlette app, its routes composed in one visible list.

    app = build_app(settings, starter=PrefectStarter(settings.request_deployment))

Routes: ``GET /healthz``; ``GET /metrics`` (the refused requests, counted per route and reason:
gateway.inbound); ``POST /github/webhook`` (gateway.github_webhook); the Slack routes when the
module ``gateway.slack_routes`` exists: its ``routes(settings, refusals)`` returns the routes to
mount, or ``[]`` when Slack is not configured; then any ``extra_routes`` a caller passes.

``serve`` is ``promotion-gate serve``: it refuses to start (one line, exit 2) without the webhook
secret (a blank one is none) or a Prefect API to hand runs to; it never means "accept unsigned".
``build_server`` is the uvicorn server it runs: the h11 protocol with a deadline on request headers,
a short keep-alive, and a bound on open connections.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Sequence

from promotion_gate.config.secrets import require_secret
from promotion_gate.config.settings import Settings, SettingsError, load_settings
from promotion_gate.gateway.early_pending import EarlyPending
from promotion_gate.gateway.github_webhook import ROUTE as GITHUB_ROUTE
from promotion_gate.gateway.github_webhook import github_webhook_route
from promotion_gate.gateway.handoff import Handoff, Started, Starter
from promotion_gate.gateway.inbound import Refusals, RouteLimits, header_deadline_protocol
from promotion_gate.notifications.github_events import MAX_BODY_BYTES, Ask, build_parameters, build_tags
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

EXIT_UNUSABLE = 2
MAX_CONNECTIONS = 1000
log = logging.getLogger("promotion_gate.gateway")


class PrefectStarter:
    """Starts the ``promotion-request`` deployment for an ask, keyed so a redelivery starts nothing new."""

    def __init__(self, deployment: str) -> None:
        self.deployment, self.client = deployment, None

    async def __call__(self, ask: Ask) -> str:
        from prefect.deployments import arun_deployment

        run = await arun_deployment(self.deployment, client=self.client, parameters=build_parameters(ask), timeout=0,
                                    idempotency_key=ask.key, tags=build_tags(ask), as_subflow=False)
        return Started(str(run.id), run.state is not None and run.state.is_scheduled())

    @contextlib.asynccontextmanager
    async def connected(self):
        """One Prefect client (one connection pool) for the app's lifetime."""
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            self.client = client
            try:
                yield
            finally:
                self.client = None


def build_app(settings: Settings, *, starter: Starter, extra_routes: Sequence[BaseRoute] = (),
              webhook_secret: SecretStr | None = None, refusals: Refusals | None = None) -> Starlette:
    """``early`` (gateway.early_pending) sets the pending signal after the 202 when the settings
    hold GitHub credentials and ``gateway_early_pending`` is on; its outcomes are at /metrics."""
    secret = (webhook_secret or require_secret(settings, "github_webhook_secret")).get_secret_value().encode()
    handoff = Handoff(starter, settings.gateway_ack_seconds)
    refusals = refusals or Refusals()
    early = EarlyPending.from_settings(settings) if settings.gateway_early_pending else None
    limits = RouteLimits(GITHUB_ROUTE, MAX_BODY_BYTES, settings.gateway_read_seconds, settings.gateway_github_bodies)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", lambda request: JSONResponse(_metrics(refusals, early)), methods=["GET"]),
        github_webhook_route(secret, settings.label, settings.blocked_label, handoff, limits=limits, refusals=refusals,
                             after_start=early.after_start if early else None),
        *slack_routes(settings, refusals),
        *extra_routes,
    ]
    app = Starlette(routes=routes, lifespan=_lifespan(starter, handoff, early))
    app.state.refusals, app.state.early_pending = refusals, early
    return app


def _metrics(refusals: Refusals, early: EarlyPending | None) -> dict:
    return refusals.metrics() | ({"early_pending": early.metrics(), "early_gates": early.gate_metrics()} if early else {})


def _lifespan(starter: Starter, handoff: Handoff, early: EarlyPending | None = None):
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        connected = getattr(starter, "connected", None)
        async with (connected() if connected else contextlib.nullcontext()):
            try:
                yield
            finally:
                await handoff.drain()  # the starts answered "being created" finish before we go
                if early is not None:
                    await early.drain()

    return lifespan


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def slack_routes(settings: Settings, refusals: Refusals | None = None) -> list[BaseRoute]:
    try:
        from promotion_gate.gateway import slack_routes as slack
    except ModuleNotFoundError as exc:
        if exc.name != "promotion_gate.gateway.slack_routes":
            raise
        return []
    return list(slack.routes(settings, refusals))


def serve(host: str, port: int) -> int:
    """Run the gateway with uvicorn; a missing or invalid setting is one line and exit code 2."""
    try:
        settings = load_settings()
        secret = require_secret(settings, "github_webhook_secret")
        _require_prefect_api()
        app = build_app(settings, starter=PrefectStarter(settings.request_deployment), webhook_secret=secret)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    build_server(app, settings, host=host, port=port).run()
    return 0


def build_server(app: Starlette, settings: Settings, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "info"):
    """The uvicorn server of ``serve``: slow headers closed, idle connections closed after 5 s."""
    import uvicorn

    protocol = header_deadline_protocol(settings.gateway_header_seconds, getattr(app.state, "refusals", None))
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, http=protocol,
                            timeout_keep_alive=5, limit_concurrency=MAX_CONNECTIONS, h11_max_incomplete_event_size=16 * 1024)
    return uvicorn.Server(config)


def _require_prefect_api() -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise SettingsError("setting PREFECT_API_URL is required: the gateway hands each promotion to a Prefect server")
