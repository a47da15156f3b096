"""Cost as people read it: one line for the Slack request and the reports, from the
:class:`~promotion_gate.checklists.cost.CostSummary` the core derived (formats only)."""

from __future__ import annotations

import math

from promotion_gate.checklists.cost import CostSummary


def money(value: float) -> str:
    """$0.0021 or $0.000036 (two significant digits at least, never an exponent) under a dollar, $12.50 above."""
    if value >= 1:
        return f"${value:,.2f}"
    if value <= 0:
        return "$0"
    digits = max(4, 2 - math.floor(math.log10(value)))
    return "$" + f"{value:.{digits}f}".rstrip("0").rstrip(".")


def monthly(value: float) -> str:
    """~$420 (whole dollars from $100), ~$0.72 below."""
    return f"~${value:,.0f}" if value >= 100 else f"~${value:,.2f}"


def _budget(s: CostSummary) -> str | None:
    parts = ([f"${s.budget_per_request_usd:g}/request"] if s.budget_per_request_usd is not None else []) + \
            ([f"${s.budget_per_month_usd:g}/month"] if s.budget_per_month_usd is not None else [])
    return f"budget {', '.join(parts)}" if parts else None


def _source(s: CostSummary) -> str:
    if s.method == "price-table" and s.price_key:
        return f"price table: {s.price_key}"
    if s.method == "reported":
        return "cost as reported by the evidence (no price table used)"
    return "no price table entry"


def render_cost_line(s: CostSummary) -> str:
    """'Cost: $0.0021/request, ~$420/month projected (budget $1000/month), price table: openai/gpt-4o@...'."""
    budget = _budget(s)
    if s.cost_per_request_usd is None:
        return f"Cost: unknown ({s.reason})" + (f"; {budget}" if budget else "")
    month = (f", {monthly(s.projected_monthly_usd)}/month projected" if s.projected_monthly_usd is not None
             else ", no monthly volume declared")
    line = f"Cost: {money(s.cost_per_request_usd)}/request{month}" + (f" ({budget})" if budget else "") + f", {_source(s)}"
    if s.production_cost_per_request_usd is not None:
        line += f"; production {money(s.production_cost_per_request_usd)}/request"
    return line
