"""The owner's Slack notice of a block: once per decision.

Sent to the manifest's ``escalation.slack`` (a channel or user) when a decision blocks (blocked,
expired, error; not withdrawn: the team withdrew it), with the bot token of the Slack sign-off.
Once: a marker ``notices/<decision id>.slack`` in the audit store, written after Slack accepted the
message, makes a re-run, a resumed run or a repeat of the same decision send nothing; a new
decision (new evidence, a re-run attempt) is a new notice. No token or no channel: no notice, said
in the log. Slack failing never changes the decision.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from promotion_gate.checklists.decision import Decision, Verdict
from promotion_gate.config.settings import Settings
from promotion_gate.notifications.follow_ups import build_block_notice

log = logging.getLogger("promotion_gate.slack")
NOTICES = "notices"


def pull_url(settings: Settings, decision: Decision) -> str | None:
    request = decision.request
    if not request.pull_request or request.repository.startswith(("/", ".", "file:")):
        return None
    api = settings.github_api_url
    web = "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
    return f"{web}/{request.repository}/pull/{request.pull_request}"


def notify_block(settings: Settings, decision: Decision, store: str | Path) -> str:
    """Send the notice if it is due and not sent yet; say what happened, in one line."""
    if decision.verdict in (Verdict.promoted, Verdict.withdrawn):
        return "slack: no block notice (not blocked)"
    manifest = decision.checklist.manifest if decision.checklist else None
    channel = manifest.escalation.slack if manifest and manifest.escalation and manifest.escalation.slack else None
    if channel is None:
        return "slack: no block notice (the manifest declares no escalation.slack)"
    marker = Path(store) / NOTICES / f"{decision.decision_id}.slack"
    if marker.exists():
        return f"slack: block notice already sent to {channel}"
    from promotion_gate.config.secrets import read_secret
    from promotion_gate.slack_api.client import SlackUnavailable, build_slack_client, slack_call

    if read_secret(settings, "slack_bot_token") is None:
        return "slack: no block notice (no Slack bot token configured)"
    try:
        text = build_block_notice(decision, pull_url(settings, decision))
        slack_call(f"chat.postMessage {channel}", build_slack_client(settings).chat_postMessage, channel=channel, text=text)
    except SlackUnavailable as exc:
        return f"slack: block notice not sent: {exc}"
    except Exception as exc:  # Slack refusing (channel_not_found ...) is logged, never raised
        return f"slack: block notice not sent: {type(exc).__name__}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
    except FileExistsError:
        pass
    return f"slack: block notice sent to {channel}"
