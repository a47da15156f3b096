"""The inventory of production: one row per AI system, from its lock file, the manifest the lock
pins, the ledger's facts and the current policy. Pure: the shell reads, this builds.

A row says who owns the system, its tier and why (under the current policy), what model and
vendor it runs, what data and tools it touches, its fallback, each evaluation's key metrics, its
last decision, the policy it was approved under, the age of that approval, its cost, and its
status: current, re-certification due, or out of policy (with the findings' reasons).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.defaults import empty_list
from promotion_gate.checklists.findings import RecertStatus
from promotion_gate.checklists.policy import Policy
from promotion_gate.checklists.recertify import ProductionSystem, parse_model_ref, production_monthly_usd, recertify, tier_of

KEY_METRICS = 4
COUNTS = frozenset({"tests", "skipped", "failures", "errors"})  # counts, not key metrics


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolRow(Frozen):
    name: str
    permission: str


class EvaluationRow(Frozen):
    name: str
    format: str
    metrics: dict[str, float]
    samples: dict[str, int] = Field(default_factory=dict)


class InventoryRow(Frozen):
    repository: str
    system: str
    owner: str | None = None
    escalation: str | None = None
    tier: str
    tier_reasons: list[str]
    provider: str | None = None
    model: str | None = None
    version: str | None = None
    data_classes: list[str] = Field(default_factory=empty_list)
    tools: list[ToolRow] = Field(default_factory=empty_list)
    fallback: str | None = None
    evaluations: list[EvaluationRow] = Field(default_factory=empty_list)
    decision_id: str | None = None
    approved_at: str | None = None
    approved_by: list[str] = Field(default_factory=empty_list)
    approved_policy_version: str | None = None
    approval_age_days: int | None = None
    cost_per_request_usd: float | None = None
    projected_monthly_usd: float | None = None
    status: RecertStatus
    findings: list[str] = Field(default_factory=empty_list, description="'ID: reason' of each re-certification finding")


class CostTotals(Frozen):
    total_monthly_usd: float
    unknown: list[str] = Field(default_factory=empty_list, description="systems whose monthly cost cannot be projected")
    by_owner: dict[str, float] = Field(default_factory=dict)
    by_provider: dict[str, float] = Field(default_factory=dict)


class Inventory(Frozen):
    on: date
    policy_version: str
    rows: list[InventoryRow]
    cost: CostTotals

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in RecertStatus}
        for r in self.rows:
            out[r.status.value] += 1
        return out


def _fallback(m) -> str | None:
    fb = m.fallback if m else None
    if fb is None:
        return None
    return f"{fb.strategy.value} ({fb.model.id})" if fb.model else fb.strategy.value


def _evaluations(s: ProductionSystem) -> list[EvaluationRow]:
    names = {e.path: e.name for e in s.manifest.evaluations} if s.manifest else {}
    if s.manifest and s.manifest.fallback and s.manifest.fallback.drill:
        names.setdefault(s.manifest.fallback.drill.path, "fallback-drill")
    rows = []
    for ev in s.lock.evidence if s.lock else []:
        keys = sorted((k for k in ev.metrics if k not in COUNTS), key=lambda k: (k != "pass_rate", k))[:KEY_METRICS]
        rows.append(EvaluationRow(name=names.get(ev.path, ev.path), format=ev.format,
                                  metrics={k: ev.metrics[k] for k in keys},
                                  samples={k: ev.samples[k] for k in keys if k in ev.samples}))
    return rows


def build_row(s: ProductionSystem, policy: Policy, today: date) -> InventoryRow:
    rc = recertify(s, policy, today)
    tier, reasons = tier_of(s, policy)
    return facts_row(s, tier.value, reasons, today, rc.status, [f"{f.id}: {f.reason}" for f in rc.findings])


def facts_row(s: ProductionSystem, tier: str, tier_reasons: list[str], today: date, status: RecertStatus,
              findings: list[str]) -> InventoryRow:
    """One row from what production runs and a status judged elsewhere (recertify, or the ledger)."""
    m, lock = s.manifest, s.lock
    provider, name, version = parse_model_ref(lock.model) if lock else (None, None, None)
    cost = lock.cost if lock else None
    return InventoryRow(
        repository=s.repository, system=s.system, owner=m.owner if m else None,
        escalation=m.escalation.contact if m and m.escalation else None,
        tier=tier, tier_reasons=list(tier_reasons), provider=provider, model=name, version=version,
        data_classes=m.touched_data_classes() if m else [],  # a data source's class too
        tools=[ToolRow(name=t.name, permission=t.permission.value) for t in m.use_case.tools] if m else [],
        fallback=_fallback(m), evaluations=_evaluations(s),
        decision_id=lock.decision_id if lock else None,
        approved_at=lock.promoted_at.isoformat() if lock else None,
        approved_by=[] if s.unverified else list(lock.approved_by or s.approvers) if lock else list(s.approvers),
        approved_policy_version=lock.policy_version if lock else None,
        approval_age_days=(today - lock.promoted_at.date()).days if lock else None,
        cost_per_request_usd=cost.cost_per_request_usd if cost else None,
        projected_monthly_usd=_monthly(s),
        status=status, findings=list(findings),
    )


def _monthly(s: ProductionSystem) -> float | None:
    """Production's projected month (recertify.production_monthly_usd); None (unknown) for a lock the
    gate did not write: its cost is a claim, not a fact."""
    return None if s.unverified else production_monthly_usd(s)


def cost_totals(rows: list[InventoryRow]) -> CostTotals:
    by_owner: dict[str, float] = defaultdict(float)
    by_provider: dict[str, float] = defaultdict(float)
    unknown = []
    for r in rows:
        if r.projected_monthly_usd is None:
            unknown.append(r.system)
            continue
        by_owner[r.owner or "unknown"] += r.projected_monthly_usd
        by_provider[r.provider or "unknown"] += r.projected_monthly_usd
    return CostTotals(
        total_monthly_usd=round(sum(by_owner.values()), 2), unknown=unknown,
        by_owner={k: round(v, 2) for k, v in sorted(by_owner.items())},
        by_provider={k: round(v, 2) for k, v in sorted(by_provider.items())},
    )


def build_inventory(systems: list[ProductionSystem], policy: Policy, today: date) -> Inventory:
    rows = sorted((build_row(s, policy, today) for s in systems), key=lambda r: (r.repository, r.system))
    return Inventory(on=today, policy_version=policy.version, rows=rows, cost=cost_totals(rows))
