"""What the gate hears from Slack, as pure functions: the signature, the parsed click, the contract.

No I/O and no clock: the caller passes the time. ``action_id`` and ``callback_id`` values below
are the routing contract between the messages we post and the gateway route that reads the
answers. A parsed interaction holds validated plain values only; nothing of Slack's JSON is kept.

Also the record the flow publishes for the gateway while it waits (:class:`WaitingPromotion`),
and the answer the gateway, the sweeper or the GitHub side send to the flow (:class:`SignoffAnswer`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promotion_gate.checklists.results import WaiverRequest
from promotion_gate.checklists.signoff import Action, Click, Signoff

ACTION_APPROVE = "signoff_approve"
ACTION_REJECT = "signoff_reject"
ACTION_WAIVE = "signoff_waive"  # "signoff_waive:PG-EVAL-003": grants the manifest's waiver request for that item
BLOCK_WAIVERS = "signoff_waivers"
BLOCK_ACTIONS = "signoff_actions"
BLOCK_COMMENT = "signoff_comment"
ACTION_COMMENT = "signoff_comment_text"
VIEW_REJECT = "signoff_reject_reason"
BLOCK_REASON = "signoff_reason"
ACTION_REASON = "signoff_reason_text"
MAX_AGE_SECONDS = 300
MAX_BODY_BYTES = 64 * 1024

SLACK_USER = r"^[UW][A-Z0-9]{2,30}$"
SLACK_CHANNEL = r"^[CDG][A-Z0-9]{2,30}$"
SLACK_TS = r"^\d{1,12}\.\d{1,9}$"
SLACK_TEAM = r"^T[A-Z0-9]{2,30}$"
SLACK_ENTERPRISE = r"^E[A-Z0-9]{2,30}$"
SLACK_APP = r"^A[A-Z0-9]{2,30}$"
ROLE = r"^[a-z][a-z0-9_-]{0,63}$"
RUN_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InteractionError(ValueError):
    """The request is not an interaction we understand (answer 400)."""


# the signature


def verify_signature(secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float) -> str | None:
    """None when the request is Slack's and fresh; otherwise why it is refused.

    Slack signs ``v0:{timestamp}:{raw body}`` with HMAC-SHA256; a request more than five
    minutes from now is refused even with a valid signature (a replay)."""
    if not timestamp or not signature:
        return "the request carries no Slack signature"
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return "the request timestamp is not a number"
    mac = new_signature_mac(secret, timestamp)
    mac.update(body)
    return check_signature(mac, timestamp, signature, now)


def new_signature_mac(secret: str, timestamp: str):
    """The HMAC-SHA256 over ``v0:{timestamp}:``, to be fed the raw body (bytes, whatever they hold)."""
    if not secret or not secret.strip():
        raise ValueError("an empty signing secret verifies nothing")
    return hmac.new(secret.encode(), b"v0:" + timestamp.encode("ascii") + b":", hashlib.sha256)


def check_signature(mac, timestamp: str, signature: str, now: float) -> str | None:
    """None when `mac` (fed the whole body) matches ``v0=<hex>`` and the timestamp is fresh."""
    if not hmac.compare_digest(("v0=" + mac.hexdigest()).encode(), signature.encode("utf-8", "replace")):
        return "the Slack signature does not match"
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return "the request is more than 5 minutes old (a replayed click)"
    return None


# what a button names


class SignoffTarget(Frozen):
    """The value of an Approve or Reject button: the waiting run, the promotion, the digest shown, the role asked."""

    run: str = Field(pattern=RUN_ID)
    key: str = Field(min_length=1, max_length=400)
    digest: str = Field(pattern=r"^[0-9a-f]{12,64}$")
    role: str = Field(pattern=ROLE)
    item: str | None = Field(default=None, pattern=r"^PG-[A-Z]+-\d{3}$", description="a waiver button: the item it grants")

    def encode(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> SignoffTarget:
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            raise InteractionError("the button value is not a sign-off target") from None


class MessageRef(Frozen):
    role: str = Field(pattern=ROLE)
    channel: str = Field(pattern=SLACK_CHANNEL)
    ts: str = Field(pattern=SLACK_TS)


class ButtonClick(Frozen):
    """A click on Approve or Reject, as validated plain values."""

    user: str = Field(pattern=SLACK_USER)
    action: Action
    target: SignoffTarget
    message: MessageRef | None = None
    trigger_id: str = Field(min_length=1, max_length=200)
    comment: str | None = Field(default=None, max_length=2000)
    team: str | None = Field(default=None, pattern=SLACK_TEAM, description="the workspace the click came from")
    enterprise: str | None = Field(default=None, pattern=SLACK_ENTERPRISE)
    app: str | None = Field(default=None, pattern=SLACK_APP, description="api_app_id")


class ReasonSubmission(Frozen):
    """The Reject modal, submitted with a reason."""

    user: str = Field(pattern=SLACK_USER)
    target: SignoffTarget
    message: MessageRef | None = None
    reason: str = Field(min_length=1, max_length=2000)
    team: str | None = Field(default=None, pattern=SLACK_TEAM)
    enterprise: str | None = Field(default=None, pattern=SLACK_ENTERPRISE)
    app: str | None = Field(default=None, pattern=SLACK_APP)


class Ignored(Frozen):
    """An interaction the gate does not act on (answered 200 and dropped)."""

    kind: str


Interaction = ButtonClick | ReasonSubmission | Ignored


def _payload(body: bytes) -> dict:
    if len(body) > MAX_BODY_BYTES:
        raise InteractionError("the request body is too large")
    try:
        fields = parse_qs(body.decode(), strict_parsing=True)
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise InteractionError("the body is not a form-encoded Slack payload") from None
    except RecursionError:
        raise InteractionError("the payload is nested too deeply") from None
    if not isinstance(payload, dict):
        raise InteractionError("the payload is not an object")
    return payload


def _get(data: object, *path: str) -> object:
    for name in path:
        data = data.get(name) if isinstance(data, dict) else None
    return data


def _text(data: object, *path: str) -> str | None:
    value = _get(data, *path)
    return value.strip() or None if isinstance(value, str) else None


def parse_interaction(body: bytes) -> Interaction:
    """The click or submission in a form-encoded interaction body; InteractionError if malformed."""
    payload = _payload(body)
    kind = payload.get("type")
    try:
        if kind == "block_actions":
            return _parse_click(payload)
        if kind == "view_submission" and _get(payload, "view", "callback_id") == VIEW_REJECT:
            return _parse_reason(payload)
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise InteractionError(f"the interaction is malformed at {where}") from None
    return Ignored(kind=str(kind)[:40])


def _parse_click(payload: dict) -> Interaction:
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    action_id = action.get("action_id")
    waive = isinstance(action_id, str) and action_id.startswith(ACTION_WAIVE + ":")
    if action_id not in (ACTION_APPROVE, ACTION_REJECT) and not waive:
        return Ignored(kind=f"block_actions:{str(action_id)[:40]}")
    target = SignoffTarget.decode(str(action.get("value") or ""))
    if (target.item is not None or waive) and action_id != f"{ACTION_WAIVE}:{target.item}":
        raise InteractionError("a waiver button must name its item, and only a waiver button may")
    channel, ts = _get(payload, "container", "channel_id"), _get(payload, "container", "message_ts")
    return ButtonClick(
        user=_get(payload, "user", "id"),
        action=Action.waive if waive else Action.approve if action_id == ACTION_APPROVE else Action.reject,
        target=target, message=MessageRef(role=target.role, channel=channel, ts=ts) if channel and ts else None,
        trigger_id=payload.get("trigger_id"),
        comment=_text(payload, "state", "values", BLOCK_COMMENT, ACTION_COMMENT, "value"), **_origin(payload),
    )


def _parse_reason(payload: dict) -> ReasonSubmission:
    metadata = _text(payload, "view", "private_metadata") or ""
    try:
        meta = json.loads(metadata)
    except ValueError:
        raise InteractionError("the modal's private_metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise InteractionError("the modal's private_metadata is not an object")
    return ReasonSubmission(
        user=_get(payload, "user", "id"), target=SignoffTarget.model_validate(meta.get("target")),
        message=MessageRef.model_validate(meta["message"]) if meta.get("message") else None,
        reason=_text(payload, "view", "state", "values", BLOCK_REASON, ACTION_REASON, "value") or "",
        **_origin(payload),
    )


def _origin(payload: dict) -> dict:
    """Where the request says it comes from: team, enterprise (Enterprise Grid) and app ids."""
    return {"team": _get(payload, "team", "id") or _get(payload, "user", "team_id"),
            "enterprise": _get(payload, "enterprise", "id"), "app": payload.get("api_app_id")}


def reject_metadata(target: SignoffTarget, message: MessageRef | None) -> str:
    """The modal's private_metadata: what the Reject button named, and the message it sits on."""
    return json.dumps({"target": target.model_dump(), "message": message.model_dump() if message else None},
                      separators=(",", ":"))


# the wait, as the flow publishes it and as answers change it


class WaitingPromotion(Frozen):
    """What the flow publishes (a flow-run-scoped key) for the gateway and the sweeper while it waits."""

    run: str = Field(pattern=RUN_ID)
    key: str
    system: str
    commit: str
    digest: str
    quorum: dict[str, int]
    excluded: list[str]
    posted_at: datetime
    deadline: datetime
    remind_at: datetime
    messages: list[MessageRef]
    waivers: dict[str, WaiverRequest] = Field(default_factory=dict, description="the waiver requests asked, by item: "
                                              "a resumed run and the gateway judge grants against these")
    signoffs: list[Signoff] = Field(default_factory=list)
    seen: int = Field(default=0, ge=0, description="answers the flow has applied")
    reminded: bool = False
    status: Literal["waiting", "closed"] = "waiting"
    outcome: str | None = None
    version: int = Field(default=0, ge=0, description="bumped by every write; the newest version is the record")


class SignoffAnswer(Frozen):
    """An answer to a waiting promotion: a counted click, a reminder, the deadline, or a void.

    Every kind counts only with its ``seal`` (:func:`seal_answer`): anyone who can reach the Prefect
    API can resume a waiting run with any input, so the flow takes a click as the gateway's word
    (a signed Slack request, the clicker's user groups asked), a reminder or the deadline as the
    sweeper's, and a void as its sender's, only when that sender sealed it for that run. An unsealed
    reminder, deadline or void is refused and the wait goes on (slack_api.signoff.apply_answer).
    """

    kind: Literal["click", "remind", "expire", "void"]
    at: datetime
    click: Click | None = None
    reason: str | None = Field(default=None, max_length=500)
    interaction: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                                    description="a click: the Slack interaction it answers (interaction_id of the signed "
                                                "request), sealed with it; the flow applies one interaction once")
    seal: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                             description="HMAC-SHA256 of the run and the answer, by its sender (the gateway "
                             "that verified the click, the sweeper)")


SEAL_CONTEXT = b"promotion-gate/signoff-answer/v1"


def answer_seal_key(signing_secret: str) -> bytes:
    """The key that seals an answer for the flow, derived from the Slack signing secret (which the
    gateway, the sweeper and the worker hold: docs/slack.md); the secret itself never signs anything else."""
    return hmac.new(signing_secret.encode(), SEAL_CONTEXT, hashlib.sha256).digest()


def _sealed_bytes(answer: SignoffAnswer, run: str) -> bytes:
    """The run and the answer's validated plain values (as the server returns them), canonical JSON."""
    body = SignoffAnswer.model_validate(answer.model_dump()).model_dump(mode="json", exclude={"seal"})
    return json.dumps({"run": str(run), "answer": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def seal_answer(answer: SignoffAnswer, run: str, key: bytes) -> SignoffAnswer:
    """The answer, sealed for ``run``: another run, or any field changed after sealing, breaks it."""
    return answer.model_copy(update={"seal": hmac.new(key, _sealed_bytes(answer, run), hashlib.sha256).hexdigest()})


def seal_holds(answer: SignoffAnswer, run: str, key: bytes) -> bool:
    if answer.seal is None:
        return False
    return hmac.compare_digest(answer.seal, hmac.new(key, _sealed_bytes(answer, run), hashlib.sha256).hexdigest())


INTERACTION_CONTEXT = b"promotion-gate/slack-interaction/v1\0"


def interaction_id(body: bytes) -> str:
    """The identity of one Slack interaction: SHA-256 of the raw body Slack signed. The body holds the
    interaction's own trigger_id and action_ts, and a replay or a Slack retry must send it unchanged
    (the signature covers it), so every copy of one interaction has this id and no other click has it.
    Sealed into the answer (:attr:`SignoffAnswer.interaction`): the flow applies one id once."""
    return hashlib.sha256(INTERACTION_CONTEXT + body).hexdigest()


def click_from(interaction: ButtonClick | ReasonSubmission, at: datetime, email: str | None, guest: bool = False) -> Click:
    """The validated click the core judges: the Slack user, the action, the digest and role of the button."""
    action = interaction.action if isinstance(interaction, ButtonClick) else Action.reject
    note = interaction.comment if isinstance(interaction, ButtonClick) else interaction.reason
    return Click(reviewer=interaction.user, channel="slack", action=action, digest=interaction.target.digest,
                 at=at, role=interaction.target.role, comment=note, email=email, guest=guest,
                 item=interaction.target.item if action == Action.waive else None)
