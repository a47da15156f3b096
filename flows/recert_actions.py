"""The side effects of re-certification: one GitHub issue per system out of policy, a Slack notice
to the owner. Each returns a line for the decision's timeline, whatever happened: a failure
(GitHub or Slack down, no channel declared) is an outcome to record, never an exception.
"""

from __future__ import annotations

from promotion_gate.checklists.findings import Recertification, RecertStatus
from promotion_gate.checklists.recertify import ProductionSystem
from promotion_gate.config.settings import Settings
from promotion_gate.notifications.recert_messages import (
    build_issue_body,
    build_issue_title,
    build_owner_notice,
    build_resolved_body,
    issue_marker,
)


def _is_github(repository: str) -> bool:
    return repository.count("/") == 1 and not repository.startswith(("/", "."))


def sync_issue(settings: Settings, system: ProductionSystem, rc: Recertification, decision_id: str) -> str:
    """Open, edit in place, reopen or close the gate's issue for ``system``; say what was done."""
    if not _is_github(system.repository):
        return "issue: none (a local repository has no issue tracker)"
    from promotion_gate.github_api.client import GitHubError, as_github_error, open_github, retrying_from

    call = retrying_from(settings)
    try:
        gh = open_github(settings, system.repository)
        return call(f"sync the re-certification issue of {system.system}", _sync, gh, system, rc, decision_id)
    except GitHubError as exc:
        return f"issue: not synced: {exc}"
    except Exception as exc:  # any failure is recorded; the next day's run tries again
        return f"issue: not synced: {as_github_error('sync issue', exc)}"


def _find_issue(repo, author: str, marker: str):
    for issue in repo.get_issues(state="all", creator=author):
        if issue.pull_request is None and (issue.body or "").startswith(marker) and issue.user.login == author:
            return issue
    return None


def _sync(gh, system: ProductionSystem, rc: Recertification, decision_id: str) -> str:
    repo = gh.get_repo(system.repository)
    author = gh.get_user().login
    issue = _find_issue(repo, author, issue_marker(system.system))
    owner = system.manifest.owner if system.manifest else None
    if rc.status != RecertStatus.out_of_policy:
        if issue is None or issue.state == "closed":
            return "issue: none needed (not out of policy)"
        issue.edit(body=build_resolved_body(rc, decision_id), state="closed")
        return f"issue: #{issue.number} closed (resolved: {rc.status.value})"
    title, body = build_issue_title(rc), build_issue_body(rc, decision_id, owner)
    if issue is None:
        created = repo.create_issue(title=title, body=body)
        return f"issue: #{created.number} opened"
    reopened = issue.state == "closed"
    if reopened or issue.body != body or issue.title != title:
        issue.edit(title=title, body=body, state="open")
        return f"issue: #{issue.number} {'reopened' if reopened else 'updated in place'}"
    return f"issue: #{issue.number} unchanged"


def notify_owner(settings: Settings, system: ProductionSystem, rc: Recertification, resolved: bool) -> str:
    """A Slack notice to the owner's channel (the manifest's escalation.slack) when action is needed."""
    if rc.status == RecertStatus.current and not resolved:
        return "slack: no notice needed (current)"
    m = system.manifest
    channel = m.escalation.slack if m and m.escalation and m.escalation.slack else None
    if channel is None:
        return "slack: no notice sent (the manifest declares no escalation.slack channel)"
    from promotion_gate.config.secrets import read_secret
    from promotion_gate.slack_api.client import SlackUnavailable, build_slack_client, slack_call

    try:
        if read_secret(settings, "slack_bot_token") is None:
            return "slack: no notice sent (no Slack bot token configured)"
        client = build_slack_client(settings)
        text = build_owner_notice(rc, m.owner)
        slack_call(f"chat.postMessage {channel}", client.chat_postMessage, channel=channel, text=text)
    except SlackUnavailable as exc:
        return f"slack: notice not sent: {exc}"
    except Exception as exc:
        return f"slack: notice not sent: {type(exc).__name__}"
    return f"slack: notice sent to {channel}"
