"""Cost is evidence: cost per request from the evidence's usage and the policy's price table,
the projected monthly cost, and the two checks that judge them against the tier's budget.

Only the candidate model's own requests are priced: in each evaluation's file (never the fallback
drill, whose requests run with the primary down), the usage of the one result group
:func:`~promotion_gate.checklists.provenance.select_candidate` picks for the evaluation items
(PG-EVAL-006: exact provider, model and version; a file that names no model at all counts as the
candidate's, as it does there, and that item judges it). Results of other models, of a judge
(DeepEval's ``evaluationCost``), of an ambiguous or unmatched file are not the candidate's cost.

Of those requests only the ones that carried usage are averaged: a request without a token and
without a cost above zero spent nothing that can be measured, and would only dilute the average.
Cost per request is the reported cost (promptfoo's ``cost``, Inspect's ``total_cost``, a generic
``cost_per_request_usd``) where every such request reports one above zero; otherwise tokens
times the list price of the candidate's model over the requests that used tokens, and the price
entry used is part of the estimate (so it is in the decision and the lock file). A candidate
without usage of its own has no cost estimate ("cost unknown"), never a cheap one.
"""

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.context import CheckContext
from promotion_gate.checklists.evidence.usage import UNNAMED, ModelUsage
from promotion_gate.checklists.policy_governance import Price
from promotion_gate.checklists.provenance import select_candidate
from promotion_gate.checklists.results import CheckResult

MTOK = 1_000_000


class CostEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cost_per_request_usd: float | None = Field(description="None: the evidence does not let the gate say")
    requests: int = Field(default=0, description="the candidate's requests the cost is averaged over")
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


def estimate_cost(usages: list[ModelUsage], prices: dict[str, Price], provider: str, name: str, version: str | None) -> CostEstimate:
    """The cost per request of the candidate's own usage (one entry per file), over the requests that carried usage."""
    with_usage = sum(u.requests_with_usage for u in usages)
    with_tokens, with_cost = sum(u.requests_with_tokens for u in usages), sum(u.requests_with_cost for u in usages)
    inp, out = sum(u.input_tokens for u in usages), sum(u.output_tokens for u in usages)
    left_out = sum(u.requests for u in usages)
    base = {"input_tokens": inp, "output_tokens": out}
    if with_usage == 0:
        return CostEstimate(cost_per_request_usd=None, method="unknown", requests=0, reason=(
            f"no evidence carries cost or token usage of the candidate's own requests ({provider}/{version or name})"
            + (f"; its {left_out} requests carry none" if left_out else "")), **base)
    if with_cost == with_usage:
        total = sum(u.cost_usd or 0.0 for u in usages)
        return CostEstimate(cost_per_request_usd=total / with_usage, method="reported", requests=with_usage,
                            reason=f"reported cost ${total:.4f} over {with_usage} requests{_left_out(left_out - with_usage)}", **base)
    found = price_for(prices, provider, name, version)
    if found is None:
        return CostEstimate(cost_per_request_usd=None, method="unknown", requests=with_tokens, **base,
                            reason=f"the policy has no price for {provider}/{name}@{version} and the evidence reports no cost for every request")
    key, price = found
    total = (inp * price.input_per_mtok_usd + out * price.output_per_mtok_usd) / MTOK
    return CostEstimate(cost_per_request_usd=total / with_tokens, method="price-table", requests=with_tokens, price_key=key, price=price,
                        reason=f"{inp} input + {out} output tokens over {with_tokens} requests at {key}{_left_out(left_out - with_tokens)}", **base)


def _left_out(n: int) -> str:
    return f" ({n} without usage left out)" if n > 0 else ""


def projected_monthly_usd(estimate: CostEstimate, monthly_requests: int | None) -> float | None:
    if estimate.cost_per_request_usd is None or monthly_requests is None:
        return None
    return estimate.cost_per_request_usd * monthly_requests


def _evaluation_records(ctx: CheckContext) -> list:
    """Each evaluation's evidence record, once per file (not the drill's: its requests run with the primary down)."""
    records, seen = [], set()
    for ev in ctx.manifest.evaluations:
        rec = ctx.candidate.evidence_for(ev)
        if rec is not None and (rec.path, rec.format) not in seen:
            seen.add((rec.path, rec.format))
            records.append(rec)
    return records


def own_usage(rec, model) -> ModelUsage | None:
    """The usage of the candidate's own results in one file: the group select_candidate picks (PG-EVAL-006)."""
    usage = getattr(rec, "usage", None)
    if usage is None or rec.parsed is None:
        return None
    sel = select_candidate(rec.parsed, model)
    if sel.problem:
        return None
    return usage.by_model.get(sel.said if sel.named else UNNAMED)


def candidate_estimate(ctx: CheckContext) -> CostEstimate:
    m = ctx.manifest.model
    usages = [u for rec in _evaluation_records(ctx) if (u := own_usage(rec, m)) is not None]
    return estimate_cost(usages, ctx.policy.prices, m.provider, m.name, m.version)


def _usage_errors(ctx: CheckContext) -> list[str]:
    return [f"{r.path}: {r.usage_error}" for r in _evaluation_records(ctx) if getattr(r, "usage_error", None)]


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
    if volume == 0:  # would project $0.00 a month under any budget; refused here, not by the model, so records holding it still load
        return ctx.fail("expected_monthly_requests is 0: a system asking for production serves at least one request a month",
                        remedy="declare the number of requests a month the system is expected to serve", **facts)
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
