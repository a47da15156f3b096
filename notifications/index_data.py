"""The data behind the auditor's index, built one decision at a time (pure: no I/O).

:class:`IndexData` takes decisions in any order and keeps only what the page needs: one compact
row per decision, the counts behind the plots and each system's last promotion (for the coverage
matrix). It never holds the decisions themselves, so a history of 100,000 decisions costs a few
tens of megabytes. The shell writes what it renders:

- ``data/columns.js``: the filter columns (system, owner, tier, outcome as small integers; the
  day as days since 1970), loaded with the page: filtering is a loop over integer arrays;
- ``data/page-NNNN.js``: the table rows, :data:`PAGE_ROWS` per file, newest first, loaded when a
  view needs them (``<script src>``: ``fetch`` of ``file://`` is blocked in Chromium, a script is not);
- ``index.csv`` and ``index.json``: the same table for a spreadsheet or ``jq``.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.decision import Decision, Verdict
from promotion_gate.checklists.policy import Tier
from promotion_gate.checklists.results import Outcome
from promotion_gate.checklists.signoff import Authentication, Channel
from promotion_gate.checklists.store_inventory import StoreInventoryData
from promotion_gate.notifications.user_text import spreadsheet_cell

PAGE_ROWS = 1000
FILTERS = ("system", "owner", "tier", "verdict")
COLUMNS = ("decided_at", "system", "owner", "tier", "verdict", "requester", "commit", "elapsed", "blocking", "reason", "id", "href",
           "gate_version")
"""``gate_version`` is the release that recorded the decision (signed with it); "" for a decision
recorded before releases were stamped (the page shows "not recorded")."""
EPOCH = date(1970, 1, 1)


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class _RequestView(_View):
    repository: str
    system: str
    commit: str
    requester: str
    requested_at: datetime

    @property
    def short_sha(self) -> str:
        return self.commit[:7]


class _ResultView(_View):
    id: str
    outcome: Outcome
    controls: list[str] = Field(default_factory=list)


class _ChecklistView(_View):
    tier: Tier
    owner: str | None = None
    results: list[_ResultView]
    control_titles: dict[str, str] = Field(default_factory=dict)

    @property
    def failures(self) -> list[_ResultView]:
        return [r for r in self.results if r.outcome.blocks]


class _SignoffView(_View):
    channel: Channel
    authentication: Authentication = "asserted"


class DecisionView(_View):
    """What the index shows of a decision.json, and only that (the rest of the file is skipped, not checked).

    For bytes whose digest ``audit verify`` just checked against the signed ledger only: the store
    wrote them from a validated :class:`Decision`, so reading the shown fields is enough. The
    decisions the inventory keeps whole (a promotion that promoted, a re-certification) are parsed
    as a :class:`Decision` all the same; so is any file read without that check.
    """

    decision_id: str
    verdict: Verdict
    reasons: list[str]
    request: _RequestView
    checklist: _ChecklistView | None = None
    signoffs: list[_SignoffView] = Field(default_factory=list)
    decided_at: datetime
    kind: Literal["promotion", "recertification"] = "promotion"
    gate_version: str | None = None

    @property
    def blocked(self) -> bool:
        return self.verdict != Verdict.promoted

    @property
    def kept_whole(self) -> bool:
        """The inventory holds this decision itself (StoreInventoryData.add): parse it as a Decision."""
        return self.kind != "promotion" or self.verdict == Verdict.promoted


def elapsed_text(d: Decision) -> str:
    from promotion_gate.notifications.report import elapsed

    return elapsed(d)


def row_of(d: Decision) -> tuple:
    """One decision as a row, in COLUMNS order (blocking: the failing item ids, joined).

    Values that repeat across rows (system, owner, tier, outcome, requester, durations, reasons) are
    interned: 100,000 rows share them instead of holding 100,000 copies.
    """
    cl = d.checklist
    return tuple(map(sys.intern, (
        d.decided_at.strftime("%Y-%m-%d %H:%M"), d.request.system, (cl.owner if cl else None) or "unknown",
        cl.tier.value if cl else "unknown", d.verdict.value, d.request.requester, d.request.short_sha, elapsed_text(d),
        ", ".join(r.id for r in cl.failures) if cl else "", d.reasons[0] if d.reasons else "",
    ))) + (d.decision_id, f"decisions/{d.decision_id}/report.html", sys.intern(d.gate_version or ""))


@dataclass
class LastPromotion:
    decided_at: datetime
    decision_id: str
    cells: dict[str, str]


@dataclass
class IndexData:
    rows: list[tuple] = field(default_factory=list)
    keys: list[tuple] = field(default_factory=list)  # (decided_at, position): the sort order, newest first
    per_day: dict[date, Counter] = field(default_factory=lambda: defaultdict(Counter))
    blocking: Counter = field(default_factory=Counter)
    waits: list[float] = field(default_factory=list)
    systems: set[str] = field(default_factory=set)
    controls: dict[str, str] = field(default_factory=dict)  # control id -> title ("" when the decision named none)
    last: dict[str, LastPromotion] = field(default_factory=dict)
    signoffs: Counter = field(default_factory=Counter)  # (channel, authentication) -> sign-offs counted (issue 11)
    inventory: StoreInventoryData = field(default_factory=StoreInventoryData)  # inventory.html (one decision per system)

    def add(self, d: Decision, raw: bytes | None = None) -> None:
        """``raw``: the decision.json ``d`` was parsed from, for the inventory to keep (StoreInventoryData.add)."""
        self.inventory.add(d, raw)
        self.keys.append((d.decided_at, len(self.rows)))
        self.rows.append(row_of(d))
        self.per_day[d.decided_at.date()][d.verdict.value] += 1
        self.waits.append(max((d.decided_at - d.request.requested_at).total_seconds(), 0))
        self.systems.add(d.request.system)
        self.signoffs.update((s.channel, s.authentication) for s in d.signoffs)
        cl = d.checklist
        if cl is None:
            return
        titles = getattr(cl, "control_titles", None) or {}
        for r in cl.results:
            for c in r.controls:
                if titles.get(c) or c not in self.controls:
                    self.controls[c] = titles.get(c, "")
        if d.blocked:
            self.blocking.update(r.id for r in cl.failures)
        if d.verdict == Verdict.promoted:
            known = self.last.get(d.request.system)
            if known is None or d.decided_at >= known.decided_at:
                self.last[d.request.system] = LastPromotion(d.decided_at, d.decision_id, _cells(cl))

    def merge(self, later: "IndexData") -> None:
        """Take in the data of the decisions that come after ours in the ledger (a chunk built apart, by a
        worker): the result is exactly what adding each of them here, in order, would have built."""
        offset = len(self.rows)
        self.inventory.merge(later.inventory)
        self.keys += [(at, offset + i) for at, i in later.keys]
        self.rows += [tuple(map(sys.intern, r[:-2])) + r[-2:] for r in later.rows]  # shared again across chunks
        for day, counts in later.per_day.items():
            self.per_day[day].update(counts)
        self.blocking.update(later.blocking)
        self.waits += later.waits
        self.systems |= later.systems
        for c, title in later.controls.items():  # the same rule as add(): a title wins, a later title over an earlier
            if title or c not in self.controls:
                self.controls[c] = title
        for system, last in later.last.items():
            known = self.last.get(system)
            if known is None or last.decided_at >= known.decided_at:
                self.last[system] = last
        self.signoffs.update(later.signoffs)

    def ordered(self) -> list[tuple]:
        """The rows, newest first (a stable order: ties keep ledger order)."""
        return [self.rows[i] for _, i in sorted(self.keys, key=lambda k: (-k[0].timestamp(), k[1]))]


def _cells(cl) -> dict[str, str]:
    cells: dict[str, str] = {}
    for r in cl.results:
        mark = "pass" if r.outcome == Outcome.passed else "waived" if r.outcome == Outcome.waived else None
        for c in r.controls:
            if mark and cells.get(c) != "pass":
                cells[c] = mark
    return cells


def _js(value) -> str:
    """JSON safe to load as a script (no '</script>' or HTML comment can end it early)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")


def render_columns(rows: list[tuple]) -> tuple[str, dict[str, list[str]]]:
    """The filter columns as a script, and the sorted values of each filter (the page's options)."""
    values = {key: sorted({r[COLUMNS.index(key)] for r in rows}) for key in FILTERS}
    codes = {key: {v: i for i, v in enumerate(vals)} for key, vals in values.items()}
    cols = {key: [codes[key][r[COLUMNS.index(key)]] for r in rows] for key in FILTERS}
    cols["day"] = [(date.fromisoformat(r[0][:10]) - EPOCH).days for r in rows]
    body = {"values": values, "rows": len(rows), "pageRows": PAGE_ROWS, **cols}
    return f"PG.columns({_js(body)});\n", values


def render_page(number: int, rows: list[tuple]) -> str:
    return f"PG.page({number},{_js([list(r) for r in rows])});\n"


_ROW_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps(..., ensure_ascii=False) builds one per call: 100,000 rows


def render_csv(rows: list[tuple]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([spreadsheet_cell(v) for v in r] for r in rows)  # a cell a spreadsheet would run as a formula (=, +, -, @) is shown as text
    return out.getvalue()


def render_json_rows(rows: list[tuple]):
    """The table as a JSON array of objects, in pieces (written as they come: no second copy in memory)."""
    yield "["
    encode = _ROW_JSON.encode
    for i, r in enumerate(rows):
        yield ("\n" if i == 0 else ",\n") + encode(dict(zip(COLUMNS, r, strict=True)))
    yield "\n]\n"


def page_count(rows: int) -> int:
    return max(1, -(-rows // PAGE_ROWS))
