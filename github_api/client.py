"""The GitHub client: PyGithub built from settings, and the one layer that retries GitHub calls.

``open_github`` authenticates with a token, or as a GitHub App (app id and private key → an
installation token, through PyGithub's ``Auth.AppAuth``), against a configurable base URL
(api.github.com, GitHub Enterprise Server, a test server). PyGithub's own retry is switched off
(``retry=None``) and its objects are lazy, so every HTTP call is one the gate asked for.

``Retrying`` is the only retry in the GitHub path, through the gate's one retry primitive
(promotion_gate/retrying.py, stamina). It retries one *operation* (a function the caller makes idempotent
by key: a status by context, a comment by marker, a branch by name), on the failures
:func:`transient_wait` names: 5xx and connection errors (exponential backoff), secondary rate
limits (``Retry-After``) and primary ones (``X-RateLimit-Reset``), waiting what GitHub asked for
and no longer than the configured limit (asked for longer: given up at once). Anything else, or
the same failure after the last try, becomes a :class:`GitHubError` whose message is GitHub's
status and message only: no headers, no URLs with credentials, no token.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import requests
from github import Auth, Github, GithubException, GithubIntegration
from promotion_gate.config.secrets import read_secret, require_secret
from promotion_gate.config.settings import Settings, SettingsError

from promotion_gate.retrying import GaveUp, RetryPolicy, retry_call

T = TypeVar("T")
SERVER_ERRORS = frozenset({500, 502, 503, 504})
SECONDARY_LIMIT_WAIT = 60.0
GITHUB_FAILURES = (GithubException, requests.RequestException)
_INSTALLATION_AUTH: dict[tuple, Auth.AppInstallationAuth] = {}


class GitHubError(Exception):
    """A GitHub call failed. ``status`` is GitHub's HTTP status (0: no answer)."""

    def __init__(self, what: str, status: int, message: str) -> None:
        super().__init__(f"GitHub {status or 'gave no answer'} on {what}: {message}")
        self.what, self.status, self.message = what, status, message


class GitHubUnavailable(GitHubError):
    """GitHub kept failing (5xx, rate limits, no connection) after every try."""


@dataclass
class Retrying:
    """Run an idempotent operation through the one retry primitive (promotion_gate/retrying.py), on the
    GitHub failures :func:`transient_wait` names; give up as a :class:`GitHubError`."""

    retries: int = 4
    backoff: float = 0.5
    max_wait: float = 60.0
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def __call__(self, what: str, operation: Callable[..., T], *args, **kwargs) -> T:
        policy = RetryPolicy(self.retries, self.backoff, self.max_wait)
        try:
            return retry_call(f"GitHub: {what}", policy, GITHUB_FAILURES, self.wait_for, operation, *args, **kwargs)
        except GaveUp as gave_up:
            exc = gave_up.cause
            if not gave_up.transient:
                raise as_github_error(what, exc) from None
            raise GitHubUnavailable(what, _status(exc), f"{_message(exc)} (after {gave_up.tries} tries)") from None

    def wait_for(self, exc: Exception) -> bool | float:
        wait = transient_wait(exc, self.clock())
        return False if wait is None else wait


def transient_wait(exc: Exception, now: float) -> bool | float | None:
    """None when `exc` is not worth retrying; True to retry after the backoff (5xx, no connection);
    the seconds GitHub asked for (a secondary limit's Retry-After, a primary limit's reset)."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return True
    if not isinstance(exc, GithubException):
        return None
    if exc.status in SERVER_ERRORS:
        return True
    if exc.status not in (403, 429):
        return None
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    if "retry-after" in headers:
        return _seconds(headers["retry-after"], SECONDARY_LIMIT_WAIT)
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        return max(_seconds(headers["x-ratelimit-reset"], now + SECONDARY_LIMIT_WAIT) - now, 1.0)
    if "secondary rate limit" in _message(exc).lower():
        return SECONDARY_LIMIT_WAIT
    return None


def as_github_error(what: str, exc: Exception) -> GitHubError:
    return GitHubError(what, _status(exc), _message(exc))


def _status(exc: Exception) -> int:
    return exc.status if isinstance(exc, GithubException) else 0


def _message(exc: Exception) -> str:
    if isinstance(exc, GithubException):
        data = exc.data if isinstance(exc.data, dict) else {}
        message = str(data.get("message") or exc.message or "no message")
        errors = [e.get("message") or e.get("code") for e in data.get("errors", []) if isinstance(e, dict)]
        return "; ".join([message, *[str(e) for e in errors if e]])[:300]
    return type(exc).__name__


def _seconds(value: str, default: float) -> float:
    try:
        return float(value)
    except ValueError:
        return default


def retrying_from(settings: Settings) -> Retrying:
    return Retrying(settings.github_retries, settings.github_retry_backoff_seconds, settings.github_retry_max_wait_seconds)


def open_github(settings: Settings, repository: str) -> Github:
    """A PyGithub client for `repository` (owner/name), paced as configured, lazy, no retry of its own."""
    return Github(
        base_url=settings.github_api_url, auth=build_auth(settings, repository), timeout=settings.github_timeout_seconds,
        retry=None, lazy=True, per_page=100, user_agent="promotion-gate",
        seconds_between_requests=settings.github_seconds_between_requests,
        seconds_between_writes=settings.github_seconds_between_writes,
    )


def build_auth(settings: Settings, repository: str) -> Auth.Auth:
    token = read_secret(settings, "github_token")
    if token is not None:
        return Auth.Token(token.get_secret_value())
    if settings.github_app_id is None:
        raise SettingsError("GitHub credentials: set PROMOTION_GATE_GITHUB_TOKEN, or PROMOTION_GATE_GITHUB_APP_ID "
                            "and PROMOTION_GATE_GITHUB_APP_PRIVATE_KEY (or _PATH, or _BLOCK)")
    key = require_secret(settings, "github_app_private_key").get_secret_value()
    owner = repository.split("/")[0].lower()
    cache_key = (settings.github_api_url, settings.github_app_id, hashlib.sha256(key.encode()).hexdigest(),
                 settings.github_installation_id or owner)
    if cache_key not in _INSTALLATION_AUTH:  # one installation token per process, renewed by PyGithub
        app = Auth.AppAuth(settings.github_app_id, key)
        installation = settings.github_installation_id or _installation_of(settings, app, repository)
        _INSTALLATION_AUTH[cache_key] = app.get_installation_auth(installation)
    return _INSTALLATION_AUTH[cache_key]


def _installation_of(settings: Settings, app: Auth.AppAuth, repository: str) -> int:
    owner, _, name = repository.partition("/")
    integration = GithubIntegration(base_url=settings.github_api_url, auth=app, retry=None,
                                    timeout=settings.github_timeout_seconds)
    found = retrying_from(settings)(f"find the App installation of {repository}", integration.get_repo_installation, owner, name)
    return found.id
