"""The Slack Web API client of the gate: slack_sdk's WebClient, with a base URL and bounded retries.

Retries live at one layer, the SDK's retry handlers, and only for what they name: a dropped
connection, ``ratelimited`` (honouring Retry-After) and HTTP 5xx. Any other Slack error
(``channel_not_found``, ``not_in_channel``, ``invalid_auth``) is final and surfaces as
:class:`SlackUnavailable` with Slack's error code and nothing else: never the token.
"""

from __future__ import annotations

from typing import Optional

from promotion_gate.checklists.identity import SlackAccount
from promotion_gate.config.secrets import require_secret
from promotion_gate.config.settings import Settings
from promotion_gate.notifications.error_text import build_error_line
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator


class SlackUnavailable(Exception):
    """Slack refused or failed a call after the retries; the message is safe to log and record."""


class ServerErrorsRetryHandler(RetryHandler):
    """Retry any HTTP 5xx answer (the SDK's own handler retries only 500 and 503)."""

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: Optional[HttpResponse] = None,
                   error: Optional[Exception] = None) -> bool:
        return response is not None and 500 <= response.status_code < 600


def build_slack_client(settings: Settings) -> WebClient:
    token = require_secret(settings, "slack_bot_token").get_secret_value()
    backoff = BackoffRetryIntervalCalculator(backoff_factor=settings.slack_retry_backoff_seconds)
    retries = settings.slack_retries
    return WebClient(
        token=token, base_url=settings.slack_api_url, timeout=int(settings.slack_timeout_seconds),
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=retries, interval_calculator=backoff),
            RateLimitErrorRetryHandler(max_retry_count=retries),
            ServerErrorsRetryHandler(max_retry_count=retries, interval_calculator=backoff),
        ],
    )


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
