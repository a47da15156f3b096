"""Sign-off: who may approve, separation of duties, the digest binding, and the quorum reducer.

A click is judged against the policy and the promotion; a click that does not count becomes a
:class:`RefusedClick` with the exact reason, and changes nothing else. :func:`tally` folds the
counted sign-offs into the state of the promotion.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.policy import Policy

Channel = Literal["console", "slack"]


class Action(str, Enum):
    approve = "approve"
    reject = "reject"


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Click(Frozen):
    """A reviewer's answer, as validated plain values (never a forwarded Slack payload)."""

    reviewer: str = Field(min_length=1, max_length=64, description="Slack user id, or a console name")
    channel: Channel
    action: Action
    digest: str = Field(pattern=r"^[0-9a-f]{12,64}$")
    at: datetime
    role: str | None = Field(default=None, max_length=64)
    comment: str | None = Field(default=None, max_length=2000)
    email: str | None = Field(default=None, max_length=254)


class Signoff(Frozen):
    reviewer: str
    identity: str
    role: str
    action: Action
    at: datetime
    digest: str
    channel: Channel
    comment: str | None = None


class RefusedClick(Frozen):
    reviewer: str
    identity: str | None
    action: Action
    at: datetime
    channel: Channel
    reason: str


class SignoffState(Frozen):
    status: Literal["waiting", "approved", "rejected"]
    approvals: dict[str, list[str]] = Field(description="role -> identities that approved")
    missing: dict[str, int] = Field(description="role -> approvals still needed")
    rejection: Signoff | None = None


def resolve_identity(policy: Policy, reviewer: str, channel: Channel, email: str | None = None) -> str | None:
    """The policy identity behind an account: by Slack id, console name or email."""
    for name, ident in policy.identities.items():
        if channel == "slack" and ident.slack == reviewer:
            return name
        if channel == "console" and reviewer in (name, ident.github):
            return name
        if email and ident.email and ident.email.lower() == email.lower():
            return name
    return None


def identities_of_github(policy: Policy, logins: set[str]) -> set[str]:
    """Map GitHub logins (requester, author, committers) to identities; unmapped logins stay as they are."""
    by_login = {i.github.lower(): name for name, i in policy.identities.items() if i.github}
    return {by_login.get(login.lower(), f"github:{login.lower()}") for login in logins}


def roles_of(policy: Policy, identity: str, reviewer: str, usergroups: dict[str, set[str]]) -> set[str]:
    """Roles held by an identity: listed as a member, or in the role's Slack user group."""
    held = set()
    for role, spec in policy.roles.items():
        if identity in spec.members:
            held.add(role)
        if spec.slack_usergroup and reviewer in usergroups.get(spec.slack_usergroup, set()):
            held.add(role)
    return held


def judge(
    click: Click,
    *,
    policy: Policy,
    quorum: dict[str, int],
    digest: str,
    excluded: set[str],
    given: list[Signoff],
    waiting: bool,
    usergroups: dict[str, set[str]] | None = None,
) -> Signoff | RefusedClick:
    identity = resolve_identity(policy, click.reviewer, click.channel, click.email)

    def refuse(reason: str) -> RefusedClick:
        return RefusedClick(reviewer=click.reviewer, identity=identity, action=click.action, at=click.at, channel=click.channel, reason=reason)

    if not waiting:
        return refuse("the promotion is no longer waiting for sign-off")
    if identity is None:
        return refuse(f"{click.reviewer} is not a known reviewer (no identity in the policy)")
    if click.digest != digest and not digest.startswith(click.digest):
        return refuse("the evidence changed since this request: the approved digest no longer matches")
    if identity in excluded:
        return refuse(f"{identity} requested, authored or committed this change and may not sign it off")
    held = roles_of(policy, identity, click.reviewer, usergroups or {}) & set(quorum)
    if click.role is not None:
        held &= {click.role}
    if not held:
        wanted = click.role or ", ".join(sorted(quorum)) or "no role"
        return refuse(f"{identity} does not hold the role this sign-off needs ({wanted})")
    if any(s.identity == identity for s in given):
        return refuse(f"{identity} has already signed off this promotion")
    counts = {role: sum(1 for s in given if s.role == role and s.action == Action.approve) for role in quorum}
    role = min(held, key=lambda r: (counts[r] >= quorum[r], r))
    return Signoff(
        reviewer=click.reviewer, identity=identity, role=role, action=click.action,
        at=click.at, digest=digest, channel=click.channel, comment=click.comment,
    )


def tally(quorum: dict[str, int], signoffs: list[Signoff]) -> SignoffState:
    approvals = {role: [s.identity for s in signoffs if s.role == role and s.action == Action.approve] for role in quorum}
    missing = {role: max(0, need - len(approvals[role])) for role, need in quorum.items()}
    rejection = next((s for s in signoffs if s.action == Action.reject), None)
    if rejection is not None:
        status = "rejected"
    elif all(n == 0 for n in missing.values()):
        status = "approved"
    else:
        status = "waiting"
    return SignoffState(status=status, approvals=approvals, missing={r: n for r, n in missing.items() if n}, rejection=rejection)
