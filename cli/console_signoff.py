"""The console sign-off channel: approvals named on the command line, or asked at the terminal.

It goes through the same judge and tally as Slack clicks, so the same rules hold: role,
separation of duties, the digest, one sign-off per person. Nothing authenticates a name typed
at a terminal, so each console sign-off is recorded as ``asserted``; the tier may refuse them
(``accept_asserted_signoffs: false``) and the GitHub path always does (``accept_asserted``).
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Callable

from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.policy import Policy
from promotion_gate.checklists.signoff import Action, Click, RefusedClick, Signoff, SignoffState, judge, tally
from promotion_gate.checklists.waivers import requests_of
from pydantic import ValidationError


def parse_approval(text: str, digest: str, at) -> Click:
    """``who`` approves; ``who:reject:reason`` rejects; ``who:approve:comment`` approves with a comment;
    ``who:waive:ITEM[:YYYY-MM-DD[:comment]]`` grants the manifest's waiver request for ITEM (until
    the date given, or the expiry requested)."""
    who, _, rest = text.partition(":")
    action, _, note = rest.partition(":")
    action = action or "approve"
    if action not in ("approve", "reject", "waive"):
        raise ValueError(f"sign-off {text!r}: action must be approve, reject or waive")
    if action == "waive":
        return _parse_waive(who.strip(), note, text, digest, at)
    return Click(reviewer=who.strip(), channel="console", action=Action(action), digest=digest, at=at, comment=note or None)


def _parse_waive(who: str, rest: str, text: str, digest: str, at) -> Click:
    item, _, tail = rest.partition(":")
    until, _, comment = tail.partition(":")
    try:
        expires = date.fromisoformat(until) if until else None
    except ValueError:
        raise ValueError(f"sign-off {text!r}: {until!r} is not a date (YYYY-MM-DD)") from None
    try:
        return Click(reviewer=who, channel="console", action=Action.waive, digest=digest, at=at,
                     item=item.strip(), expires=expires, comment=comment or None)
    except ValidationError:
        raise ValueError(f"sign-off {text!r}: give who:waive:PG-XXX-000[:YYYY-MM-DD]") from None


def _ask(checklist: Checklist, quorum: dict[str, int]) -> list[str]:
    needs = ", ".join(f"{n} {role}" for role, n in quorum.items())
    print(f"{checklist.system}: sign-off needed ({needs}); digest {checklist.digest[:12]}")
    answers = []
    for _ in range(sum(quorum.values()) + len(checklist.waiver_requests)):
        answer = input("reviewer (name, name:reject:reason or name:waive:ITEM; empty to stop): ").strip()
        if not answer:
            break
        answers.append(answer)
    return answers


def collect_console_signoffs(
    policy: Policy, checklist: Checklist, approvals: list[str] | None, excluded: set[str], now: Callable,
    accept_asserted: bool = True,
) -> tuple[list[Signoff], list[RefusedClick], SignoffState]:
    quorum = checklist.signoff.quorum
    if approvals is None:
        approvals = _ask(checklist, quorum) if sys.stdin.isatty() else []
    given: list[Signoff] = []
    refused: list[RefusedClick] = []
    requests = requests_of(checklist)
    for text in approvals:
        click = parse_approval(text, checklist.digest, now())
        verdict = judge(click, policy=policy, quorum=quorum, digest=checklist.digest, excluded=excluded,
                        given=given, waiting=tally(quorum, given, requests).status == "waiting",
                        accept_asserted=accept_asserted and checklist.signoff.accept_asserted_signoffs,
                        waivers=requests)
        (given if isinstance(verdict, Signoff) else refused).append(verdict)
    return given, refused, tally(quorum, given, requests)
