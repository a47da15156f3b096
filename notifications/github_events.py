"""GitHub webhook deliveries in, typed asks out: the signature check and the event parser. Pure.

In the manner of gidgethub's ``sansio``: no I/O here. The gateway reads the raw body and headers,
calls :func:`verify_signature`, then :func:`parse_delivery`, which returns what GitHub asks of the
gate: ``Promote`` (the promotion label was added), ``Supersede`` (a push to a labelled PR),
``Withdraw`` (the label was removed, or the PR closed), ``Ping``, or ``Ignore`` with the reason.
Malformed input raises :class:`WebhookError` with the HTTP status to answer.

Every value an ask carries is validated (repository name, PR number, 40-hex SHAs, logins), so
it can be a Prefect flow parameter as it is: plain, short, nothing a template engine would render.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime

from promotion_gate.checklists.decision import PromotionRequest

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
SHA = re.compile(r"^[0-9a-f]{40}$")
DELIVERY = re.compile(r"^[A-Za-z0-9-]{1,64}$")
LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?$")
SIGNATURE = re.compile(r"^sha256=([0-9a-f]{64})$")
SYSTEM_PATH = re.compile(r"^ai-systems/([a-z0-9][a-z0-9-]{0,62})/.")


class WebhookError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Ping:
    zen: str


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class Promote:
    repository: str
    pull_request: int
    head_sha: str
    sender: str
    author: str | None = None
    delivery: str | None = None  # the label event's identity: event_identity(its signed body)

    @property
    def key(self) -> str:  # per label event: a redelivery or a replay is the same run, a new label on the same commit a new one
        base = f"{self.repository}#{self.pull_request}@{self.head_sha}"
        return f"{base}/{self.delivery}" if self.delivery else base


@dataclass(frozen=True)
class Supersede:
    repository: str
    pull_request: int
    head_sha: str
    sender: str
    before: str
    author: str | None = None

    @property
    def key(self) -> str:  # the same key as a label on the new head: one evaluation per head
        return f"{self.repository}#{self.pull_request}@{self.head_sha}"


@dataclass(frozen=True)
class Withdraw:
    repository: str
    pull_request: int
    head_sha: str
    sender: str
    reason: str

    @property
    def key(self) -> str:
        return f"{self.repository}#{self.pull_request}@{self.head_sha}:withdrawn"


Ask = Promote | Supersede | Withdraw
Delivery = Ask | Ping | Ignore


def build_parameters(ask: Ask) -> dict:
    """The `promotion-request` flow's parameters for an ask: plain validated values."""
    if hasattr(ask, "action"):  # the enforcement asks (notifications/check_events.py) name their own action
        return {"action": ask.action, **asdict(ask)}
    action = {Promote: "promote", Supersede: "supersede", Withdraw: "withdraw"}[type(ask)]
    return {"action": action, **asdict(ask)}


def build_tags(ask: Ask) -> list[str]:
    if getattr(ask, "pull_request", None) is None:  # a deployment review: no pull request to tag
        return [f"repo:{ask.repository}", f"sha:{ask.head_sha[:7]}", "promotion-request"]
    return [f"pr:{ask.repository}#{ask.pull_request}", f"sha:{ask.head_sha[:7]}", "promotion-request"]


def event_identity(body: bytes) -> str:
    """A label event's identity: the SHA-256 of its signed body (hex). GitHub's redelivery resends
    the same body, and a replay of a captured delivery must carry it unchanged for its signature to
    hold, whatever X-GitHub-Delivery it claims (the header is not signed); a label added again is a
    new event with a new body (the pull request's ``updated_at`` and labels move)."""
    return hashlib.sha256(body).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when X-Hub-Signature-256 is "sha256=" + HMAC-SHA256(secret, raw body), hex."""
    if not secret:
        raise ValueError("an empty webhook secret verifies nothing")
    match = SIGNATURE.match(header or "")
    if match is None:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match.group(1))


def parse_signature(header: str | None) -> str | None:
    """The hex digest X-Hub-Signature-256 claims, or None when it is missing or malformed."""
    match = SIGNATURE.match(header or "")
    return match.group(1) if match else None


def new_signature_mac(secret: bytes):
    """The HMAC-SHA256 to feed the raw body to, chunk by chunk, and compare with the claimed digest."""
    if not secret:
        raise ValueError("an empty webhook secret verifies nothing")
    return hmac.new(secret, digestmod=hashlib.sha256)


def parse_delivery(event: str | None, body: bytes, *, label: str, blocked_label: str) -> Delivery:
    if not event:
        raise WebhookError(400, "no X-GitHub-Event header")
    payload = _parse_json(body)
    if event == "ping":
        return Ping(str(payload.get("zen", "")))
    if event in ("check_run", "check_suite", "deployment_protection_rule"):
        from promotion_gate.notifications import check_events

        return {"check_run": check_events.parse_check_run, "check_suite": check_events.parse_check_suite,
                "deployment_protection_rule": check_events.parse_deployment_protection_rule}[event](payload)
    if event != "pull_request":
        return Ignore(f"event {event} is not handled")
    return _parse_pull_request(payload, label, blocked_label)


def _parse_json(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError(400, "the body is not JSON") from None
    except RecursionError:
        raise WebhookError(400, "the body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, "the body is not a JSON object")
    return payload


def _parse_pull_request(payload: dict, label: str, blocked_label: str) -> Delivery:
    action = payload.get("action")
    pull = _object(payload, "pull_request")
    labels = {_text(x, "name", "pull_request.labels[].name") for x in _list(pull, "labels")}
    if action == "labeled":
        if _text(_object(payload, "label"), "name", "label.name") != label:
            return Ignore("another label")
        if pull.get("state", "open") != "open":
            return Ignore(f"{label} on a pull request that is not open")
        return _promote(payload, pull)
    if action == "synchronize":
        if label not in labels:
            return _guard(payload, pull)  # the lock-file guard still looks at the new head
        promote = _promote(payload, pull)
        before = _sha(payload.get("before"), "before")
        return Supersede(promote.repository, promote.pull_request, promote.head_sha, promote.sender, before, promote.author)
    if action == "unlabeled":
        if _text(_object(payload, "label"), "name", "label.name") != label:
            return Ignore("another label")
        if blocked_label in labels:
            return Ignore(f"the gate swapped {label} for {blocked_label}")
        return _withdraw(payload, pull, "promotion withdrawn")
    if action == "closed" and label in labels:
        return _withdraw(payload, pull, "promotion withdrawn: pull request closed")
    if action in ("opened", "reopened") or (action == "edited" and "base" in (payload.get("changes") or {})):
        return _guard(payload, pull)
    return Ignore(f"pull_request {action} is not handled")


def _guard(payload: dict, pull: dict):
    from promotion_gate.notifications.check_events import parse_guard

    if pull.get("state", "open") != "open":
        return Ignore("a pull request that is not open")
    return parse_guard(payload, pull)


def _promote(payload: dict, pull: dict) -> Promote:
    repository, number, sender = _where(payload, pull)
    head = _object(pull, "head", "pull_request.head")
    author = _object(pull, "user", "pull_request.user").get("login")
    return Promote(repository, number, _sha(head.get("sha"), "pull_request.head.sha"), sender,
                   author if isinstance(author, str) and LOGIN.match(author) else None)


def _withdraw(payload: dict, pull: dict, reason: str) -> Withdraw:
    repository, number, sender = _where(payload, pull)
    head = _object(pull, "head", "pull_request.head")
    return Withdraw(repository, number, _sha(head.get("sha"), "pull_request.head.sha"), sender, f"{reason} by {sender}")


def _where(payload: dict, pull: dict) -> tuple[str, int, str]:
    repository = _text(_object(payload, "repository"), "full_name", "repository.full_name")
    if not REPOSITORY.match(repository):
        raise WebhookError(400, "repository.full_name is not owner/name")
    number = pull.get("number", payload.get("number"))
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise WebhookError(400, "pull_request.number is not a positive integer")
    sender = _text(_object(payload, "sender"), "login", "sender.login")
    if not LOGIN.match(sender):
        raise WebhookError(400, "sender.login is not a GitHub login")
    return repository, number, sender


def _object(parent: dict, key: str, where: str | None = None) -> dict:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise WebhookError(400, f"{where or key} is missing or not an object")
    return value


def _list(parent: dict, key: str) -> list:
    value = parent.get(key, [])
    if not isinstance(value, list):
        raise WebhookError(400, f"{key} is not a list")
    return [v for v in value if isinstance(v, dict)]


def _text(parent: dict, key: str, where: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise WebhookError(400, f"{where} is missing or not a string")
    return value


def _sha(value, where: str) -> str:
    if not isinstance(value, str) or not SHA.match(value):
        raise WebhookError(400, f"{where} is missing or not a 40-character commit SHA")
    return value


def parse_parameters(parameters: dict) -> Ask:
    """The inverse of :func:`build_parameters`, validating again (a run may be started by hand)."""
    params = dict(parameters)
    if params.get("action") in ("rerun", "guard", "review-deployment"):
        from promotion_gate.notifications.check_events import parse_enforcement_parameters

        return parse_enforcement_parameters(params)
    action = params.pop("action", None)
    kinds = {"promote": Promote, "supersede": Supersede, "withdraw": Withdraw}
    if action not in kinds:
        raise ValueError(f"action must be one of {', '.join(kinds)}")
    kind = kinds[action]
    names = {f.name for f in fields(kind)}
    try:
        ask = kind(**{k: v for k, v in params.items() if k in names})
    except TypeError:
        raise ValueError(f"{action} needs {', '.join(sorted(names))}") from None
    checks = {
        "repository": _matches(REPOSITORY, ask.repository),
        "pull_request": isinstance(ask.pull_request, int) and not isinstance(ask.pull_request, bool) and ask.pull_request > 0,
        "head_sha": _matches(SHA, ask.head_sha), "sender": _matches(LOGIN, ask.sender),
        "before": not isinstance(ask, Supersede) or _matches(SHA, ask.before),
        "author": getattr(ask, "author", None) is None or _matches(LOGIN, ask.author),
        "delivery": getattr(ask, "delivery", None) is None or _matches(DELIVERY, ask.delivery),
        "reason": not isinstance(ask, Withdraw) or (isinstance(ask.reason, str) and 0 < len(ask.reason) <= 200),
    }
    problems = [name for name, ok in checks.items() if not ok]
    if problems:
        raise ValueError(f"invalid promotion-request parameters: {', '.join(problems)}")
    return ask


def _matches(pattern: re.Pattern, value) -> bool:
    return isinstance(value, str) and pattern.match(value) is not None


def parse_changed_systems(paths: list[str]) -> list[str]:
    """The AI systems a PR touches: the <name> of every changed path under ai-systems/<name>/."""
    found = {m.group(1) for m in map(SYSTEM_PATH.match, paths) if m}
    return sorted(found)


def request_for(ask, system: str, at: datetime) -> PromotionRequest:
    """The gate run's request for one system of a label, a push or a re-run (``Promote``,
    ``Supersede``, ``Rerun``): built the same way by the request run and by the gateway."""
    return PromotionRequest(repository=ask.repository, system=system, commit=ask.head_sha, requester=ask.sender,
                            requested_at=at, pull_request=ask.pull_request, author=getattr(ask, "author", None),
                            attempt=getattr(ask, "attempt", None))
