"""After a promotion PR opens: close the older ones of the same system, resolve the block comment.

- An open ``promote/<name>/<other sha7>`` PR of this repository (not a fork's PR of the same name)
  into the same base is superseded: it gets one comment naming its successor (by marker, so a
  retry does not repeat it) and is closed unmerged.
- The candidate PR's block comment about this system, if an earlier evaluation left one, is edited
  to say it was promoted (never created: a PR that was never blocked gets no comment).
"""

from __future__ import annotations

from promotion_gate.checklists.decision import Decision
from promotion_gate.github_api.client import Retrying
from promotion_gate.github_api.writes import fetch_issue, post_comment
from promotion_gate.notifications.follow_ups import SUPERSEDED_MARKER, build_resolved_block_comment, build_superseded_comment
from promotion_gate.notifications.github_bodies import comment_marker


def close_superseded(call: Retrying, repo, system: str, base: str, successor, successor_sha7: str) -> list[int]:
    prefix = f"promote/{system}/"

    def stale() -> list:
        return [p for p in repo.get_pulls(state="open", base=base)
                if p.number != successor.number and p.head.ref.startswith(prefix)
                and p.head.repo is not None and p.head.repo.full_name == repo.full_name]

    closed = []
    for pull in call(f"find superseded promotions of {system}", stale):
        body = build_superseded_comment(system, successor.number, successor.html_url, successor_sha7)
        post_comment(call, fetch_issue(call, repo, pull.number), SUPERSEDED_MARKER, body)
        call(f"close #{pull.number}", pull.edit, state="closed")
        closed.append(pull.number)
    return closed


def resolve_block_comment(call: Retrying, repo, decision: Decision, pull_url: str | None) -> bool:
    """Edit the earlier block comment on the candidate PR, if there is one; True when edited."""
    number = decision.request.pull_request
    if not number:
        return False
    issue = fetch_issue(call, repo, number)
    if issue.comments == 0:
        return False
    marker, body = comment_marker(decision.request.system), build_resolved_block_comment(decision, pull_url)

    def step() -> bool:
        found = next((c for c in issue.get_comments() if (c.body or "").startswith(marker)), None)
        if found is None or found.body == body:
            return False
        found.edit(body)
        return True

    return call(f"resolve the block comment on #{number}", step)
