"""Cost is evidence: cost per request from the evidence's usage and the policy's price table,
the projected monthly cost, and the two checks that judge them against the tier's budget.

Cost per request is the reported cost where every file with usage reports one (promptfoo's
``cost``, Inspect's ``total_cost``, DeepEval's ``evaluationCost``, a generic
``cost_per_request_usd``); otherwise tokens times the list price of the candidate's model, and
the price entry used is part of the estimate (so it is in the decision and the lock file).
"""

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.context import CheckContext
from promotion_gate.checklists.evidence.usage import Usage
from promotion_gate.checklists.policy_governance import Price
from promotion_gate.checklists.results import CheckResult

MTOK = 1_000_000


class CostEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cost_per_request_usd: float | None = Field(description="None: the evidence does not let the gate say")
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    method: str = Field(description="reported, price-table, or unknown")
    price_key: str | None = None
    price: Price | None = None
    reason: str


def price_for(prices: dict[str, Price], provider: str, name: str, version: str | None) -> tuple[str, Price] | None:
    """The most specific price entry: provider/name@version, then provider/name."""
    for key in ([f"{provider}/{name}@{version}"] if version else []) + [f"{provider}/{name}"]:
        if key in prices:
            return key, prices[key]
    return None


def estimate_cost(usages: list[Usage], prices: dict[str, Price], provider: str, name: str, version: str | None) -> CostEstimate:
    usages = [u for u in usages if u is not None]
    requests = sum(u.requests for u in usages)
    inp, out = sum(u.input_tokens for u in usages), sum(u.output_tokens for u in usages)
    base = {"requests": requests, "input_tokens": inp, "output_tokens": out}
    if not usages or requests == 0:
        return CostEstimate(cost_per_request_usd=None, method="unknown", reason="no evidence carries cost or token usage per request", **base)
    if all(u.cost_usd is not None for u in usages):
        total = sum(u.cost_usd for u in usages)
        return CostEstimate(cost_per_request_usd=total / requests, method="reported",
                            reason=f"reported cost ${total:.4f} over {requests} requests", **base)
    found = price_for(prices, provider, name, version)
    if found is None:
        return CostEstimate(cost_per_request_usd=None, method="unknown",
                            reason=f"the policy has no price for {provider}/{name}@{version} and the evidence reports no cost", **base)
    key, price = found
    total = (inp * price.input_per_mtok_usd + out * price.output_per_mtok_usd) / MTOK
    return CostEstimate(cost_per_request_usd=total / requests, method="price-table", price_key=key, price=price,
                        reason=f"{inp} input + {out} output tokens over {requests} requests at {key}", **base)


def projected_monthly_usd(estimate: CostEstimate, monthly_requests: int | None) -> float | None:
    if estimate.cost_per_request_usd is None or monthly_requests is None:
        return None
    return estimate.cost_per_request_usd * monthly_requests


def candidate_estimate(ctx: CheckContext) -> CostEstimate:
    usages = [r.usage for r in ctx.candidate.evidence if getattr(r, "usage", None) is not None]
    m = ctx.manifest.model
    return estimate_cost(usages, ctx.policy.prices, m.provider, m.name, m.version)


def _usage_errors(ctx: CheckContext) -> list[str]:
    return [f"{r.path}: {r.usage_error}" for r in ctx.candidate.evidence if getattr(r, "usage_error", None)]


def _facts(estimate: CostEstimate, monthly: float | None, volume: int | None, budget=None) -> dict:
    facts = {"cost": estimate.model_dump(mode="json"), "projected_monthly_usd": monthly, "expected_monthly_requests": volume}
    return facts | ({"budget": budget.model_dump(mode="json")} if budget is not None else {})


def cost_within_budget(ctx: CheckContext) -> CheckResult:
    """PG-COST-001 (its title, controls and remedy: the policy item of this id)."""
    errors = _usage_errors(ctx)
    if errors:
        return ctx.error("usage figures are unusable: " + "; ".join(errors))
    budget = ctx.tier_policy.budgets
    estimate = candidate_estimate(ctx)
    volume = ctx.manifest.expected_monthly_requests
    monthly = projected_monthly_usd(estimate, volume)
    facts = _facts(estimate, monthly, volume, budget)
    if budget.per_request_usd is None and budget.per_month_usd is None:
        return ctx.not_applicable(f"the {ctx.tier.value} tier sets no budget", **facts)
    if estimate.cost_per_request_usd is None:
        return ctx.warn(f"cost unknown: {estimate.reason}", remedy="commit evidence that carries token usage or cost", **facts)
    cpr = estimate.cost_per_request_usd
    over = []
    if budget.per_request_usd is not None and cpr > budget.per_request_usd:
        over.append(f"cost per request ${cpr:.5f} > budget ${budget.per_request_usd:g}")
    if budget.per_month_usd is not None and monthly is not None and monthly > budget.per_month_usd:
        over.append(f"projected ${monthly:,.2f}/month ({volume:,} requests) > budget ${budget.per_month_usd:,.2f}")
    if over:
        return ctx.fail("; ".join(over), **facts)
    if budget.per_month_usd is not None and volume is None:
        return ctx.warn(f"cost per request ${cpr:.5f}; no expected_monthly_requests declared, so the monthly cost cannot be projected",
                        remedy="declare expected_monthly_requests in the manifest", **facts)
    month = f", projected ${monthly:,.2f}/month" if monthly is not None else ""
    return ctx.passed(f"cost per request ${cpr:.5f} ({estimate.method}){month}", **facts)


def cost_did_not_regress(ctx: CheckContext) -> CheckResult:
    """PG-COST-002 (its title, controls and remedy: the policy item of this id)."""
    tolerance = ctx.tier_policy.cost_regression_tolerance
    baseline = ctx.candidate.baseline
    before = getattr(getattr(baseline, "cost", None), "cost_per_request_usd", None) if baseline else None
    if tolerance is None:
        return ctx.not_applicable(f"the {ctx.tier.value} tier sets no cost regression tolerance")
    if before is None:
        return ctx.not_applicable("production records no cost per request (first promotion, or a lock without cost)")
    estimate = candidate_estimate(ctx)
    facts = {"production_cost_per_request_usd": before, "cost": estimate.model_dump(mode="json"), "tolerance": tolerance}
    if estimate.cost_per_request_usd is None:
        return ctx.warn(f"production costs ${before:.5f} per request; the candidate's cost is unknown: {estimate.reason}", **facts)
    after = estimate.cost_per_request_usd
    limit = before * (1 + tolerance)
    if after > limit:
        rise = (after / before - 1) if before else float("inf")
        return ctx.fail(f"cost per request rose from ${before:.5f} to ${after:.5f} (+{rise:.0%}) beyond the {tolerance:.0%} tolerance", **facts)
    return ctx.passed(f"cost per request ${after:.5f} vs production ${before:.5f} (tolerance {tolerance:.0%})", **facts)


COST_ITEM, REGRESSION_ITEM = "PG-COST-001", "PG-COST-002"


class CostSummary(BaseModel):
    """What the gate says about cost, in one place: the Slack request, the reports and the lock
    file all show this (derived once from the PG-COST-001/002 results' facts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: str = Field(description="PG-COST-001's outcome")
    reason: str
    cost_per_request_usd: float | None = None
    projected_monthly_usd: float | None = None
    expected_monthly_requests: int | None = None
    method: str = "unknown"
    price_key: str | None = Field(default=None, description="the price table entry used (method price-table)")
    price: Price | None = None
    budget_per_request_usd: float | None = None
    budget_per_month_usd: float | None = None
    production_cost_per_request_usd: float | None = None
    regression_outcome: str | None = Field(default=None, description="PG-COST-002's outcome, when it ran")
    regression_reason: str | None = None


def build_cost_summary(results) -> CostSummary | None:
    """The cost facts of a checklist's results (PG-COST-001, PG-COST-002); None when the cost item did not run."""
    by_id = {r.id: r for r in results}
    item, regression = by_id.get(COST_ITEM), by_id.get(REGRESSION_ITEM)
    if item is None:
        return None
    facts = item.facts or {}
    cost, budget = facts.get("cost") or {}, facts.get("budget") or {}
    before = (regression.facts or {}).get("production_cost_per_request_usd") if regression else None
    return CostSummary(
        outcome=item.outcome.value, reason=item.reason,
        cost_per_request_usd=cost.get("cost_per_request_usd"), projected_monthly_usd=facts.get("projected_monthly_usd"),
        expected_monthly_requests=facts.get("expected_monthly_requests"), method=cost.get("method", "unknown"),
        price_key=cost.get("price_key"), price=cost.get("price"),
        budget_per_request_usd=budget.get("per_request_usd"), budget_per_month_usd=budget.get("per_month_usd"),
        production_cost_per_request_usd=before,
        regression_outcome=regression.outcome.value if regression else None,
        regression_reason=regression.reason if regression else None,
    )
