"""The records the fake GitHub keeps (users, repositories, issues, pulls, statuses ...) and
the error answer in GitHub's shape. Plain data; the rules live in github_state."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DOCS = "https://docs.github.com/rest"
STATUS_STATES = ("error", "failure", "pending", "success")
SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class ApiError(Exception):
    """An error answer, in GitHub's shape: message, optional `errors`, documentation_url."""

    def __init__(self, status: int, message: str, errors: list | None = None, headers=None):
        super().__init__(f"{status} {message}")
        self.status, self.message, self.errors = status, message, errors
        self.headers = dict(headers or {})

    def body(self) -> dict:
        body: dict = {"message": self.message, "documentation_url": DOCS}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def invalid(resource: str, message: str, field_name: str | None = None) -> ApiError:
    error = {"resource": resource, "code": "custom", "message": message}
    if field_name:
        error["field"] = field_name
    return ApiError(422, "Validation Failed", errors=[error])


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def touched(previous: datetime) -> datetime:
    """An issue's new ``updated_at``: now, and at least a second after its last one. GitHub's is in
    seconds too, but people do not relabel twice a second; tests do, and a label event's body (which
    carries ``updated_at``) must then differ, as it does on GitHub, from the one before."""
    return max(now(), previous + timedelta(seconds=1))


@dataclass
class User:
    login: str
    id: int
    type: str = "User"
    name: str | None = None
    email: str | None = None


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


@dataclass
class Status:
    id: int
    state: str
    description: str | None
    target_url: str | None
    context: str
    creator: str
    created_at: datetime


@dataclass
class Comment:
    id: int
    repo: str
    number: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime


@dataclass
class Pull:
    id: int
    head_repo: str
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    draft: bool = False
    merged: bool = False
    previous_head_sha: str | None = None
    requested_reviewers: list[str] = field(default_factory=list)
    requested_teams: list[str] = field(default_factory=list)


@dataclass
class Issue:
    number: int
    id: int
    title: str
    body: str | None
    user: str
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    labels: list[str] = field(default_factory=list)
    pull: Pull | None = None


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    default_branch: str
    private: bool = False
    fork_of: str | None = None
    branches: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # other refs by full name (refs/promotion-gate/ledger)
    labels: dict[str, Label] = field(default_factory=dict)
    statuses: dict[str, list[Status]] = field(default_factory=dict)
    issues: dict[int, Issue] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Team:
    id: int
    org: str
    slug: str
    name: str
    members: list[str]


@dataclass
class App:
    id: int
    slug: str
    public_key_pem: bytes
    owner: str


@dataclass
class Installation:
    id: int
    app_id: int
    account: str
    repositories: list[str] | None  # None: all repositories of the account


@dataclass
class AccessToken:
    token: str
    login: str
    installation_id: int | None
    expires_at: datetime | None
