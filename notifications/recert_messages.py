"""What re-certification says: the GitHub issue per system out of policy, and the owner's Slack notice.

Pure builders over a :class:`Recertification`; the issue body starts with a hidden marker so the
gate finds and edits its own issue instead of opening a second one.
"""

from __future__ import annotations

from promotion_gate.checklists.findings import Recertification, RecertStatus


def issue_marker(system: str) -> str:
    return f"<!-- promotion-gate:recertify:{system} -->"


def build_issue_title(rc: Recertification) -> str:
    return f"promotion-gate: {rc.system} is out of policy {rc.policy_version}"


def build_issue_body(rc: Recertification, decision_id: str, owner: str | None) -> str:
    lines = [issue_marker(rc.system), f"### `{rc.system}` in production is **{rc.status.value}**", "",
             f"Re-certified on {rc.on.isoformat()} under policy {rc.policy_version} (`{rc.policy_digest[:12]}`); "
             f"approved as `{rc.approved_decision}` under policy {rc.approved_policy_version}.", "",
             "| finding | reason | blocks the next promotion |", "| --- | --- | --- |"]
    lines += [f"| {f.id} | {f.reason} | {'yes' if f.blocking else 'no'} |" for f in rc.findings]
    lines += ["", f"Owner: {owner or 'unknown'}. Decision `{decision_id}` is in the audit store.",
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
    head = f"promotion-gate: {rc.system} (owner {owner or 'unknown'}) is {rc.status.value} under policy {rc.policy_version}"
    return "\n".join([head + ":"] + [f"• {f.id}: {f.reason}" + (" (blocks the next promotion)" if f.blocking else "") for f in rc.findings])
