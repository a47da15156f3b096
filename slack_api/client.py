"""The Slack Web API client of the gate: slack_sdk's WebClient, with a base URL and bounded retries.

Retries live at one layer, the gate's one retry primitive (promotion_gate/retrying.py, stamina) around
every Web API call (:class:`RetryingWebClient` overrides ``api_call``; the SDK's own retry
handlers are off), and only for what :func:`slack_wait` names: a dropped connection,
``ratelimited`` (HTTP 429, honouring Retry-After up to ``PROMOTION_GATE_SLACK_RETRY_MAX_WAIT_SECONDS``)
and HTTP 5xx. Any other Slack error
(``channel_not_found``, ``not_in_channel``, ``invalid_auth``) is final and surfaces as
:class:`SlackUnavailable` with Slack's error code and nothing else: never the token.
"""

from __future__ import annotations

from http.client import RemoteDisconnected
from urllib.error import URLError

from promotion_gate.checklists.identity import SlackAccount
from promotion_gate.config.secrets import require_secret
from promotion_gate.config.settings import Settings
from promotion_gate.notifications.error_text import build_error_line
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from promotion_gate.retrying import GaveUp, RetryPolicy, retry_call


class SlackUnavailable(Exception):
    """Slack refused or failed a call after the retries; the message is safe to log and record."""


SLACK_FAILURES = (SlackApiError, URLError, ConnectionResetError, RemoteDisconnected)
RATE_LIMIT_DEFAULT_WAIT = 1.0


def slack_wait(exc: Exception) -> bool | float:
    """Retry a dropped connection (after the backoff), HTTP 5xx (after the backoff) and HTTP 429
    (after Slack's Retry-After); nothing else: ``channel_not_found`` and the like are final."""
    if not isinstance(exc, SlackApiError):
        return isinstance(exc, SLACK_FAILURES)
    status = getattr(exc.response, "status_code", None)
    if status == 429:
        return _retry_after(getattr(exc.response, "headers", None) or {})
    return isinstance(status, int) and 500 <= status < 600


def _retry_after(headers: dict) -> float:
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    value = value[0] if isinstance(value, (list, tuple)) and value else value
    try:
        return max(float(value), 0.0) if value is not None else RATE_LIMIT_DEFAULT_WAIT
    except (TypeError, ValueError):
        return RATE_LIMIT_DEFAULT_WAIT


class RetryingWebClient(WebClient):
    """WebClient whose every Web API call goes through the one retry primitive; after the last
    try the SDK's own exception is raised, as without retries."""

    def __init__(self, *, retry: RetryPolicy, **kwargs) -> None:
        super().__init__(retry_handlers=[], **kwargs)
        self.retry = retry

    def api_call(self, api_method: str, **kwargs) -> SlackResponse:  # type: ignore[override]
        try:
            return retry_call(f"Slack {api_method}", self.retry, SLACK_FAILURES, slack_wait, super().api_call, api_method, **kwargs)
        except GaveUp as gave_up:
            raise gave_up.cause from None


def slack_retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(settings.slack_retries, settings.slack_retry_backoff_seconds, settings.slack_retry_max_wait_seconds)


def build_slack_client(settings: Settings) -> WebClient:
    token = require_secret(settings, "slack_bot_token").get_secret_value()
    return RetryingWebClient(token=token, base_url=settings.slack_api_url, timeout=int(settings.slack_timeout_seconds),
                             retry=slack_retry_policy(settings))


def slack_call(what: str, call, **kwargs) -> dict:
    """Make one Web API call; a failure after the retries becomes SlackUnavailable saying what and why."""
    try:
        return call(**kwargs).data
    except SlackApiError as exc:
        status = getattr(exc.response, "status_code", None)
        error = exc.response.get("error") if hasattr(exc.response, "get") else None
        said = build_error_line(error, 80) if isinstance(error, str) and error else "an error"
        raise SlackUnavailable(f"{what}: Slack answered {said} (HTTP {status})") from None
    except (SlackClientError, OSError) as exc:
        raise SlackUnavailable(f"{what}: Slack could not be reached ({type(exc).__name__})") from None


def fetch_email(client: WebClient, user: str) -> str | None:
    """The user's email from users.info (scope users:read.email); None when Slack does not say."""
    data = slack_call(f"users.info {user}", client.users_info, user=user)
    email = ((data.get("user") or {}).get("profile") or {}).get("email")
    return email if isinstance(email, str) and 3 <= len(email) <= 254 else None


def fetch_account(client: WebClient, user: str, team: str | None, enterprise: str | None = None,
                  app: str | None = None) -> SlackAccount:
    """What users.info says of the clicking account (deleted, bot, app user, guest, email, its team),
    with the workspace, enterprise and app the signed request named."""
    data = slack_call(f"users.info {user}", client.users_info, user=user).get("user") or {}
    email = (data.get("profile") or {}).get("email")
    flag = lambda name: data.get(name) is True  # noqa: E731
    return SlackAccount(
        user=user, team=team, enterprise=enterprise, app=app,
        user_team=data.get("team_id") if isinstance(data.get("team_id"), str) else None,
        email=email if isinstance(email, str) and 3 <= len(email) <= 254 else None,
        deleted=flag("deleted"), bot=flag("is_bot") or user == "USLACKBOT", app_user=flag("is_app_user"),
        guest=flag("is_restricted") or flag("is_ultra_restricted"),
    )


def fetch_usergroup(client: WebClient, usergroup: str) -> set[str]:
    """Members of a Slack user group (scope usergroups:read)."""
    data = slack_call(f"usergroups.users.list {usergroup}", client.usergroups_users_list, usergroup=usergroup)
    return {u for u in data.get("users") or [] if isinstance(u, str)}
