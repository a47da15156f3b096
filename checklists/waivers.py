"""Waivers are granted, never self-declared.

A manifest's ``waivers:`` entry is a request (:class:`WaiverRequest` on the failed item). It counts
only when a policy identity of a role the policy lets waive that item grants it, through a
sign-off bound to the same digest, with an expiry no later than the request's and the tier's
limit. The grantor may not be the requester, the author or a committer (the sign-off's excluded
identities). Until granted the item stays failed; a grant turns fail into waived, never into pass.
"""

from __future__ import annotations

from typing import Callable, Mapping

from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.policy import Policy, never_waivable
from promotion_gate.checklists.results import AppliedWaiver, Outcome, WaiverRequest
from promotion_gate.checklists.signoff import Action, Click, RefusedClick, Signoff, authentication_of, roles_of


def requests_of(checklist: Checklist) -> dict[str, WaiverRequest]:
    """The grantable requests of a checklist, by item id (what ``judge(..., waivers=)`` takes)."""
    return {w.item: w for w in checklist.waiver_requests}


def judge_waiver(
    click: Click, identity: str, *, policy: Policy, requests: dict[str, WaiverRequest], given: list[Signoff],
    usergroups: Mapping[str, set[str] | None], refuse: Callable[..., RefusedClick], digest: str | None = None,
) -> Signoff | RefusedClick:
    """A waive click, already past identity, digest and separation of duties (``signoff.judge``)."""
    item = click.item
    if item is None:
        return refuse("a waiver grant must name the item it waives")
    request = requests.get(item)
    if request is None:
        if never_waivable(item):
            return refuse(f"{item} can never be waived")
        return refuse(f"this promotion has no grantable waiver request for {item}")
    held = roles_of(policy, identity, click.reviewer, usergroups) & set(request.waivable_by)
    if click.role is not None:
        held &= {click.role}
    if click.guest:
        held = {r for r in held if getattr(policy.roles[r], "allow_guests", False)}
    if not held:
        return refuse(f"{identity} does not hold a role that may waive {item} ({', '.join(request.waivable_by)})")
    if any(s.action == Action.waive and s.item == item for s in given):
        return refuse(f"the waiver of {item} is already granted")
    expires = click.expires or request.expires
    if expires > request.expires:
        return refuse(f"a grant until {expires} is longer than the {request.expires} requested")
    if request.latest_expiry is not None and expires > request.latest_expiry:
        return refuse(f"a grant until {expires} is beyond the policy's limit ({request.latest_expiry})")
    if expires < click.at.date():
        return refuse(f"a grant until {expires} has already expired")
    return Signoff(
        reviewer=click.reviewer, identity=identity, role=sorted(held)[0], action=Action.waive, at=click.at,
        digest=digest or click.digest, channel=click.channel, comment=click.comment, item=item, expires=expires,
        authentication=authentication_of(click.channel),
    )


def _grant_for(request: WaiverRequest, signoffs: list[Signoff], digest: str) -> Signoff | None:
    """The grant of one request, re-checked here: the reducer trusts no sign-off it did not judge."""
    for s in signoffs:
        if s.action != Action.waive or s.item != request.item or s.role not in request.waivable_by:
            continue
        if not digest.startswith(s.digest) and s.digest != digest:
            continue
        if s.expires is None or s.expires > request.expires or (request.latest_expiry and s.expires > request.latest_expiry):
            continue
        return s
    return None


def apply_grants(checklist: Checklist, signoffs: list[Signoff]) -> Checklist:
    """Turn each failed item whose waiver request was granted into waived, with who and until when."""
    if not checklist.waiver_requests:
        return checklist
    results = []
    for r in checklist.results:
        request = r.waiver_request
        grant = _grant_for(request, signoffs, checklist.digest) if request and request.grantable and r.outcome == Outcome.fail else None
        if grant is None or grant.expires < checklist.evaluated_at.date():
            results.append(r)
            continue
        applied = AppliedWaiver(approver=grant.identity, reason=request.reason, expires=grant.expires, waived_outcome=r.outcome,
                                role=grant.role, granted_at=grant.at, channel=grant.channel, requested_expires=request.expires)
        results.append(r.model_copy(update={"outcome": Outcome.waived, "waiver": applied}))
    return checklist.model_copy(update={"results": results})
