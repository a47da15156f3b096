"""The auditor's index page: every decision with client-side filters, a control-coverage matrix and
inline SVG plots. Pure: the accumulated :class:`IndexData` in, the page's HTML out. The page is small;
its rows and filter columns are scripts next to it (``data/``, see ``index_data``), so it opens at once
on 100,000 decisions and works from ``file://`` with no network.

The numbers behind each plot are computed here; ``templates/index.html.j2`` only draws them.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable

from promotion_gate.checklists.controls import control_sort_key
from promotion_gate.checklists.decision import Decision
from promotion_gate.notifications.index_data import PAGE_ROWS, IndexData
from promotion_gate.notifications.report import environment

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


def coverage_of(data: IndexData) -> dict:
    """Controls each system evidenced (items passed or waived) at its last promotion; controls sorted naturally."""
    return {
        "systems": sorted(data.systems), "controls": sorted(data.controls, key=control_sort_key),
        "titles": data.controls, "cells": {s: last.cells for s, last in data.last.items()},
        "last": {s: {"id": last.decision_id, "date": last.decided_at.date().isoformat(),
                     "href": f"decisions/{last.decision_id}/report.html"} for s, last in data.last.items()},
    }


def _data(decisions: list[Decision]) -> IndexData:
    data = IndexData()
    for d in decisions:
        data.add(d)
    return data


def coverage(decisions: list[Decision]) -> dict:
    return coverage_of(_data(decisions))


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


def plot_over_time(data: IndexData) -> dict:
    """Stacked bars: decisions per day (or week, or month) by verdict."""
    if not data.per_day:
        return {"bars": [], "unit": "day", "max": 0, "first": "", "last": ""}
    unit, bucket = _period(min(data.per_day), max(data.per_day))
    counts: dict[date, Counter] = defaultdict(Counter)
    for day, by_verdict in data.per_day.items():
        counts[bucket(day)].update(by_verdict)
    keys, k = [], bucket(min(data.per_day))
    while k <= bucket(max(data.per_day)):
        keys.append(k)
        k = _next(unit, k)
    top = max(sum(c.values()) for c in counts.values())
    width = PLOT_W / len(keys)
    bars = []
    for i, key in enumerate(keys):
        y: float = PLOT_H
        for verdict, colour in VERDICT_COLOURS.items():
            n = counts[key][verdict]
            if n:
                h = PLOT_H * n / top
                y -= h
                bars.append(Bar(i * width + 1, y, max(width - 2, 1), h, colour, f"{key.isoformat()} ({unit}): {n} {verdict}"))
    return {"bars": bars, "unit": unit, "max": top, "first": keys[0].isoformat(), "last": keys[-1].isoformat()}


def plot_blocking_items(decisions: list[Decision] | IndexData, top: int = 10) -> dict:
    """Horizontal bars: the items that blocked most often."""
    data = decisions if isinstance(decisions, IndexData) else _data(decisions)
    items = sorted(data.blocking.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    most = items[0][1] if items else 1
    bars = [Bar(130, i * 22, (PLOT_W - 170) * n / most, 16, "#cf222e", f"{item}: blocked {n} decisions") for i, (item, n) in enumerate(items)]
    return {"bars": [(bar, item, n) for bar, (item, n) in zip(bars, items, strict=True)], "height": max(22 * len(items), 22)}


def plot_time_to_decision(decisions: list[Decision] | IndexData) -> dict:
    """Histogram of the time from the request (the label) to the decision."""
    waits = (decisions if isinstance(decisions, IndexData) else _data(decisions)).waits
    counts: Counter[str] = Counter()
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


def render_index(data: IndexData, *, options: dict[str, list[str]], generated_at: datetime, store: str,
                 verification: dict) -> str:
    """The page itself: small; its rows and filter columns are the scripts in ``data/`` (index_data)."""
    counts: Counter = Counter()
    for by_verdict in data.per_day.values():
        counts.update(by_verdict)
    return environment("html").get_template("index.html.j2").render(
        total=len(data.rows), options=options, coverage=coverage_of(data), over_time=plot_over_time(data),
        blocking=plot_blocking_items(data), waits=plot_time_to_decision(data), page_rows=PAGE_ROWS,
        colours=VERDICT_COLOURS, generated_at=generated_at, store=store, verification=verification,
        plot_w=PLOT_W, plot_h=PLOT_H, counts={v: counts[v] for v in VERDICT_COLOURS if counts[v]},
    )
