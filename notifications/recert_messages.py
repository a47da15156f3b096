"""What re-certification says: the GitHub issue per system out of policy, and the owner's Slack notice.

Pure builders over a :class:`Recertification`; the issue body starts with a hidden marker so the
gate finds and edits its own issue instead of opening a second one. The manifest's owner (and each
reason) is the team's text: ``md_text`` in the issue, Slack's ``escape`` in the notice, so a link,
an image, a mention or ``<!channel>`` in it is shown, never obeyed.
"""

from __future__ import annotations

from promotion_gate.checklists.findings import Recertification, RecertStatus
from promotion_gate.notifications.slack_messages import escape
from promotion_gate.notifications.user_text import md_text


def issue_marker(system: str) -> str:
    return f"<!-- promotion-gate:recertify:{system} -->"


def build_issue_title(rc: Recertification) -> str:
    return f"promotion-gate: {rc.system} is out of policy {rc.policy_version}"


def build_issue_body(rc: Recertification, decision_id: str, owner: str | None) -> str:
    lines = [issue_marker(rc.system), f"### `{rc.system}` in production is **{rc.status.value}**", "",
             f"Re-certified on {rc.on.isoformat()} under policy {rc.policy_version} (`{rc.policy_digest[:12]}`); "
             f"approved as `{rc.approved_decision}` under policy {rc.approved_policy_version}.", "",
             "| finding | reason | blocks the next promotion |", "| --- | --- | --- |"]
    lines += [f"| {f.id} | {md_text(f.reason)} | {'yes' if f.blocking else 'no'} |" for f in rc.findings]
    lines += ["", f"Owner: {md_text(owner) if owner else 'unknown'}. Decision `{decision_id}` is in the audit store.",
              "Nothing in production was changed. Promote a candidate that resolves each finding; "
              "this issue closes itself when a re-certification finds none."]
    return "\n".join(lines)


def build_resolved_body(rc: Recertification, decision_id: str) -> str:
    return "\n".join([issue_marker(rc.system), f"### `{rc.system}` is back within policy",
                      "", f"Re-certified on {rc.on.isoformat()} under policy {rc.policy_version}: "
                      f"{rc.status.value} (decision `{decision_id}`)."])


def build_owner_notice(rc: Recertification, owner: str | None) -> str:
    if rc.status == RecertStatus.current:
        return f"promotion-gate: {rc.system} re-certified under policy {rc.policy_version}: current."
    head = f"promotion-gate: {rc.system} (owner {_slack(owner) if owner else 'unknown'}) is {rc.status.value} under policy {rc.policy_version}"
    return "\n".join([head + ":"] + [f"• {f.id}: {_slack(f.reason)}" + (" (blocks the next promotion)" if f.blocking else "") for f in rc.findings])


def _slack(text: str) -> str:
    """Slack's escaping, on one line (a newline in the owner would start a line of its own)."""
    return escape(text.replace("\r\n", "\n").replace("\n", " "))
