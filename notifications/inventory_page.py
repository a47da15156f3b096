"""The auditor's inventory page (``inventory.html`` beside ``index.html``): every system in
production as the audit store knows it, its status and reasons, and the projected monthly cost per
system, per owner and per provider. Pure: the :class:`StoreInventory` in, one self-contained HTML
page out (no script, no external asset; autoescaped, control characters shown, as the reports)."""

from __future__ import annotations

from datetime import datetime

from promotion_gate.checklists.store_inventory import StoreInventory
from promotion_gate.notifications.report import environment

STATUS_COLOURS = {"current": "#1a7f37", "recertification-due": "#bc4c00", "out-of-policy": "#cf222e"}


def render_inventory_page(inventory: StoreInventory, *, generated_at: datetime, store: str) -> str:
    env = environment("html")
    return env.get_template("inventory.html.j2").render(
        inv=inventory, counts=inventory.counts(), colours=STATUS_COLOURS, generated_at=generated_at, store=store,
    )
