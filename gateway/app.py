"""The gateway app: one starlette app, its routes composed in one visible list.

    app = build_app(settings, starter=PrefectStarter(settings.request_deployment))

Routes: ``GET /healthz``; ``POST /github/webhook`` (gateway.github_webhook); the Slack routes
when the module ``gateway.slack_routes`` exists: its ``routes(settings)`` returns the routes to
mount, or ``[]`` when Slack is not configured; then any ``extra_routes`` a caller passes.

``serve`` is ``promotion-gate serve``: it refuses to start (one line, exit 2) without the webhook
secret or a Prefect API to hand runs to; it never means "accept unsigned".
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Sequence

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from promotion_gate.flows.secrets import require_secret
from promotion_gate.flows.settings import Settings, SettingsError, load_settings
from promotion_gate.gateway.github_webhook import github_webhook_route
from promotion_gate.gateway.handoff import Handoff, Starter
from promotion_gate.notifications.github_events import Ask, build_parameters, build_tags

EXIT_UNUSABLE = 2
log = logging.getLogger("promotion_gate.gateway")


class PrefectStarter:
    """Starts the ``promotion-request`` deployment for an ask, keyed so a redelivery starts nothing new."""

    def __init__(self, deployment: str) -> None:
        self.deployment, self.client = deployment, None

    async def __call__(self, ask: Ask) -> str:
        from prefect.deployments import arun_deployment

        run = await arun_deployment(self.deployment, client=self.client, parameters=build_parameters(ask), timeout=0,
                                    idempotency_key=ask.key, tags=build_tags(ask), as_subflow=False)
        return str(run.id)

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
              webhook_secret: SecretStr | None = None) -> Starlette:
    secret = (webhook_secret or require_secret(settings, "github_webhook_secret")).get_secret_value().encode()
    handoff = Handoff(starter, settings.gateway_ack_seconds)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        github_webhook_route(secret, settings.label, settings.blocked_label, handoff),
        *slack_routes(settings),
        *extra_routes,
    ]
    return Starlette(routes=routes, lifespan=_lifespan(starter, handoff))


def _lifespan(starter: Starter, handoff: Handoff):
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        connected = getattr(starter, "connected", None)
        async with (connected() if connected else contextlib.nullcontext()):
            try:
                yield
            finally:
                await handoff.drain()  # the starts answered "being created" finish before we go

    return lifespan


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def slack_routes(settings: Settings) -> list[BaseRoute]:
    try:
        from promotion_gate.gateway import slack_routes as slack
    except ModuleNotFoundError as exc:
        if exc.name != "promotion_gate.gateway.slack_routes":
            raise
        return []
    return list(slack.routes(settings))


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
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
    return 0


def _require_prefect_api() -> None:
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise SettingsError("setting PREFECT_API_URL is required: the gateway hands each promotion to a Prefect server")
