"""Checks of the evaluation evidence: present, fresh, about this model, above floors and thresholds."""

from __future__ import annotations

from datetime import timedelta

from promotion_gate.checklists.candidate import EvidenceRecord
from promotion_gate.checklists.context import CheckContext
from promotion_gate.checklists.evidence.base import PASS_RATE, Metric
from promotion_gate.checklists.manifest import Evaluation
from promotion_gate.checklists.results import CheckResult
from promotion_gate.checklists.stats import drop_verdict, normal, wilson


def _records(ctx: CheckContext) -> list[tuple[Evaluation, EvidenceRecord | None]]:
    return [(ev, ctx.candidate.evidence_for(ev)) for ev in ctx.manifest.evaluations]


def _thresholds(ctx: CheckContext, ev: Evaluation, rec: EvidenceRecord) -> dict[str, float]:
    """The manifest's thresholds raised to the tier's floors (floors apply where the file has the metric)."""
    out = dict(ev.thresholds)
    for metric, floor in ctx.tier_policy.metric_floors.items():
        if rec.metric(metric) is not None or metric in out:
            out[metric] = max(out.get(metric, floor), floor)
    return out


def evidence_is_present_and_fresh(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-001: Ensure every evidence file the manifest names exists, parses and is fresh."""
    if not ctx.manifest.evaluations:
        return ctx.fail("no evaluations declared", "add evaluations (format, path, thresholds) with their result files")
    max_age = timedelta(days=ctx.tier_policy.evidence_max_age_days)
    findings = []
    for ref in ctx.manifest.evidence_refs():
        rec = ctx.candidate.evidence_for(ref)
        where = f"ai-systems/{ctx.manifest.name}/{ref.path}"
        if rec is None or rec.error:
            reason = rec.error if rec else "not read"
            findings.append(ctx.error(f"{where}: {reason}", f"commit a valid {ref.format} result file at {where}", file=where))
            continue
        created = rec.parsed.provenance.created_at
        if created is None:
            findings.append(ctx.warn(f"{where}: the file does not say when it was produced", "use a tool version that records a timestamp", file=where))
            continue
        if created.tzinfo is None:
            created = created.replace(tzinfo=ctx.now.tzinfo)
        age = ctx.now - created
        if age > max_age:
            findings.append(ctx.fail(f"{where}: produced {age.days} days ago, older than {max_age.days}", "re-run the evaluation on the candidate and commit its results", file=where, age_days=age.days))
        elif age < -timedelta(days=1):
            findings.append(ctx.fail(f"{where}: timestamp {created.isoformat()} is in the future", "commit results with a true timestamp", file=where))
        else:
            findings.append(ctx.passed(f"{where}: {rec.sha256[:12]}, {age.days} days old", file=where, sha256=rec.sha256))
    return ctx.worst(findings)


def thresholds_respect_floors(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-002: Ensure no threshold is set below the tier's floor."""
    floors = ctx.tier_policy.metric_floors
    lowered = [
        f"{ev.name}.{metric} = {value} < floor {floors[metric]}"
        for ev in ctx.manifest.evaluations
        for metric, value in ev.thresholds.items()
        if metric in floors and value < floors[metric]
    ]
    if lowered:
        return ctx.fail(f"threshold lowered below the {ctx.tier.value} tier floor: {'; '.join(lowered)}", f"raise the thresholds to at least the floors {floors}", lowered=lowered)
    return ctx.passed(f"thresholds at or above floors {floors}" if floors else "the tier sets no floors", floors=floors)


def _judge_metric(ctx: CheckContext, label: str, metric: Metric, threshold: float) -> CheckResult:
    if metric.passed is not None and metric.failed is not None and metric.passed + metric.failed > 0:
        interval = wilson(metric.passed, metric.passed + metric.failed)
    elif metric.stderr is not None:
        interval = normal(metric.value, metric.stderr)
    else:
        interval = None
    facts = {label: metric.value, f"{label}.threshold": threshold}
    if interval is None:
        if metric.value >= threshold:
            return ctx.passed(f"{label} {metric.value:.3f} >= {threshold}", **facts)
        return ctx.fail(f"{label} {metric.value:.3f} < {threshold}", **facts)
    facts[f"{label}.interval"] = [round(interval.low, 4), round(interval.high, 4)]
    shown = f"{label} {metric.value:.3f} (95% CI {interval.low:.3f}-{interval.high:.3f}, n={metric.n})"
    verdict = interval.verdict(threshold)
    if verdict == "above":
        return ctx.passed(f"{shown} >= {threshold}", **facts)
    if verdict == "below":
        return ctx.fail(f"{shown} < {threshold}", f"improve {label} to at least {threshold}", **facts)
    return ctx.inconclusive(f"{shown} straddles {threshold}: too few samples to tell", **facts)


def thresholds_are_met(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-003: Ensure evaluation results meet their thresholds, with their uncertainty."""
    findings = []
    for ev, rec in _records(ctx):
        if rec is None or rec.parsed is None:
            findings.append(ctx.error(f"{ev.name}: no usable results (see PG-EVAL-001)"))
            continue
        thresholds = _thresholds(ctx, ev, rec)
        if not thresholds:
            findings.append(ctx.warn(f"{ev.name}: no thresholds set", f"add evaluations[{ev.name}].thresholds"))
        for name, threshold in sorted(thresholds.items()):
            metric = rec.metric(name)
            if metric is None:
                have = ", ".join(sorted(rec.parsed.metrics)) or "none"
                findings.append(ctx.fail(f"{ev.name}: metric {name} not in {ev.path} (it has {have})", f"report {name} in {ev.path} or fix the threshold's name"))
            else:
                findings.append(_judge_metric(ctx, f"{ev.name}.{name}", metric, threshold))
    if not findings:
        return ctx.not_applicable("no evaluations declared (see PG-EVAL-001)")
    return ctx.worst(findings)


def samples_are_sufficient(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-004: Ensure each evaluation rests on the tier's minimum number of samples."""
    need = ctx.tier_policy.min_samples
    findings = []
    for ev, rec in _records(ctx):
        if rec is None or rec.parsed is None:
            continue
        counts = [m.n for m in rec.parsed.metrics.values() if m.n is not None]
        n = max(counts) if counts else None
        if n is None:
            findings.append(ctx.inconclusive(f"{ev.name}: the file gives no sample count", **{f"{ev.name}.n": None}))
        elif n < need:
            findings.append(ctx.inconclusive(f"{ev.name}: {n} samples, fewer than the {need} a {ctx.tier.value}-tier system needs", **{f"{ev.name}.n": n}))
        else:
            findings.append(ctx.passed(f"{ev.name}: {n} samples >= {need}", **{f"{ev.name}.n": n}))
    return ctx.worst(findings) if findings else ctx.not_applicable("no usable evaluations")


def no_regression_against_production(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-005: Ensure no metric regressed against production beyond the tier's tolerance."""
    base = ctx.candidate.baseline
    if base is None:
        why = ctx.candidate.baseline_problem or "first promotion: no production.lock.json to compare against"
        return ctx.error(why) if ctx.candidate.baseline_problem else ctx.not_applicable(why)
    locked = {e.path: e for e in base.evidence}
    findings = []
    for ev, rec in _records(ctx):
        old = locked.get(ev.path)
        if rec is None or rec.parsed is None or old is None:
            continue
        for name, old_value in sorted(old.metrics.items()):
            metric = rec.metric(name)
            tolerance = min(ev.max_regression.get(name, 1.0), ctx.tier_policy.max_regression.get(name, 1.0))
            if metric is None or tolerance >= 1.0:
                continue
            verdict = drop_verdict(old_value, old.samples.get(name), metric.value, metric.n, tolerance)
            label = f"{ev.name}.{name} {old_value:.3f} -> {metric.value:.3f}"
            facts = {f"{ev.name}.{name}.delta": round(metric.value - old_value, 4)}
            if verdict == "beyond":
                findings.append(ctx.fail(f"{label}: regressed beyond the {tolerance} tolerance", f"recover {name} or justify the regression with a waiver", **facts))
            elif verdict == "uncertain":
                findings.append(ctx.inconclusive(f"{label}: drop may be noise", **facts))
            else:
                findings.append(ctx.passed(f"{label}: within {tolerance}", **facts))
    return ctx.worst(findings) if findings else ctx.not_applicable("no metric shared with production")


def evidence_matches_the_model(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-006: Ensure the evidence was produced with the candidate's model and version."""
    model = ctx.manifest.model
    findings = []
    for ev, rec in _records(ctx):
        if rec is None or rec.parsed is None:
            continue
        said = rec.parsed.provenance.model
        if not said:
            findings.append(ctx.not_applicable(f"{ev.name}: the file does not name its model"))
        elif (model.version or model.name) not in said:
            findings.append(ctx.fail(f"{ev.name}: results are for {said}, not {model.version or model.name}", "re-run the evaluation against the pinned model", **{f"{ev.name}.model": said}))
        else:
            findings.append(ctx.passed(f"{ev.name}: results for {said}", **{f"{ev.name}.model": said}))
    return ctx.worst(findings) if findings else ctx.not_applicable("no usable evaluations")


def fallback_was_drilled(ctx: CheckContext) -> CheckResult:
    """PG-FALLBACK-003: Ensure a drill showed the fallback engaging with the primary provider down."""
    fallback = ctx.manifest.fallback
    if fallback is None or fallback.drill is None:
        return ctx.fail("no fallback drill evidence", "add fallback.drill: an eval run with the primary provider failing")
    rec = ctx.candidate.evidence_for(fallback.drill)
    if rec is None or rec.parsed is None:
        return ctx.error(f"drill evidence unusable: {rec.error if rec else 'not read'}")
    rate = rec.metric(PASS_RATE)
    floor = ctx.tier_policy.metric_floors.get(PASS_RATE, 0.0)
    if rate is None:
        return ctx.fail("drill evidence has no pass_rate", "report pass/fail per drill case")
    if rate.value < floor:
        return ctx.fail(f"drill pass_rate {rate.value:.3f} < {floor}: the fallback did not engage reliably", **{"drill.pass_rate": rate.value})
    return ctx.passed(f"drill pass_rate {rate.value:.3f} with the primary down", **{"drill.pass_rate": rate.value})
