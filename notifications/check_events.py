"""The enforcement events: a check's Re-run, a pull request's lock files, a deployment's review. Pure.

``parse_delivery`` (github_events) hands these events here:

- ``check_run`` ``rerequested`` (the Re-run button of one of the gate's checks) and ``check_suite``
  ``rerequested`` (Re-run all checks): :class:`Rerun`, the same commit evaluated again as a new
  attempt (a new decision); for ``promotion-gate / lock-guard``: :class:`GuardLocks` again. The
  attempt comes from the payload (the check run's id; the suite's id and update time), so a
  redelivery of the same event is the same attempt and starts nothing new;
- ``pull_request`` ``opened``, ``reopened``, ``synchronize`` (without the promotion label),
  ``edited`` with a new base: :class:`GuardLocks` (the flow checks the base is the production branch);
- ``deployment_protection_rule`` ``requested``: :class:`ReviewDeployment`. The workflow run's id
  is taken from ``deployment_callback_url``, which must name this repository's
  ``/actions/runs/<id>/deployment_protection_rule``: the gate answers through its own GitHub API
  URL, never to a URL a payload chose.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from promotion_gate.notifications import github_events as h

CALLBACK = re.compile(r"^https?://[^/]+(?:/api/v3)?/repos/([A-Za-z0-9_.-]{1,100})/([A-Za-z0-9_.-]{1,100})"
                      r"/actions/runs/([0-9]{1,20})/deployment_protection_rule$")
ENVIRONMENT = re.compile(r"^[^\x00-\x1f/\\]{1,255}$")
REF = re.compile(r"^(?:refs/(?:heads|tags)/)?[A-Za-z0-9._/-]{1,255}$")
ATTEMPT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$")
GUARD_NAME = "promotion-gate / lock-guard"
GATE_NAMES = re.compile(r"^promotion-gate(?: / [a-z0-9][a-z0-9-]{0,62})?$")


@dataclass(frozen=True)
class Rerun:
    repository: str
    pull_request: int
    head_sha: str
    sender: str
    attempt: str
    author: str | None = None  # the PR's author, read by the flow (the check payloads do not carry it)
    action: ClassVar[str] = "rerun"

    @property
    def key(self) -> str:
        return f"{self.repository}#{self.pull_request}@{self.head_sha}~{self.attempt}"


@dataclass(frozen=True)
class GuardLocks:
    repository: str
    pull_request: int
    head_sha: str
    sender: str
    base: str
    attempt: str | None = None
    action: ClassVar[str] = "guard"

    @property
    def key(self) -> str:
        again = f"~{self.attempt}" if self.attempt else ""
        return f"{self.repository}#{self.pull_request}@{self.head_sha}:lock-guard{again}"


@dataclass(frozen=True)
class ReviewDeployment:
    repository: str
    environment: str
    ref: str
    head_sha: str
    run_id: int
    sender: str
    pull_request: int | None = None
    action: ClassVar[str] = "review-deployment"

    @property
    def key(self) -> str:
        return f"{self.repository}@{self.head_sha}:deploy:{self.environment}:{self.run_id}"


EnforcementAsk = Rerun | GuardLocks | ReviewDeployment
KINDS = {k.action: k for k in (Rerun, GuardLocks, ReviewDeployment)}


def build_enforcement_parameters(ask: EnforcementAsk) -> dict:
    return {"action": ask.action, **asdict(ask)}


def parse_check_run(payload: dict) -> object:
    if payload.get("action") != "rerequested":
        return h.Ignore(f"check_run {payload.get('action')} is not handled")
    run = h._object(payload, "check_run")
    name = h._text(run, "name", "check_run.name")
    if name != GUARD_NAME and not GATE_NAMES.match(name):
        return h.Ignore(f"check run {name[:80]!r} is not the gate's")
    run_id = run.get("id")
    if not isinstance(run_id, int) or isinstance(run_id, bool) or run_id < 1:
        raise h.WebhookError(400, "check_run.id is not a positive integer")
    return _ask_for(payload, run, h._sha(run.get("head_sha"), "check_run.head_sha"), f"run-{run_id}", name == GUARD_NAME)


def parse_check_suite(payload: dict) -> object:
    if payload.get("action") != "rerequested":
        return h.Ignore(f"check_suite {payload.get('action')} is not handled")
    suite = h._object(payload, "check_suite")
    suite_id = suite.get("id")
    if not isinstance(suite_id, int) or isinstance(suite_id, bool) or suite_id < 1:
        raise h.WebhookError(400, "check_suite.id is not a positive integer")
    stamp = re.sub(r"[^0-9]", "", str(suite.get("updated_at") or ""))[:14] or "0"
    return _ask_for(payload, suite, h._sha(suite.get("head_sha"), "check_suite.head_sha"), f"suite-{suite_id}-{stamp}", False)


def _ask_for(payload: dict, holder: dict, sha: str, attempt: str, guard: bool):
    repository = h._text(h._object(payload, "repository"), "full_name", "repository.full_name")
    if not h.REPOSITORY.match(repository):
        raise h.WebhookError(400, "repository.full_name is not owner/name")
    sender = h._text(h._object(payload, "sender"), "login", "sender.login")
    if not h.LOGIN.match(sender):
        raise h.WebhookError(400, "sender.login is not a GitHub login")
    pulls = [p for p in h._list(holder, "pull_requests")]
    if not pulls:
        return h.Ignore("a re-run on a commit with no open pull request of this repository")
    pull = pulls[0]
    number = pull.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise h.WebhookError(400, "pull_requests[].number is not a positive integer")
    head = h._sha(h._object(pull, "head", "pull_requests[].head").get("sha"), "pull_requests[].head.sha")
    if head != sha:
        return h.Ignore(f"the check is on {sha[:7]}, no longer the head of #{number} ({head[:7]})")
    if guard:
        base = h._text(h._object(pull, "base", "pull_requests[].base"), "ref", "pull_requests[].base.ref")
        return GuardLocks(repository, number, sha, sender, base, attempt)
    return Rerun(repository, number, sha, sender, attempt)


def parse_guard(payload: dict, pull: dict) -> GuardLocks:
    repository, number, sender = h._where(payload, pull)
    head = h._object(pull, "head", "pull_request.head")
    base = h._text(h._object(pull, "base", "pull_request.base"), "ref", "pull_request.base.ref")
    return GuardLocks(repository, number, h._sha(head.get("sha"), "pull_request.head.sha"), sender, base)


def parse_deployment_protection_rule(payload: dict) -> object:
    if payload.get("action") != "requested":
        return h.Ignore(f"deployment_protection_rule {payload.get('action')} is not handled")
    repository = h._text(h._object(payload, "repository"), "full_name", "repository.full_name")
    if not h.REPOSITORY.match(repository):
        raise h.WebhookError(400, "repository.full_name is not owner/name")
    environment = h._text(payload, "environment", "environment")
    if not ENVIRONMENT.match(environment):
        raise h.WebhookError(400, "environment is not an environment name")
    deployment = h._object(payload, "deployment")
    sha = h._sha(deployment.get("sha"), "deployment.sha")
    ref = h._text(deployment, "ref", "deployment.ref")
    if not REF.match(ref) or ".." in ref:
        raise h.WebhookError(400, "deployment.ref is not a branch or tag name")
    url = h._text(payload, "deployment_callback_url", "deployment_callback_url")
    match = CALLBACK.match(url)
    if match is None or f"{match.group(1)}/{match.group(2)}".lower() != repository.lower():
        raise h.WebhookError(400, "deployment_callback_url is not this repository's deployment protection rule URL")
    sender = h._text(h._object(payload, "sender"), "login", "sender.login")
    if not h.LOGIN.match(sender):
        raise h.WebhookError(400, "sender.login is not a GitHub login")
    return ReviewDeployment(repository, environment, ref, sha, int(match.group(3)), sender)


def parse_enforcement_parameters(parameters: dict) -> EnforcementAsk:
    """The inverse of :func:`build_enforcement_parameters`, validating again (a run may be started by hand)."""
    params = dict(parameters)
    kind = KINDS.get(params.pop("action", None))
    if kind is None:
        raise ValueError(f"action must be one of {', '.join(KINDS)}")
    names = {f.name for f in fields(kind)}
    try:
        ask = kind(**{k: v for k, v in params.items() if k in names and v is not None})
    except TypeError:
        raise ValueError(f"{kind.action} needs {', '.join(sorted(names))}") from None
    attempt, author = getattr(ask, "attempt", None), getattr(ask, "author", None)
    ok = {
        "repository": h._matches(h.REPOSITORY, ask.repository), "head_sha": h._matches(h.SHA, ask.head_sha),
        "sender": h._matches(h.LOGIN, ask.sender),
        "pull_request": ask.pull_request is None if isinstance(ask, ReviewDeployment) else
        isinstance(ask.pull_request, int) and not isinstance(ask.pull_request, bool) and ask.pull_request > 0,
        "attempt": attempt is None or h._matches(ATTEMPT, attempt),
        "author": author is None or h._matches(h.LOGIN, author),
        "base": not isinstance(ask, GuardLocks) or h._matches(REF, ask.base),
        "environment": not isinstance(ask, ReviewDeployment) or h._matches(ENVIRONMENT, ask.environment),
        "ref": not isinstance(ask, ReviewDeployment) or h._matches(REF, ask.ref),
        "run_id": not isinstance(ask, ReviewDeployment) or (isinstance(ask.run_id, int) and ask.run_id > 0),
    }
    problems = [name for name, good in ok.items() if not good]
    if problems:
        raise ValueError(f"invalid promotion-request parameters: {', '.join(problems)}")
    return ask
