"""Render one decision as Markdown, standalone HTML and JSON. Templates format; they never decide.

The Markdown report is also the PR body, the PR comment and the Prefect artifact; the HTML report
has no external assets and prints on A4; ``decision.json`` is the machine record (its JSON Schema:
:func:`decision_json_schema`). Every text a team, a reviewer or a tool wrote is shown as text:
Markdown escapes it with a ``finalize`` hook, HTML autoescapes it.

Reports never carry prompt or response samples: parsed evidence holds metrics, counts and
provenance only, whatever the manifest's logging mode allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from promotion_gate.checklists.candidate import ProductionLock
from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.decision import DECISION_SCHEMA_VERSION, Decision
from promotion_gate.checklists.controls import control_label, sorted_controls
from promotion_gate.checklists.production_change import MetricDelta, production_change
from promotion_gate.checklists.cost import build_cost_summary
from promotion_gate.checklists.results import Outcome
from promotion_gate.notifications.cost_text import money, render_cost_line
from promotion_gate.notifications.user_text import md_text, show_control

REGRESSION_ITEM = "PG-EVAL-005"


@dataclass(frozen=True)
class LedgerPlace:
    """Where a stored report's decision sits in the ledger: its entry, the head it extends, its key."""

    seq: int
    prev: str
    key_id: str


def md_escape(value) -> str:
    """Show any text as text in Markdown (notifications.user_text.md_text): no links, images, HTML,
    mentions, issue references, broken table cells or control characters."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return str(value)
    return md_text(value)


def _html_text(value):
    """HTML autoescapes; control characters (ANSI, bidi overrides) are shown as their escapes first."""
    return show_control(value) if isinstance(value, str) and not isinstance(value, Markup) else value


@lru_cache(maxsize=2)
def environment(kind: str) -> Environment:
    if kind == "md":
        env = Environment(loader=PackageLoader("promotion_gate.notifications", "templates"), autoescape=False,
                          finalize=md_escape, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    else:
        env = Environment(loader=PackageLoader("promotion_gate.notifications", "templates"), autoescape=True, finalize=_html_text,
                          undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["raw"] = Markup
    env.filters["short"] = lambda s, n=12: (s or "")[:n]
    env.filters["metrics"] = _metrics
    env.filters["facts"] = _facts
    env.filters["when"] = _when
    env.filters["cost_line"] = render_cost_line
    env.filters["controls"] = lambda controls, titles=None: [control_label(c, titles) for c in sorted_controls(controls)]
    env.globals["Outcome"] = Outcome
    env.filters["money"] = money
    return env


def _metrics(record) -> str:
    if record.parsed is None:
        return f"unusable: {record.error}"
    shown = []
    for name, m in sorted(record.parsed.metrics.items())[:6]:
        n = f" (n={m.n})" if m.n is not None else ""
        shown.append(f"{name}={m.value:.4g}{n}")
    return ", ".join(shown)


def _when(t: datetime) -> str:
    if t.utcoffset() == timedelta(0):
        return t.strftime("%Y-%m-%d %H:%M:%S UTC")
    return t.isoformat()


def _facts(facts: dict) -> str:
    return "; ".join(f"{k}={v}" for k, v in facts.items())


CHANGE_TEXT = {"new": "new (not in production)", "unchanged": "unchanged bytes", "changed": "changed",
               "dropped": "dropped (in production, not in the candidate)"}


def production_changes(cl: Checklist, baseline: ProductionLock | None) -> dict | None:
    """The change against production (checklists.production_change), as the report tables show it."""
    change = production_change(cl, baseline)
    if change is None:
        return None
    return {
        "commit": change.commit, "decision_id": change.decision_id, "promoted_at": change.promoted_at,
        "model": change.model_before, "candidate_model": change.model_after or "unknown",
        "manifest": "changed" if change.manifest_changed else "unchanged", "policy": change.policy,
        "files": [{"path": f.path, "change": CHANGE_TEXT[f.kind], "deltas": [_delta(d) for d in f.deltas]} for f in change.files],
    }


def _delta(d: MetricDelta) -> str:
    if d.after is None:
        return f"{d.name} {d.before:.4g} -> not reported"
    return f"{d.name} {d.before:.4g} -> {d.after:.4g} ({d.after - d.before:+.4g})"


def _context(decision: Decision, ledger_head: str | None, place: LedgerPlace | None, baseline: ProductionLock | None) -> dict:
    cl = decision.checklist
    regression = next((r for r in cl.results if r.id == REGRESSION_ITEM), None) if cl else None
    return {
        "d": decision,
        "cl": cl,
        "m": cl.manifest if cl else None,
        "failures": cl.failures if cl else [],
        "waived": [r for r in cl.results if r.waiver or r.waiver_request] if cl else [],  # requests, granted or not
        "ledger_head": ledger_head,
        "place": place,
        "changes": production_changes(cl, baseline) if cl else None,
        "regression": regression,
        "cost": build_cost_summary(cl.results) if cl else None,
        "elapsed": elapsed(decision),
    }


def elapsed(decision: Decision) -> str:
    """Time from the request (the label) to the decision, for people: "2 h 05 min"."""
    seconds = int((decision.decided_at - decision.request.requested_at).total_seconds())
    if seconds < 0:
        return "-"
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours = seconds // 60 % 60, seconds // 3600
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def render_markdown(decision: Decision, ledger_head: str | None = None, *, place: LedgerPlace | None = None,
                    baseline: ProductionLock | None = None) -> str:
    """The report as Markdown. ``ledger_head``: the ledger's head to anchor (PR body, comment, artifact)."""
    return environment("md").get_template("report.md.j2").render(**_context(decision, ledger_head, place, baseline))


def render_html(decision: Decision, ledger_head: str | None = None, *, place: LedgerPlace | None = None,
                baseline: ProductionLock | None = None) -> str:
    return environment("html").get_template("report.html.j2").render(**_context(decision, ledger_head, place, baseline))


def render_json(decision: Decision) -> str:
    return json.dumps(decision.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def decision_json_schema() -> dict:
    schema = Decision.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://promotion-gate.dev/schemas/decision-v{DECISION_SCHEMA_VERSION}.json"
    schema["title"] = "promotion-gate decision (decisions/<id>/decision.json)"
    return schema


def render_json_schema() -> str:
    return json.dumps(decision_json_schema(), indent=2, sort_keys=True) + "\n"
