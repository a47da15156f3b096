"""Re-certification: judge a production lock again under the current policy, without new evidence.

Each rule is a small pure function over (system, policy, today) returning findings with stable ids:

- PG-RECERT-001 the model or version is no longer approved, or is deprecated (out of policy);
- PG-RECERT-002 a data class the system touches is no longer allowed for its provider (out of policy);
- PG-RECERT-003 the tier's floors now exceed the metrics the lock was approved with, or (where the
  tier's ``unfloored_evidence`` fails) none of them is a metric the floors name (out of policy);
- PG-RECERT-004 the approval is older than the tier's ``recertify_after_days`` (due);
- PG-RECERT-005 the evidence is older than the tier's ``recertification_evidence_max_age_days`` (due);
- PG-RECERT-006 the lock or the manifest it pins cannot be read or does not match (out of policy:
  a system whose facts cannot be established is never current);
- PG-RECERT-007 the lock production runs was not written by the gate for a promoted decision (its
  signature, its ledger entry or its content: the lock guard's judgment, checklists/lock_guard.py),
  e.g. merged past the guard with an administrator's bypass (out of policy).

Ids are never reused or renumbered. The policy's ``recertification.blocking`` marks findings that
block the system's next promotion (PG-RECERT-010) until a candidate resolves them.
"""

from datetime import date, datetime
from typing import Callable

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.candidate import ProductionLock
from promotion_gate.checklists.defaults import empty_list
from promotion_gate.checklists.findings import Finding, Recertification, RecertStatus
from promotion_gate.checklists.manifest import Manifest
from promotion_gate.checklists.policy import Policy, Tier

TITLES = {
    "PG-RECERT-001": "Ensure the production model and version are still approved and not deprecated",
    "PG-RECERT-002": "Ensure every data class is still allowed for the provider",
    "PG-RECERT-003": "Ensure the approved metrics still meet the tier's floors",
    "PG-RECERT-004": "Ensure the approval is younger than the tier's re-certification period",
    "PG-RECERT-005": "Ensure the evidence is younger than re-certification allows",
    "PG-RECERT-006": "Ensure the production lock and the manifest it pins can be read",
    "PG-RECERT-007": "Ensure the production lock was written by the gate for a promoted decision",
    "PG-RECERT-008": "Ensure production's cost is still within the tier's budget",
    "PG-RECERT-009": "Ensure logs are kept no longer than the tier now allows",
}


class ProductionSystem(BaseModel):
    """What production runs for one system: its lock file and the manifest the lock pins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str
    system: str
    lock: ProductionLock | None = None
    lock_sha256: str = ""
    manifest: Manifest | None = None
    problems: list[str] = Field(default_factory=empty_list, description="why the lock or manifest is unusable")
    approvers: list[str] = Field(default_factory=empty_list, description="who approved, from the ledger when the lock does not say")
    unverified: str | None = Field(default=None, description="why the lock is not one the gate wrote for a promoted decision "
                                   "(set by the recertify flow, which verifies it; None: it verified, or was not checked)")


def parse_model_ref(ref: str) -> tuple[str, str, str | None]:
    """``provider/name@version`` (as the lock writes it) -> (provider, name, version or None)."""
    provider, _, rest = ref.partition("/")
    name, _, version = rest.partition("@")
    return provider, name, (version if version and version != "None" else None)


def tier_of(system: ProductionSystem, policy: Policy) -> tuple[Tier, list[str]]:
    if system.manifest is None:
        return Tier.high, ["the manifest could not be read, so the strictest tier applies"]
    return policy.classify(system.manifest)


def _finding(policy: Policy, fid: str, status: RecertStatus, reason: str, **facts) -> Finding:
    return Finding(id=fid, title=TITLES[fid], reason=reason, status=status,
                   blocking=policy.recertification.blocks(fid), facts=facts)


Rule = Callable[[ProductionSystem, Policy, date], list[Finding]]


def _lock_of(s: ProductionSystem) -> ProductionLock:
    """The lock a rule judges (``recertify`` runs the rules only when there is one)."""
    if s.lock is None:
        raise ValueError("there is no lock file to judge")
    return s.lock


def model_still_approved(s: ProductionSystem, policy: Policy, today: date) -> list[Finding]:
    refs = [("model", parse_model_ref(_lock_of(s).model))]
    fb = s.manifest.fallback.model if s.manifest and s.manifest.fallback and s.manifest.fallback.model else None
    if fb is not None:
        refs.append(("fallback model", (fb.provider, fb.name, fb.version)))
    out = []
    for what, (provider, name, version) in refs:
        label = f"{provider}/{name}@{version}"
        versions = policy.approved_model(provider, name)
        if provider not in policy.providers:
            out.append(_finding(policy, "PG-RECERT-001", RecertStatus.out_of_policy, f"{what} provider {provider} is no longer approved", model=label))
        elif versions is None:
            out.append(_finding(policy, "PG-RECERT-001", RecertStatus.out_of_policy, f"{what} {provider}/{name} is no longer approved", model=label))
        elif version not in versions:
            out.append(_finding(policy, "PG-RECERT-001", RecertStatus.out_of_policy, f"{what} version {version} is no longer approved", model=label))
        else:
            deprecated = policy.providers[provider].deprecated.get(version or "")
            if deprecated is not None and deprecated <= today:
                out.append(_finding(policy, "PG-RECERT-001", RecertStatus.out_of_policy,
                                    f"{what} version {version} is deprecated since {deprecated.isoformat()}", model=label, deprecated=deprecated.isoformat()))
    return out


def data_classes_still_allowed(s: ProductionSystem, policy: Policy, today: date) -> list[Finding]:
    if s.manifest is None:
        return []
    provider, _, _ = parse_model_ref(_lock_of(s).model)
    p = policy.providers.get(provider)
    allowed = set(p.data_classes) if p else set()
    refused = [dc for dc in s.manifest.touched_data_classes() if dc not in allowed]  # a data source's class too
    if not refused:
        return []
    return [_finding(policy, "PG-RECERT-002", RecertStatus.out_of_policy,
                     f"{provider} may no longer receive {', '.join(refused)}", provider=provider, data_classes=refused)]


def _floor_met(floor, value: float) -> bool:
    met_by = getattr(floor, "met_by", None)
    return met_by(value) if met_by else value >= float(floor)


def _floor_text(floor) -> str:
    return str(floor) if hasattr(floor, "met_by") else f">= {float(floor):g}"


def metrics_meet_floors(s: ProductionSystem, policy: Policy, today: date) -> list[Finding]:
    if s.manifest is None:
        return []  # which files are evaluations is unknown: PG-RECERT-006 already says so
    tier, _ = tier_of(s, policy)
    floors = policy.tiers[tier].metric_floors
    evaluations = {e.path: e.name for e in s.manifest.evaluations}
    out = []
    judged = [ev for ev in _lock_of(s).evidence if ev.path in evaluations]  # a fallback drill is judged by its own item
    if floors and judged and policy.tiers[tier].unfloored_evidence == "fail" and not any(m in ev.metrics for ev in judged for m in floors):
        shown = ", ".join(f"{m} {_floor_text(f)}" for m, f in floors.items())
        out.append(_finding(policy, "PG-RECERT-003", RecertStatus.out_of_policy,
                            f"no approved metric is one the {tier.value} tier has a floor for ({shown}): the floors judge "
                            "nothing, and its next promotion fails PG-EVAL-002", floors=shown))
    for ev in judged:
        name = evaluations[ev.path]
        for metric, floor in floors.items():
            value = ev.metrics.get(metric)
            if value is not None and not _floor_met(floor, value):
                out.append(_finding(policy, "PG-RECERT-003", RecertStatus.out_of_policy,
                                    f"{name}.{metric} was approved at {value:.3f}; the {tier.value} tier's floor is now {_floor_text(floor)}",
                                    evaluation=name, metric=metric, value=value, floor=_floor_text(floor)))
    return out


def _age_days(then: datetime, today: date) -> int:
    return (today - then.date()).days


def approval_is_recent(s: ProductionSystem, policy: Policy, today: date) -> list[Finding]:
    lock = _lock_of(s)
    tier, _ = tier_of(s, policy)
    period = policy.tiers[tier].recertify_after_days
    age = _age_days(lock.promoted_at, today)
    if period is None or age <= period:
        return []
    return [_finding(policy, "PG-RECERT-004", RecertStatus.due,
                     f"approved {age} days ago ({lock.promoted_at.date().isoformat()}); the {tier.value} tier re-certifies after {period} days",
                     age_days=age, period_days=period)]


def evidence_is_recent(s: ProductionSystem, policy: Policy, today: date) -> list[Finding]:
    lock = _lock_of(s)
    tier, _ = tier_of(s, policy)
    limit = policy.tiers[tier].recertification_evidence_max_age_days
    if limit is None:
        return []
    out = []
    for ev in lock.evidence:
        produced = ev.produced_at or lock.promoted_at  # an undated file is at least as old as its approval
        age = _age_days(produced, today)
        if age > limit:
            since = "produced" if ev.produced_at else "approved (the file gives no date)"
            out.append(_finding(policy, "PG-RECERT-005", RecertStatus.due,
                                f"{ev.path} was {since} {age} days ago; re-certification allows {limit} days at the {tier.value} tier",
                                path=ev.path, age_days=age, limit_days=limit))
    return out


def lock_is_the_gates(s: ProductionSystem, policy: Policy, today: date) -> list[Finding]:
    if s.unverified is None:
        return []
    return [_finding(policy, "PG-RECERT-007", RecertStatus.out_of_policy,
                     f"the production lock was not written by the gate for a promoted decision: {s.unverified}")]


MAX_MONTHLY_USD = 1e18  # a projection above this is no projection; any number of rows still sums to a number


def production_volume(s: ProductionSystem) -> int | None:
    """Requests a month: what the pinned manifest declares, else what the lock recorded at promotion."""
    volume = s.manifest.expected_monthly_requests if s.manifest else None
    cost = s.lock.cost if s.lock else None
    return volume if volume is not None else (cost.expected_monthly_requests if cost else None)


def production_monthly_usd(s: ProductionSystem) -> float | None:
    """Production's cost per request times its volume, to the cent; None when either is unknown or
    the product passes MAX_MONTHLY_USD (1e308 a request is finite, its month is not)."""
    cost = s.lock.cost if s.lock else None
    volume = production_volume(s)
    if cost is None or cost.cost_per_request_usd is None or volume is None:
        return None
    monthly = cost.cost_per_request_usd * volume
    return round(monthly, 2) if monthly <= MAX_MONTHLY_USD else None


def cost_within_budget(s: ProductionSystem, policy: Policy, today: date) -> list[Finding]:
    """PG-COST-001 on what production costs (the lock's cost per request, judged at promotion), under
    today's budget: a budget cut puts a system over it out of policy. An unknown cost is no finding
    (PG-COST-001 warned about it at promotion)."""
    cost = _lock_of(s).cost
    tier, _ = tier_of(s, policy)
    budget = policy.tiers[tier].budgets
    cpr = cost.cost_per_request_usd if cost and not s.unverified else None  # an unverified lock's cost is a claim (007)
    if cpr is None:
        return []
    volume, monthly = production_volume(s), production_monthly_usd(s)
    over = []
    if budget.per_request_usd is not None and cpr > budget.per_request_usd:
        over.append(f"cost per request ${cpr:.5g} > the {tier.value} tier's budget ${budget.per_request_usd:g}")
    if budget.per_month_usd is not None and monthly is not None and monthly > budget.per_month_usd:
        over.append(f"${monthly:,.2f}/month ({volume:,} requests) > the {tier.value} tier's budget ${budget.per_month_usd:,.2f}")
    if not over:
        return []
    return [_finding(policy, "PG-RECERT-008", RecertStatus.out_of_policy, "; ".join(over), cost_per_request_usd=cpr,
                     projected_monthly_usd=monthly, budget=budget.model_dump(mode="json"))]


def logs_within_retention(s: ProductionSystem, policy: Policy, today: date) -> list[Finding]:
    """PG-LOG-001's retention limit on the manifest production runs with, under today's policy."""
    log = s.manifest.logging if s.manifest else None
    if log is None:
        return []
    tier, _ = tier_of(s, policy)
    limit = policy.tiers[tier].max_log_retention_days
    if log.retention_days <= limit:
        return []
    return [_finding(policy, "PG-RECERT-009", RecertStatus.out_of_policy,
                     f"logs are kept {log.retention_days} days; the {tier.value} tier now allows {limit}",
                     retention_days=log.retention_days, limit_days=limit)]


RULES: tuple[Rule, ...] = (model_still_approved, data_classes_still_allowed, metrics_meet_floors, approval_is_recent, evidence_is_recent,
                           lock_is_the_gates, cost_within_budget, logs_within_retention)


def _unreadable(s: ProductionSystem, policy: Policy) -> list[Finding]:
    problems = list(s.problems)
    if s.lock is None and not problems:
        problems = ["no lock file"]
    if s.lock is not None and s.manifest is None and not problems:
        problems = [f"the manifest pinned by the lock ({s.lock.manifest_sha256[:12]}) is not available"]
    return [_finding(policy, "PG-RECERT-006", RecertStatus.out_of_policy, p) for p in problems]


def recertify(s: ProductionSystem, policy: Policy, today: date) -> Recertification:
    """Every finding of one production system under ``policy`` on ``today``."""
    findings = _unreadable(s, policy)
    if s.lock is not None:
        for rule in RULES:
            try:
                findings += rule(s, policy, today)
            except Exception as exc:  # a rule that breaks is a finding, never a clean bill
                findings.append(_finding(policy, "PG-RECERT-006", RecertStatus.out_of_policy,
                                         f"{rule.__name__} could not judge the lock: {type(exc).__name__}: {exc}"))
    lock = s.lock
    return Recertification(
        system=s.system, repository=s.repository, lock_sha256=s.lock_sha256,
        approved_decision=lock.decision_id if lock else "", approved_policy_version=lock.policy_version if lock else "",
        policy_version=policy.version, policy_digest=policy.digest, on=today, findings=findings,
    )


def candidate_as_production(ctx) -> ProductionSystem:
    """The candidate as it would stand in production if promoted now (for PG-RECERT-010)."""
    from promotion_gate.checklists.candidate import LockedEvidence

    m, c = ctx.manifest, ctx.candidate
    evidence = [
        LockedEvidence(path=r.path, format=r.format, sha256=r.sha256 or "",
                       metrics={k: x.value for k, x in r.parsed.metrics.items()} if r.parsed else {},
                       produced_at=r.parsed.provenance.created_at if r.parsed else None)
        for r in c.evidence
    ]
    lock = ProductionLock(
        system=c.system, source_commit=c.commit, manifest_sha256=c.manifest_sha256,
        model=m.model.id, evidence=evidence, decision_id="candidate",
        policy_version=ctx.policy.version, policy_digest=ctx.policy.digest, promoted_at=ctx.now,
    )
    return ProductionSystem(repository="candidate", system=c.system, lock=lock, manifest=m)


def candidate_resolves_blocking_findings(ctx):
    """PG-RECERT-010 (its title, controls and remedy: the policy item of this id)."""
    blocking = ctx.policy.recertification.blocking
    if not blocking:
        return ctx.not_applicable("the policy marks no re-certification finding as blocking")
    found = [f for f in recertify(candidate_as_production(ctx), ctx.policy, ctx.now.date()).findings if f.blocking]
    if found:
        return ctx.fail("; ".join(f"{f.id}: {f.reason}" for f in found), findings=[f.id for f in found])
    return ctx.passed(f"clear of the blocking findings {', '.join(blocking)}")
