"""Links to flow runs in the Prefect UI, for commit statuses and comments.

``PROMOTION_GATE_PREFECT_UI_URL`` (for example ``https://prefect.example.com``) wins; without it,
Prefect's own ``PREFECT_UI_URL`` (derived from ``PREFECT_API_URL`` for a self-hosted server).
No UI known: no link (GitHub accepts a status without one).
"""

from __future__ import annotations

from promotion_gate.config.settings import Settings


def run_url(settings: Settings, flow_run_id: str) -> str | None:
    base = settings.prefect_ui_url or _prefect_ui_url()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else None


def current_run_url(settings: Settings) -> str | None:
    """The link to the flow run this code runs in, if any."""
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    return run_url(settings, run_id) if run_id else None


def _prefect_ui_url() -> str | None:
    from prefect.settings import PREFECT_UI_URL

    url = PREFECT_UI_URL.value()
    return url if url and url.startswith(("http://", "https://")) else None
