"""Sign-off: who may approve, separation of duties, the digest binding, and the quorum reducer.

A click is judged against the policy and the promotion; a click that does not count becomes a
:class:`RefusedClick` with the exact reason, and changes nothing else. :func:`tally` folds the
counted sign-offs into the state of the promotion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.defaults import empty_list
from promotion_gate.checklists.identity import GUEST, IDENTITY_CONFLICT, is_excluded, login_key, resolve
from promotion_gate.checklists.policy import Policy

Channel = Literal["console", "slack"]
Authentication = Literal["authenticated", "asserted"]
ASSERTED_REFUSED = "asserted-refused"


def authentication_of(channel: Channel) -> Authentication:
    """Slack: a signed request matched to a policy identity by user id; console: only asserted."""
    return "authenticated" if channel == "slack" else "asserted"


class Action(str, Enum):
    approve = "approve"
    reject = "reject"
    waive = "waive"  # grants the manifest's waiver request for one item (checklists/waivers.py)


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # check never builds these


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
    guest: bool = Field(default=False, description="a Slack guest account (is_restricted / is_ultra_restricted)")
    item: str | None = Field(default=None, pattern=r"^PG-[A-Z]+-\d{3}$", description="the item a waive grant is for")
    expires: date | None = Field(default=None, description="a waive grant's expiry (default: the one requested)")


class Signoff(Frozen):
    reviewer: str
    identity: str
    role: str
    action: Action
    at: datetime
    digest: str
    channel: Channel
    comment: str | None = None
    authentication: Authentication = Field(default="asserted", description="authenticated (signed Slack request) or asserted (console)")
    item: str | None = Field(default=None, description="a waive grant: the item waived")
    expires: date | None = Field(default=None, description="a waive grant: until when")


class RefusedClick(Frozen):
    reviewer: str
    identity: str | None
    action: Action
    at: datetime
    channel: Channel
    reason: str
    code: str | None = Field(default=None, description="identity-conflict, foreign-workspace, not-a-person, guest, ...")


class SignoffState(Frozen):
    status: Literal["waiting", "approved", "rejected"]
    approvals: dict[str, list[str]] = Field(description="role -> identities that approved")
    missing: dict[str, int] = Field(description="role -> approvals still needed")
    rejection: Signoff | None = None
    waivers: dict[str, str] = Field(default_factory=dict, description="item -> identity that granted its waiver")
    missing_waivers: list[str] = Field(default_factory=empty_list, description="requested waivers not yet granted")


def resolve_identity(policy: Policy, reviewer: str, channel: Channel, email: str | None = None) -> str | None:
    """The policy identity behind an account: by Slack id or console name; the email only confirms it."""
    identity, conflict = resolve(policy, reviewer, channel, email)
    return None if conflict else identity


def identities_of_github(policy: Policy, logins: set[str]) -> set[str]:
    """Map GitHub logins (requester, author, committers) to identities; unmapped logins stay as they are."""
    by_login = {login_key(i.github): name for name, i in policy.identities.items() if i.github}
    return {by_login.get(login_key(login), f"github:{login_key(login)}") for login in logins}


def roles_of(policy: Policy, identity: str, reviewer: str, usergroups: Mapping[str, set[str] | None]) -> set[str]:
    """Roles held by an identity. A role's ``members`` are the reviewed list: only a member holds it,
    and the role's Slack user group, where set and read (``usergroups``: group -> the accounts Slack
    lists; absent or None: not read), can only take a member out (moved off the team), never put
    someone in: whoever can edit a Slack group does not make a reviewer. A role without members is
    its user group, as read."""
    held = set()
    for role, spec in policy.roles.items():
        group = usergroups.get(spec.slack_usergroup) if spec.slack_usergroup else None
        if spec.members:
            if identity in spec.members and (group is None or reviewer in group):
                held.add(role)
        elif group is not None and reviewer in group:
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
    usergroups: Mapping[str, set[str] | None] | None = None,
    accept_asserted: bool = True,
    waivers: dict | None = None,
) -> Signoff | RefusedClick:
    identity, conflict = resolve(policy, click.reviewer, click.channel, click.email)

    def refuse(reason: str, code: str | None = None) -> RefusedClick:
        return RefusedClick(reviewer=click.reviewer, identity=identity, action=click.action, at=click.at,
                            channel=click.channel, reason=reason, code=code)

    if not waiting:
        return refuse("the promotion is no longer waiting for sign-off")
    if conflict:
        return refuse(conflict, IDENTITY_CONFLICT)
    if authentication_of(click.channel) == "asserted" and not accept_asserted:
        return refuse(f"a {click.channel} sign-off only asserts who gives it; this promotion accepts authenticated sign-offs only", ASSERTED_REFUSED)
    if identity is None:
        return refuse(f"{click.reviewer} is not a known reviewer (no identity in the policy)")
    if click.digest != digest and not digest.startswith(click.digest):
        return refuse("the evidence changed since this request: the approved digest no longer matches")
    if is_excluded(policy, identity, click.reviewer, click.channel, click.email, excluded):
        return refuse(f"{identity} requested, authored or committed this change and may not sign it off")
    if click.action == Action.waive:  # item -> WaiverRequest of the checklist; the grant has its own rules
        from promotion_gate.checklists.waivers import judge_waiver

        return judge_waiver(click, identity, policy=policy, requests=waivers or {}, given=given,
                            usergroups=usergroups or {}, refuse=refuse, digest=digest)
    held = roles_of(policy, identity, click.reviewer, usergroups or {}) & set(quorum)
    if click.role is not None:
        held &= {click.role}
    if not held:
        wanted = click.role or ", ".join(sorted(quorum)) or "no role"
        return refuse(f"{identity} does not hold the role this sign-off needs ({wanted})")
    if click.guest:
        held = {r for r in held if policy.roles[r].allow_guests}
        if not held:
            return refuse(f"{identity} signs in as a Slack guest; the policy refuses guests for this role", GUEST)
    prior = [s for s in given if s.identity == identity and s.action != Action.waive]
    if prior and not (click.action == Action.reject and all(s.action == Action.approve for s in prior)):
        return refuse(f"{identity} has already signed off this promotion")  # a reject after one's own approve stops it
    counts = {role: sum(1 for s in given if s.role == role and s.action == Action.approve) for role in quorum}
    role = min(held, key=lambda r: (counts[r] >= quorum[r], r))
    return Signoff(
        reviewer=click.reviewer, identity=identity, role=role, action=click.action,
        at=click.at, digest=digest, channel=click.channel, comment=click.comment,
        authentication=authentication_of(click.channel),
    )


def tally(quorum: dict[str, int], signoffs: list[Signoff], waivers: Iterable[str] = ()) -> SignoffState:
    """Fold sign-offs: per-role approvals against the quorum; every requested waiver (item ids) granted."""
    approvals = {role: [s.identity for s in signoffs if s.role == role and s.action == Action.approve] for role in quorum}
    missing = {role: max(0, need - len(approvals[role])) for role, need in quorum.items()}
    rejection = next((s for s in signoffs if s.action == Action.reject), None)
    granted = {s.item: s.identity for s in signoffs if s.action == Action.waive and s.item}
    pending = [item for item in waivers if item not in granted]
    if rejection is not None:
        status = "rejected"
    elif all(n == 0 for n in missing.values()) and not pending:
        status = "approved"
    else:
        status = "waiting"
    return SignoffState(status=status, approvals=approvals, missing={r: n for r, n in missing.items() if n}, rejection=rejection,
                        waivers=granted, missing_waivers=pending)
