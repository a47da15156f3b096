"""The inventory as a terminal table, JSON and CSV: one renderer per format, formatting only.

Owners, tool names and the other manifest text are the team's (notifications/user_text.py): the
table shows each control character as text and keeps one line per line it means; each CSV cell
is shown as text, never run as a spreadsheet formula, as ``audit index``'s index.csv.
"""

from __future__ import annotations

import csv
import io
import json

from promotion_gate.checklists.inventory import Inventory, InventoryRow
from promotion_gate.notifications.user_text import show_control, spreadsheet_cell

UNVERIFIED_LOCK = "PG-RECERT-007"  # checklists/recertify.py: the lock is not one the gate wrote

CSV_COLUMNS = (
    "repository", "system", "status", "owner", "escalation", "tier", "tier_reasons", "provider", "model", "version",
    "data_classes", "tools", "fallback", "evaluations", "decision_id", "approved_at", "approved_by",
    "approved_policy_version", "approval_age_days", "cost_per_request_usd", "projected_monthly_usd", "findings",
)


def _money(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"${value:,.{digits}f}"


def _evaluations(row: InventoryRow) -> str:
    parts = []
    for e in row.evaluations:
        metrics = ", ".join(f"{k}={v:.3f}" + (f" (n={e.samples[k]})" if k in e.samples else "") for k, v in e.metrics.items())
        parts.append(f"{e.name}: {metrics}")
    return "; ".join(parts)


def _cells(row: InventoryRow) -> dict[str, str]:
    return {
        "repository": row.repository, "system": row.system, "status": row.status.value, "owner": row.owner or "",
        "escalation": row.escalation or "", "tier": row.tier, "tier_reasons": "; ".join(row.tier_reasons),
        "provider": row.provider or "", "model": row.model or "", "version": row.version or "",
        "data_classes": " ".join(row.data_classes), "tools": " ".join(f"{t.name}:{t.permission}" for t in row.tools),
        "fallback": row.fallback or "", "evaluations": _evaluations(row), "decision_id": row.decision_id or "",
        "approved_at": row.approved_at or "", "approved_by": " ".join(row.approved_by),
        "approved_policy_version": row.approved_policy_version or "",
        "approval_age_days": "" if row.approval_age_days is None else str(row.approval_age_days),
        "cost_per_request_usd": "" if row.cost_per_request_usd is None else f"{row.cost_per_request_usd:.6f}",
        "projected_monthly_usd": "" if row.projected_monthly_usd is None else f"{row.projected_monthly_usd:.2f}",
        "findings": "; ".join(row.findings),
    }


def render_inventory_csv(inventory: Inventory) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in inventory.rows:
        writer.writerow({k: spreadsheet_cell(show_control(v)) for k, v in _cells(row).items()})
    return out.getvalue()


def render_inventory_json(inventory: Inventory) -> str:
    return json.dumps(inventory.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


TABLE = (("system", 22), ("status", 19), ("tier", 6), ("owner", 18), ("model", 40), ("age", 5), ("$/month", 11))


def _approvers(r: InventoryRow) -> str:
    """Who approved; for a lock the gate did not write (PG-RECERT-007) nobody is known: its list is a claim."""
    if any(f.startswith(f"{UNVERIFIED_LOCK}:") for f in r.findings):
        return "nobody known (the lock is not one the gate wrote: PG-RECERT-007)"
    return ", ".join(r.approved_by) or "no sign-off (tier needs none)"


def render_inventory_table(inventory: Inventory) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in inventory.counts().items())
    lines = [f"production inventory on {inventory.on.isoformat()} under policy {inventory.policy_version}: {len(inventory.rows)} systems ({counts})", ""]
    lines.append("  ".join(name.upper().ljust(width) for name, width in TABLE).rstrip())
    for r in inventory.rows:
        model = f"{r.provider}/{r.model}@{r.version}" if r.provider else "-"
        cells = (r.system, r.status.value, r.tier, r.owner or "-", model,
                 "-" if r.approval_age_days is None else f"{r.approval_age_days}d", _money(r.projected_monthly_usd))
        lines.append("  ".join(str(c).ljust(w) for c, (_, w) in zip(cells, TABLE, strict=False)).rstrip())
        details = [f"repository {r.repository}; escalation {r.escalation or '-'}; data {', '.join(r.data_classes) or '-'}",
                   f"tools {', '.join(f'{t.name} ({t.permission})' for t in r.tools) or 'none'}; fallback {r.fallback or 'none'}",
                   f"approved {r.approved_at or '-'} by {_approvers(r)} under policy {r.approved_policy_version or '-'} ({r.decision_id or '-'})",
                   f"evaluations {_evaluations(r) or '-'}; cost per request {_money(r.cost_per_request_usd, 5)}"]
        lines += [f"    {d}" for d in details]
        lines += [f"    ! {f}" for f in r.findings]
    c = inventory.cost
    lines += ["", f"projected monthly cost: {_money(c.total_monthly_usd)}" + (f" (unknown for {', '.join(c.unknown)})" if c.unknown else "")]
    lines += [f"  owner {k}: {_money(v)}" for k, v in c.by_owner.items()]
    lines += [f"  provider {k}: {_money(v)}" for k, v in c.by_provider.items()]
    return "\n".join(_one_line(line) for line in lines) + "\n"


def _one_line(line: str) -> str:
    """One line of the table as the terminal shows it: a newline or tab inside a value is text too."""
    return show_control(line).replace("\n", "\\n").replace("\t", "\\t")
