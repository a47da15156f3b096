"""The checklist and the decision as plain text for a terminal (the `check` and `demo` commands).

Text from a manifest, an evidence file or a reviewer reaches the terminal with its control
characters shown, not obeyed (notifications.user_text.show_control): an ANSI sequence cannot
recolour, clear or retitle the terminal, a carriage return cannot overwrite a line, a bidi
override cannot reorder one."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING

from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.results import Outcome
from promotion_gate.notifications.user_text import show_control

if TYPE_CHECKING:  # `check` renders no decision: it does not load the decision's models
    from promotion_gate.checklists.decision import Decision


def _wrap(text: str, width: int, indent: str, rest: str | None = None) -> str:
    return textwrap.fill(text, width=width, initial_indent=indent, subsequent_indent=indent if rest is None else rest)


def render_checklist_table(cl: Checklist, width: int = 100) -> str:
    lines = [
        f"{cl.system} at {'the working tree' if set(cl.commit) == {'0'} else cl.commit[:12]}: tier {cl.tier.value} ({'; '.join(cl.tier_reasons)})",
        f"policy {cl.policy_version} ({cl.policy_digest[:12]}), digest {cl.digest[:12]}",
        "",
        f"{'ID':<17} {'OUTCOME':<13} ITEM",
    ]
    for r in cl.results:
        lines.append(f"{r.id:<17} {r.outcome.symbol:<13} {r.title}")
        if r.facts.get("problems"):
            lines += [" " * 31 + problem for problem in r.facts["problems"]]
        elif r.outcome != Outcome.passed:
            lines.append(_wrap(r.reason, width, " " * 31))
        if r.outcome.blocks and r.remedy:
            lines.append(_wrap(f"fix: {r.remedy}", width, " " * 31))
        if r.waiver:
            lines.append(_wrap(f"waived by {r.waiver.approver} until {r.waiver.expires}: {r.waiver.reason}", width, " " * 31))
    counts = ", ".join(f"{n} {k}" for k, n in cl.counts().items())
    verdict = "BLOCKED" if cl.blocked else "would pass the automated items" + (
        f"; for review: {', '.join(f'{r.id} {r.outcome.value}' for r in cl.needs_review)}" if cl.needs_review else "")
    if cl.waiver_requests:
        verdict += f"; waiver requested (needs a grant): {', '.join(w.item for w in cl.waiver_requests)}"
    needs = ", ".join(f"{n} {role}" for role, n in cl.signoff.quorum.items())
    lines += ["", f"{verdict} ({counts})" + (f"; then needs sign-off: {needs}" if needs and not cl.blocked else "")]
    return show_control("\n".join(lines))


def render_checklist_json(cl: Checklist) -> str:
    body = cl.model_dump(mode="json", exclude={"manifest"})
    body["blocked"] = cl.blocked
    return json.dumps(body, indent=2, sort_keys=True)


def render_decision_summary(decision: Decision, report_dir: str | None = None) -> str:
    lines = [f"{decision.request.system}: {decision.verdict.value.upper()} ({decision.decision_id})"]
    cl = decision.checklist
    failures = cl.failures if cl else []
    if failures:
        for r in failures:
            lines.append(_wrap(f"{r.id} {r.reason}", 100, "  - ", "    "))
            lines.append(_wrap(f"fix: {r.remedy}", 100, "      "))
    else:
        for reason in decision.reasons:
            lines.append(_wrap(reason, 100, "  - ", "    "))
    for s in decision.signoffs:
        lines.append(f"  signed: {s.identity} ({s.role}) {s.action.value}")
    for c in decision.refused:
        lines.append(f"  refused: {c.reviewer}: {c.reason}")
    if decision.promotion:
        lines.append(f"  promotion branch: {decision.promotion.branch}" + (f" ({decision.promotion.pull_request_url})" if decision.promotion.pull_request_url else ""))
    if report_dir:
        lines.append(f"  report: {report_dir}/report.md (also report.html, decision.json)")
    return show_control("\n".join(lines))


def _policy_view(policy, origin: str) -> dict:
    """What a team may declare under a policy, as plain data (one source for both renderers)."""
    providers = {
        name: {
            "data_classes": list(p.data_classes),
            "models": {model: list(versions) for model, versions in sorted(p.models.items())},
            "deprecated": {v: d.isoformat() for v, d in sorted(getattr(p, "deprecated", {}).items())},
        }
        for name, p in sorted(policy.providers.items())
    }
    return {
        "policy": {"version": policy.version, "source": origin},
        "data_classes": list(policy.data_classes),
        "sensitive_data_classes": list(policy.sensitive_data_classes),
        "providers": providers,
        "tier_rules": [{"tier": r.tier.value, "reason": r.reason} for r in policy.tier_rules],
    }


def render_policy_json(policy, origin: str) -> str:
    return json.dumps(_policy_view(policy, origin), indent=2, sort_keys=True)


def render_policy_show(policy, origin: str) -> str:
    view = _policy_view(policy, origin)
    lines = [f"policy {policy.version}: {origin}", "",
             f"data classes: {', '.join(view['data_classes'])} (sensitive: {', '.join(view['sensitive_data_classes'])})", "",
             "approved providers, models and pinned versions (declare them exactly as written):"]
    for name, p in view["providers"].items():
        lines.append(f"  {name}  (may receive: {', '.join(p['data_classes'])})")
        for model, versions in p["models"].items():
            marks = [f"{v} (deprecated from {p['deprecated'][v]})" if v in p["deprecated"] else v for v in versions]
            lines.append(f"    {model}: {', '.join(marks)}")
    lines += ["", "the tier is computed, never chosen (highest matching rule wins; none: low):"]
    lines += [f"  {r['tier']:<7} {r['reason']}" for r in view["tier_rules"]]
    return "\n".join(lines)
