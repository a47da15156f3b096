"""The auditor's index page: every decision with client-side filters, a control-coverage matrix and
inline SVG plots. Pure: decisions in, one self-contained HTML string out (no network, no assets).

The numbers behind each plot are computed here; ``templates/index.html.j2`` only draws them.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable

from promotion_gate.checklists.decision import Decision, Verdict
from promotion_gate.checklists.results import Outcome
from promotion_gate.notifications.report import elapsed, environment

VERDICT_COLOURS = {"promoted": "#1a7f37", "blocked": "#cf222e", "expired": "#bc4c00", "withdrawn": "#6e7781", "error": "#8250df"}
WAIT_BUCKETS = ((60, "< 1 min"), (600, "1-10 min"), (3600, "10-60 min"), (4 * 3600, "1-4 h"),
                (24 * 3600, "4-24 h"), (72 * 3600, "1-3 d"), (None, "> 3 d"))
PLOT_W, PLOT_H = 480, 160


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    colour: str
    title: str


def row(d: Decision) -> dict:
    cl = d.checklist
    return {
        "id": d.decision_id, "system": d.request.system, "owner": (cl.owner if cl else None) or "unknown",
        "tier": cl.tier.value if cl else "unknown", "verdict": d.verdict.value,
        "date": d.decided_at.date().isoformat(), "decided_at": d.decided_at.strftime("%Y-%m-%d %H:%M"),
        "requester": d.request.requester, "commit": d.request.short_sha, "elapsed": elapsed(d),
        "blocking": [r.id for r in cl.failures] if cl else [], "reason": d.reasons[0] if d.reasons else "",
        "href": f"decisions/{d.decision_id}/report.html",
    }


def coverage(decisions: list[Decision]) -> dict:
    """Controls each system evidenced (items passed or waived) at its last promotion."""
    last: dict[str, Decision] = {}
    systems: set[str] = set()
    controls: set[str] = set()
    for d in decisions:
        systems.add(d.request.system)
        if d.checklist is not None:
            controls.update(c for r in d.checklist.results for c in r.controls)
        if d.verdict == Verdict.promoted and d.checklist is not None:
            if d.request.system not in last or d.decided_at >= last[d.request.system].decided_at:
                last[d.request.system] = d
    cells: dict[str, dict[str, str]] = defaultdict(dict)
    for system, d in last.items():
        for r in d.checklist.results:
            mark = "pass" if r.outcome == Outcome.passed else "waived" if r.outcome == Outcome.waived else None
            for c in r.controls:
                if mark and cells[system].get(c) != "pass":
                    cells[system][c] = mark
    ordered = sorted(controls, key=lambda c: (c.split(":")[0], c))
    return {
        "systems": sorted(systems), "controls": ordered, "cells": cells,
        "last": {s: {"id": d.decision_id, "date": d.decided_at.date().isoformat(), "href": f"decisions/{d.decision_id}/report.html"} for s, d in last.items()},
    }


def _period(first: date, last: date) -> tuple[str, Callable[[date], date]]:
    span = (last - first).days
    if span <= 62:
        return "day", lambda d: d
    if span <= 7 * 60:
        return "week", lambda d: d - timedelta(days=d.weekday())
    return "month", lambda d: d.replace(day=1)


def _next(unit: str, d: date) -> date:
    if unit == "day":
        return d + timedelta(days=1)
    if unit == "week":
        return d + timedelta(days=7)
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def plot_over_time(decisions: list[Decision]) -> dict:
    """Stacked bars: decisions per day (or week, or month) by verdict."""
    if not decisions:
        return {"bars": [], "unit": "day", "max": 0, "first": "", "last": ""}
    days = [d.decided_at.date() for d in decisions]
    unit, bucket = _period(min(days), max(days))
    counts: dict[date, Counter] = defaultdict(Counter)
    for d, day in zip(decisions, days):
        counts[bucket(day)][d.verdict.value] += 1
    keys, k = [], bucket(min(days))
    while k <= bucket(max(days)):
        keys.append(k)
        k = _next(unit, k)
    top = max(sum(c.values()) for c in counts.values())
    width = PLOT_W / len(keys)
    bars = []
    for i, key in enumerate(keys):
        y = PLOT_H
        for verdict, colour in VERDICT_COLOURS.items():
            n = counts[key][verdict]
            if n:
                h = PLOT_H * n / top
                y -= h
                bars.append(Bar(i * width + 1, y, max(width - 2, 1), h, colour, f"{key.isoformat()} ({unit}): {n} {verdict}"))
    return {"bars": bars, "unit": unit, "max": top, "first": keys[0].isoformat(), "last": keys[-1].isoformat()}


def plot_blocking_items(decisions: list[Decision], top: int = 10) -> dict:
    """Horizontal bars: the items that blocked most often."""
    counts = Counter(r.id for d in decisions if d.blocked and d.checklist for r in d.checklist.failures)
    items = counts.most_common(top)
    most = items[0][1] if items else 1
    bars = [Bar(130, i * 22, (PLOT_W - 170) * n / most, 16, "#cf222e", f"{item}: blocked {n} decisions") for i, (item, n) in enumerate(items)]
    return {"bars": [(bar, item, n) for bar, (item, n) in zip(bars, items)], "height": max(22 * len(items), 22)}


def plot_time_to_decision(decisions: list[Decision]) -> dict:
    """Histogram of the time from the request (the label) to the decision."""
    waits = [max((d.decided_at - d.request.requested_at).total_seconds(), 0) for d in decisions]
    counts = Counter()
    for w in waits:
        counts[next(label for limit, label in WAIT_BUCKETS if limit is None or w < limit)] += 1
    most = max(counts.values(), default=1)
    width = PLOT_W / len(WAIT_BUCKETS)
    bars = [(Bar(i * width + 4, PLOT_H - PLOT_H * counts[label] / most, width - 8, PLOT_H * counts[label] / most, "#0969da",
                 f"{label}: {counts[label]} decisions"), label, counts[label]) for i, (_, label) in enumerate(WAIT_BUCKETS)]
    median = statistics.median(waits) if waits else 0
    return {"bars": bars, "median": _duration(median)}


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def render_index(decisions: list[Decision], *, generated_at: datetime, store: str, verification: dict) -> str:
    """``verification``: {"ok": bool, "summary": str, "head": str, "entries": int}."""
    ordered = sorted(decisions, key=lambda d: d.decided_at, reverse=True)
    rows = [row(d) for d in ordered]
    options = {key: sorted({r[key] for r in rows}) for key in ("system", "owner", "tier", "verdict")}
    return environment("html").get_template("index.html.j2").render(
        rows=rows, options=options, coverage=coverage(decisions), over_time=plot_over_time(decisions),
        blocking=plot_blocking_items(decisions), waits=plot_time_to_decision(decisions),
        colours=VERDICT_COLOURS, generated_at=generated_at, store=store, verification=verification,
        plot_w=PLOT_W, plot_h=PLOT_H, counts=Counter(r["verdict"] for r in rows),
    )
