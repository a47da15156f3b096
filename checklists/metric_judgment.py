"""How one metric is judged: its bound (threshold raised to the floor, with a direction), its
sample count, and its interval. Pure helpers of ``checks_evidence``.

Rules: a judged metric without a sample count is never judged as certain (its point value can
fail a bound, never pass it); a rate lies in [0, 1]; a tool's own direction must agree with the
bound's; a manifest's bound may tighten the tier's floor, never loosen it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from promotion_gate.checklists.bounds import Bound, Direction, bound, direction_of_tool, tightest
from promotion_gate.checklists.evidence.base import PASS_RATE, Metric
from promotion_gate.checklists.manifest import Evaluation
from promotion_gate.checklists.policy import Policy, TierPolicy
from promotion_gate.checklists.stats import Interval, normal, wilson


@dataclass(frozen=True)
class Judged:
    verdict: str  # "pass", "fail", "inconclusive", "error"
    text: str
    interval: Interval | None = None


def base_name(name: str) -> str:
    """``wikitext/word_perplexity,none`` -> ``word_perplexity``: how a tool qualifies a known metric."""
    return name.rsplit("/", 1)[-1].split(",", 1)[0]


def kind_of(policy: Policy, name: str):
    return policy.metrics.get(name) or policy.metrics.get(base_name(name))


def is_rate(policy: Policy, name: str) -> bool:
    kind = kind_of(policy, name)
    return name == PASS_RATE or (kind is not None and kind.rate)


def known_direction(policy: Policy, name: str) -> Direction | None:
    kind = kind_of(policy, name)
    if kind is not None:
        return kind.direction
    return "min" if name == PASS_RATE else None


def declared_bound(policy: Policy, name: str, value: Bound | float) -> tuple[Bound | None, str | None]:
    """A manifest threshold as a bound, or the problem with it."""
    if isinstance(value, Bound):
        b = value
    else:
        direction = known_direction(policy, name)
        if direction is None:
            return None, f"threshold {name}: {value:g} has no direction the policy knows; say {{min: {value:g}}} or {{max: {value:g}}}"
        b = bound(direction, float(value))
    direction = known_direction(policy, name)
    if direction is not None and direction != b.direction:
        return None, f"threshold {name}: {b.direction} contradicts the metric's direction ({'higher' if direction == 'min' else 'lower'} is better)"
    if is_rate(policy, name) and not 0 <= b.value <= 1:
        return None, f"threshold {name}: {b.value:g} is a rate outside [0, 1]"
    return b, None


def floor_problem(floor: Bound, declared: Bound, name: str) -> str | None:
    """PG-EVAL-002: a declared bound may tighten the floor, never loosen it or turn it around."""
    if declared.direction != floor.direction:
        return f"{name} {declared} turns the tier's floor {floor} around"
    if not declared.tighter_than_or_equal(floor):
        return f"{name} {declared} is looser than the tier's floor {floor}"
    return None


def effective_bounds(policy: Policy, tier: TierPolicy, ev: Evaluation, metrics: dict[str, Metric]) -> tuple[dict[str, Bound], list[str]]:
    """The bounds to judge: the manifest's, each raised to the floor; floors also where the file has the metric."""
    out: dict[str, Bound] = {}
    problems = []
    for name, value in ev.thresholds.items():
        b, problem = declared_bound(policy, name, value)
        if problem:
            problems.append(problem)
        else:
            out[name] = b
    for name, floor in tier.metric_floors.items():
        if name in metrics or name in ev.thresholds:
            mine = out.get(name)
            out[name] = floor if mine is None or mine.direction != floor.direction else tightest(mine, floor)
    return out, problems


def samples(metric: Metric) -> int | None:
    """Samples evaluated: passed + failed where the file counts them (skipped ones are not), else n."""
    if metric.passed is not None and metric.failed is not None:
        return metric.passed + metric.failed
    return metric.n


def _stderr(metric: Metric) -> float | None:
    s = metric.stderr
    return s if s is not None and math.isfinite(s) and s >= 0 else None


def interval_of(policy: Policy, name: str, metric: Metric) -> tuple[Interval | None, str | None]:
    n = samples(metric)
    if n is None or n == 0:
        return None, "the file gives no sample count for it"
    if metric.passed is not None and metric.failed is not None:
        return wilson(metric.passed, n), None
    stderr = _stderr(metric)
    if stderr is not None and not (stderr == 0 and n < 2):
        return normal(metric.value, stderr), None
    if is_rate(policy, name) and 0 <= metric.value <= 1:
        return wilson(round(metric.value * n), n), None
    return None, f"n={n} but no standard error to judge it with"


def judge(policy: Policy, name: str, metric: Metric, b: Bound) -> Judged:
    tool = direction_of_tool(getattr(metric, "higher_is_better", None))
    if tool is not None and tool != b.direction:
        return Judged("error", f"{metric.value:g} judged against {b}, but the tool says {'higher' if tool == 'min' else 'lower'} is better")
    if is_rate(policy, name) and not 0 <= metric.value <= 1:
        return Judged("error", f"{metric.value:g} is a rate outside [0, 1]")
    interval, why = interval_of(policy, name, metric)
    if interval is None:
        if not b.met_by(metric.value):
            return Judged("fail", f"{metric.value:.3f}, not {b} (and {why})")
        return Judged("inconclusive", f"{metric.value:.3f} {b} on its face, but {why}: not judged as certain")
    shown = f"{metric.value:.3f} (95% CI {interval.low:.3f}-{interval.high:.3f}, n={samples(metric)})"
    low_ok, high_ok = b.met_by(interval.low), b.met_by(interval.high)
    if low_ok and high_ok:
        return Judged("pass", f"{shown} {b}", interval)
    if not low_ok and not high_ok:
        return Judged("fail", f"{shown}, not {b}", interval)
    return Judged("inconclusive", f"{shown} straddles {b.value:g}: too few samples to tell", interval)


def regression_direction(policy: Policy, name: str, bounds: dict[str, Bound], metric: Metric | None) -> Direction | None:
    direction = known_direction(policy, name)
    if direction is None and name in bounds:
        direction = bounds[name].direction
    if direction is None and metric is not None:
        direction = direction_of_tool(getattr(metric, "higher_is_better", None))
    return direction
