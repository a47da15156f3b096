"""Checks of the evaluation evidence: present, fresh, about this model, above floors and thresholds."""

from __future__ import annotations

from datetime import timedelta

from promotion_gate.checklists.candidate import EvidenceRecord
from promotion_gate.checklists.context import CheckContext
from promotion_gate.checklists.evidence.base import PASS_RATE
from promotion_gate.checklists.manifest import Evaluation, normal_path
from promotion_gate.checklists.results import CheckResult
from promotion_gate.checklists.bounds import bound
from promotion_gate.checklists.metric_judgment import (
    Judged, declared_bound, effective_bounds, floor_problem, is_rate, judge, regression_direction, samples,
)
from promotion_gate.checklists.provenance import Selection, select_candidate
from promotion_gate.checklists.stats import drop_verdict


def _records(ctx: CheckContext) -> list[tuple[Evaluation, EvidenceRecord | None]]:
    return [(ev, ctx.candidate.evidence_for(ev)) for ev in ctx.manifest.evaluations]


def _candidate(ctx: CheckContext, rec: EvidenceRecord) -> Selection:
    """Only the candidate's results in a file (exact provider, model, version; never pooled)."""
    return select_candidate(rec.parsed, ctx.manifest.model)


def _usable(ctx: CheckContext) -> list[tuple[Evaluation, EvidenceRecord, Selection]]:
    return [(ev, rec, _candidate(ctx, rec)) for ev, rec in _records(ctx) if rec is not None and rec.parsed is not None]


def evidence_is_present_and_fresh(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-001 (its title, controls and remedy: the policy item of this id)."""
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
            say = ctx.warn if ctx.tier_policy.undated_evidence == "warn" else ctx.fail
            findings.append(say(f"{where}: the file does not say when it was produced ({ctx.tier.value} tier: {ctx.tier_policy.undated_evidence})", "use a tool version that records a timestamp", file=where))
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
    """PG-EVAL-002 (its title, controls and remedy: the policy item of this id)."""
    floors = ctx.tier_policy.metric_floors
    unusable, loosened = [], []
    for ev in ctx.manifest.evaluations:
        for name, value in sorted(ev.thresholds.items()):
            declared, problem = declared_bound(ctx.policy, name, value)
            if problem:
                unusable.append(f"{ev.name}: {problem}")
            elif name in floors and (why := floor_problem(floors[name], declared, name)):
                loosened.append(f"{ev.name}.{why}")
    shown = {k: str(v) for k, v in floors.items()}
    if unusable:
        return ctx.error("; ".join(unusable), "write each threshold as {min: x} or {max: x}, in the metric's direction, a rate within [0, 1]", unusable=unusable)
    if loosened:
        return ctx.fail(f"threshold loosens the {ctx.tier.value} tier floor: {'; '.join(loosened)}", f"tighten the thresholds to at least the floors {shown}", lowered=loosened)
    judged = [(ev.name, any(name in sel.metrics or name in ev.thresholds for name in floors))
              for ev, _, sel in _usable(ctx) if floors and not sel.problem]
    uncovered = [name for name, covered in judged if not covered]
    if uncovered and len(uncovered) == len(judged) and ctx.tier_policy.unfloored_evidence == "fail":
        return ctx.fail(f"no evaluation reports a metric the {ctx.tier.value} tier has a floor for (floors {shown}): "
                        f"{', '.join(uncovered)} {'reports' if len(uncovered) == 1 else 'report'} only metrics of {'its' if len(uncovered) == 1 else 'their'} own, so the floors judge nothing "
                        f"({ctx.tier.value} tier: unfloored_evidence fail)",
                        f"add an evaluation that reports {', '.join(sorted(floors))}, or ask the platform team for a floor on "
                        "your metric", uncovered=uncovered)
    if uncovered:  # a metric chosen so that no floor applies is listed for review, not passed silently
        return ctx.warn(f"no floor of the {ctx.tier.value} tier applies to {', '.join(uncovered)} (floors {shown})",
                        "report a metric the tier has a floor for, or ask the platform team for a floor on yours", uncovered=uncovered)
    return ctx.passed(f"thresholds at or tighter than floors {shown}" if floors else "the tier sets no floors", floors=shown)


def _result(ctx: CheckContext, label: str, judged: Judged, facts: dict) -> CheckResult:
    text = f"{label} {judged.text}"
    if judged.interval is not None:
        facts[f"{label}.interval"] = [round(judged.interval.low, 4), round(judged.interval.high, 4)]
    if judged.verdict == "pass":
        return ctx.passed(text, **facts)
    if judged.verdict == "fail":
        return ctx.fail(text, f"improve {label} to {facts[f'{label}.bound']}", **facts)
    if judged.verdict == "error":
        return ctx.error(text, "state the metric's direction consistently with the tool, and report it in range", **facts)
    return ctx.inconclusive(text, **facts)


def thresholds_are_met(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-003 (its title, controls and remedy: the policy item of this id)."""
    findings = []
    for ev, rec in _records(ctx):
        if rec is None or rec.parsed is None:
            findings.append(ctx.error(f"{ev.name}: no usable results (see PG-EVAL-001)"))
            continue
        sel = _candidate(ctx, rec)
        if sel.problem:
            findings.append(ctx.error(f"{ev.name}: {sel.problem} (see PG-EVAL-006)"))
            continue
        bounds, problems = effective_bounds(ctx.policy, ctx.tier_policy, ev, sel.metrics)
        findings += [ctx.error(f"{ev.name}: cannot judge: {p} (see PG-EVAL-002)") for p in problems]
        if not bounds and not problems:
            findings.append(ctx.warn(f"{ev.name}: no thresholds set", f"add evaluations[{ev.name}].thresholds"))
        for name, b in sorted(bounds.items()):
            metric = sel.metrics.get(name)
            label = f"{ev.name}.{name}"
            if metric is None:
                have = ", ".join(sorted(sel.metrics)) or "none"
                findings.append(ctx.fail(f"{ev.name}: metric {name} not in {ev.path} (it has {have})", f"report {name} in {ev.path} or fix the threshold's name"))
                continue
            facts = {label: metric.value, f"{label}.bound": str(b), f"{label}.n": samples(metric)}
            findings.append(_result(ctx, label, judge(ctx.policy, name, metric, b), facts))
    if not findings:
        return ctx.not_applicable("no evaluations declared (see PG-EVAL-001)")
    return ctx.worst(findings)


def samples_are_sufficient(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-004 (its title, controls and remedy: the policy item of this id)."""
    need = ctx.tier_policy.min_samples
    findings = []
    for ev, _rec, sel in _usable(ctx):
        if sel.problem:
            continue
        skipped = _skipped_beyond_the_share(ctx, ev, sel.metrics)
        if skipped:
            findings.append(skipped)
        bounds, _ = effective_bounds(ctx.policy, ctx.tier_policy, ev, sel.metrics)
        for name in sorted(bounds):
            metric = sel.metrics.get(name)
            if metric is None:
                continue
            n, key = samples(metric), f"{ev.name}.{name}.n"
            if n is None:
                findings.append(ctx.inconclusive(f"{ev.name}.{name}: the file gives no sample count", **{key: None}))
            elif n < need:
                findings.append(ctx.inconclusive(f"{ev.name}.{name}: {n} samples, fewer than the {need} a {ctx.tier.value}-tier system needs", **{key: n}))
            else:
                findings.append(ctx.passed(f"{ev.name}.{name}: {n} samples >= {need}", **{key: n}))
    return ctx.worst(findings) if findings else ctx.not_applicable("no judged metrics")


def _skipped_beyond_the_share(ctx: CheckContext, ev: Evaluation, metrics: dict):
    """A failure when an evaluation skipped a larger share of its tests than the tier allows
    (``max_skipped_share``; formats that count skipped tests: JUnit's ``tests`` and ``skipped``). A
    suite whose model tests skip for want of an API key or network passes on what is left: its rate
    says nothing of the model. None where the tier sets no share or the file counts no skips."""
    share, tests, skipped = ctx.tier_policy.max_skipped_share, metrics.get("tests"), metrics.get("skipped")
    if share is None or tests is None or skipped is None or not tests.value:
        return None
    part = skipped.value / tests.value
    if part <= share + 1e-12:
        return None
    return ctx.fail(
        f"{ev.name}: {skipped.value:g} of its {tests.value:g} tests were skipped ({part:.0%}; the {ctx.tier.value} tier "
        f"allows {share:.0%}): a skipped test evaluates nothing",
        "run the skipped tests where they can reach what they evaluate (credentials, network, quota), then commit the results",
        **{f"{ev.name}.skipped": skipped.value, f"{ev.name}.tests": tests.value})


def _tolerance(ctx: CheckContext, ev: Evaluation, name: str, production: dict[str, float] | None = None) -> float | None:
    """The tightest of the candidate's, the tier's and production's own tolerance (the lock keeps the one the
    promoted manifest set: deleting it from the manifest does not switch the comparison off)."""
    given = [t for t in (ev.max_regression.get(name), ctx.tier_policy.max_regression.get(name), (production or {}).get(name))
             if t is not None]
    return min(given) if given else None


def _baseline_remedy(ctx: CheckContext, keep: str) -> str:
    """How to get past a baseline that cannot be compared: keep it comparable, or ask for a waiver."""
    roles, days = ctx.item.waivable_by, ctx.tier_policy.waiver_max_days
    if not roles or not days:
        return f"{keep}: the policy allows no waiver of {ctx.item.id} at the {ctx.tier.value} tier"
    return (f"{keep}; if you changed it on purpose, request a waiver of {ctx.item.id} in the manifest (waivers: item, reason, "
            f"expires within {days} days) for a {' or '.join(roles)} reviewer to grant, after comparing the old and new results; "
            "the lock this promotion writes then holds the new baseline")


def no_regression_against_production(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-005 (its title, controls and remedy: the policy item of this id).

    Production's baseline is compared file by file (paths normalised, as the manifest stores them).
    A locked evidence file that no current evaluation (or the drill) uses, and a locked metric with a
    tolerance that the current results no longer report, fail: nothing can be compared, so the
    regression check cannot be stepped around by renaming, dropping or respelling an evaluation. A
    file production judged as an evaluation (the lock's ``role``) fails too when it comes back only
    as the fallback drill; a lock written before roles were kept takes the drill's file as a drill."""
    base = ctx.candidate.baseline
    if base is None:
        why = ctx.candidate.baseline_problem or "first promotion: no production.lock.json to compare against"
        return ctx.error(why) if ctx.candidate.baseline_problem else ctx.not_applicable(why)
    locked = {normal_path(e.path): e for e in base.evidence}
    fallback = ctx.manifest.fallback
    evaluated = {ev.path for ev in ctx.manifest.evaluations}
    drill = fallback.drill.path if fallback and fallback.drill else None
    findings = []
    for path, old in sorted(locked.items()):
        # compared below; nothing to compare; or still the drill (a lock from before roles: taken as one)
        if path in evaluated or not old.metrics or (path == drill and old.role != "evaluation"):
            continue
        had = ", ".join(f"{k} {v:.3f}" for k, v in sorted(old.metrics.items()))
        if path == drill:  # a drill is not compared with production: moving an evaluation there hides it
            why = (f"production's evaluation {path} ({had}) is now the fallback drill: a drill is not compared with production, "
                   "so its results are no longer judged against the baseline")
            keep, fact = f"keep {path} as an evaluation, and drill the fallback with a file of its own", "now_the_drill"
        else:
            why = f"production's evidence {path} ({had}) is gone: no current evaluation uses that file, so nothing can be compared"
            keep, fact = f"keep the file name {path} (production's lock names it) for this evaluation", "gone"
        findings.append(ctx.fail(why, _baseline_remedy(ctx, keep), **{f"{path}.{fact}": sorted(old.metrics)}))
    for ev, _rec, sel in _usable(ctx):
        old = locked.get(ev.path)
        if old is None or sel.problem:
            continue
        bounds, _ = effective_bounds(ctx.policy, ctx.tier_policy, ev, sel.metrics)
        for name, old_value in sorted(old.metrics.items()):
            metric, tolerance = sel.metrics.get(name), _tolerance(ctx, ev, name, old.max_regression)
            if tolerance is None:
                continue
            if metric is None:
                have = ", ".join(sorted(sel.metrics)) or "none"
                findings.append(ctx.fail(
                    f"{ev.name}: production's {name} ({old_value:.3f}) is no longer reported in {ev.path} (it has {have}), so it cannot be compared",
                    _baseline_remedy(ctx, f"report {name} in {ev.path} again"), **{f"{ev.name}.{name}.gone": old_value}))
                continue
            shrunk = _shrunk(ctx, ev, name, old.samples.get(name), samples(metric))
            if shrunk:
                findings.append(shrunk)
            direction = regression_direction(ctx.policy, name, bounds, metric)
            label = f"{ev.name}.{name} {old_value:.3f} -> {metric.value:.3f}"
            if direction is None:
                findings.append(ctx.error(f"{label}: a tolerance is set but no direction is known", f"give {name} a threshold {{min: x}} or {{max: x}}"))
                continue
            sign = 1 if direction == "min" else -1
            old_v, new_v = (old_value, metric.value) if sign == 1 else (1 - old_value, 1 - metric.value) if is_rate(ctx.policy, name) else (-old_value, -metric.value)
            verdict = drop_verdict(old_v, old.samples.get(name), new_v, samples(metric), tolerance)
            facts = {f"{ev.name}.{name}.delta": round(metric.value - old_value, 4), f"{ev.name}.{name}.worse_is": "lower" if sign == 1 else "higher"}
            if verdict == "beyond":
                findings.append(ctx.fail(f"{label}: regressed beyond the {tolerance:g} tolerance", f"recover {name} or ask for a waiver", **facts))
            elif verdict == "uncertain":
                findings.append(ctx.inconclusive(f"{label}: the change may be noise", **facts))
            else:
                findings.append(ctx.passed(f"{label}: within {tolerance:g}", **facts))
    return ctx.worst(findings) if findings else ctx.not_applicable("no metric with a regression tolerance shared with production")


def _shrunk(ctx: CheckContext, ev: Evaluation, name: str, before: int | None, now: int | None):
    """A failure when the candidate's metric rests on a smaller share of production's samples than the
    tier allows (``max_sample_shrink``): dropping the hardest cases, or skipping the failing tests (a
    skipped test is no sample), raises a rate that is then compared with production's as if like for
    like. None when either count is unknown (a lock from before counts were kept) or within the share."""
    if not before or now is None or now >= before:
        return None
    share = ctx.tier_policy.max_sample_shrink
    fewer = (before - now) / before
    if fewer <= share + 1e-12:
        return None
    allowed = f"the {ctx.tier.value} tier allows {share:.0%}" if share else f"the {ctx.tier.value} tier allows none"
    return ctx.fail(
        f"{ev.name}.{name}: {now} samples where production's rested on {before} ({fewer:.1%} fewer; {allowed}): "
        "a smaller evaluation, or one with skipped cases, is not compared like for like",
        _baseline_remedy(ctx, f"evaluate {name} on production's {before} samples again (none skipped)"),
        **{f"{ev.name}.{name}.samples": now, f"{ev.name}.{name}.production_samples": before})


def evidence_matches_the_model(ctx: CheckContext) -> CheckResult:
    """PG-EVAL-006 (its title, controls and remedy: the policy item of this id)."""
    findings = []
    for ev, _rec, sel in _usable(ctx):
        if not sel.named:
            say = ctx.warn if ctx.tier_policy.unnamed_model_evidence == "warn" else ctx.fail
            findings.append(say(f"{ev.name}: the file does not name its model ({ctx.tier.value} tier: {ctx.tier_policy.unnamed_model_evidence})", "use an evaluation format that records the model, or record it in the file"))
        elif sel.problem:
            findings.append(ctx.error(f"{ev.name}: {sel.problem}", "re-run the evaluation against the pinned model", **{f"{ev.name}.model": sel.said}))
        else:
            facts = {f"{ev.name}.model": sel.said}
            if sel.others:
                facts[f"{ev.name}.ignored"] = list(sel.others)
            findings.append(ctx.passed(f"{ev.name}: results for {sel.said}" + (f" (ignored: {', '.join(sel.others)})" if sel.others else ""), **facts))
    return ctx.worst(findings) if findings else ctx.not_applicable("no usable evaluations")


def _drill_reuses_an_evaluation(ctx: CheckContext, drill_path: str, drill: EvidenceRecord) -> str | None:
    """How the drill is one of the evaluations' files (same normalised path, the same bytes, or bytes that
    say exactly the same: the same format, models, metrics and sample counts, e.g. a copy with a newline
    added or its keys reordered), or None."""
    for ev in ctx.manifest.evaluations:
        if ev.path == drill_path:
            return f"the file of evaluation {ev.name}"
        rec = ctx.candidate.evidence_for(ev)
        if rec is not None and rec.sha256 and rec.sha256 == drill.sha256:
            return f"the same bytes (SHA-256 {rec.sha256[:12]}) as evaluation {ev.name}'s {ev.path}"
        if (rec is not None and rec.parsed is not None and drill.parsed is not None and rec.parsed.format == drill.parsed.format
                and rec.parsed.groups == drill.parsed.groups and rec.parsed.provenance == drill.parsed.provenance):
            return f"a copy of evaluation {ev.name}'s {ev.path} (the same results, models and run time)"
    return None


def fallback_was_drilled(ctx: CheckContext) -> CheckResult:
    """PG-FALLBACK-003 (its title, controls and remedy: the policy item of this id)."""
    fallback = ctx.manifest.fallback
    if fallback is None or fallback.drill is None:
        return ctx.fail("no fallback drill evidence", "add fallback.drill: an eval run with the primary provider failing")
    rec = ctx.candidate.evidence_for(fallback.drill)
    if rec is None or rec.parsed is None:
        return ctx.error(f"drill evidence unusable: {rec.error if rec else 'not read'}")
    if (same := _drill_reuses_an_evaluation(ctx, fallback.drill.path, rec)):
        return ctx.fail(f"the drill {fallback.drill.path} is {same}: the main evaluation ran with the primary provider up, "
                        "so it shows nothing of the fallback", "add fallback.drill: its own evaluation run with the primary provider failing",
                        drill=fallback.drill.path)
    drill_model = fallback.model or ctx.manifest.model
    sel = select_candidate(rec.parsed, drill_model)
    metrics = sel.metrics if not sel.problem else {}
    rate = metrics.get(PASS_RATE)
    floor = ctx.tier_policy.metric_floors.get(PASS_RATE, bound("min", 0.0))
    if rate is None:
        return ctx.fail(f"drill evidence has no pass_rate{f' ({sel.problem})' if sel.problem else ''}", "report pass/fail per drill case")
    judged = judge(ctx.policy, PASS_RATE, rate, floor)
    facts = {"drill.pass_rate": rate.value, "drill.pass_rate.bound": str(floor)}
    if judged.verdict == "fail":
        return ctx.fail(f"drill pass_rate {judged.text}: the fallback did not engage reliably", **facts)
    if judged.verdict != "pass":
        return _result(ctx, "drill.pass_rate", judged, facts)
    return ctx.passed(f"drill pass_rate {judged.text} with the primary down", **facts)
