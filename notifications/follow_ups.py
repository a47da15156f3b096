"""What the gate says after the fact: a promotion PR made stale by a newer one, a block comment a
later promotion resolves, the owner's Slack notice of a block. Pure; the shell sends them."""

from __future__ import annotations

from promotion_gate.checklists.decision import Decision
from promotion_gate.notifications.github_bodies import comment_marker
from promotion_gate.notifications.report import md_escape

SUPERSEDED_MARKER = "<!-- promotion-gate:superseded -->"


def build_superseded_comment(system: str, successor_number: int, successor_url: str, successor_sha7: str) -> str:
    return (f"{SUPERSEDED_MARKER}\n### promotion-gate: superseded\n\n"
            f"A newer promotion of `{md_escape(system)}` (at {successor_sha7}) is #{successor_number}: {successor_url}. "
            "This one is closed unmerged; its decision stays in the audit store.\n")


def build_resolved_block_comment(decision: Decision, pull_url: str | None) -> str:
    """The block comment, rewritten once a later evaluation of the same PR promoted the system."""
    request = decision.request
    where = f" Promotion PR: {pull_url}" if pull_url else ""
    return (f"{comment_marker(request.system)}\n### promotion-gate: `{request.system}` was promoted at {request.short_sha}\n\n"
            f"An earlier evaluation of this pull request blocked it; decision `{decision.decision_id}` promoted it.{where}\n")


def build_block_notice(decision: Decision, pull_url: str | None) -> str:
    """The owner's Slack notice of a block (Slack mrkdwn: the team's text escaped, then the link)."""
    request = decision.request
    owner = decision.checklist.owner if decision.checklist and decision.checklist.owner else "the owner"
    reasons = "; ".join(decision.reasons[:3]) + (" …" if len(decision.reasons) > 3 else "")
    text = (f"promotion-gate: {request.system} at {request.short_sha} is {decision.verdict.value} "
            f"(decision {decision.decision_id}), for {owner}: {reasons}.")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f"{text} <{pull_url}|the pull request>" if pull_url else text
