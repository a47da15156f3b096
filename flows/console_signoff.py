"""The console sign-off channel: approvals named on the command line, or asked at the terminal.

It goes through the same judge and tally as Slack clicks, so the same rules hold: role,
separation of duties, the digest, one sign-off per person.
"""

from __future__ import annotations

import sys
from typing import Callable

from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.policy import Policy
from promotion_gate.checklists.signoff import Action, Click, RefusedClick, Signoff, SignoffState, judge, tally


def parse_approval(text: str, digest: str, at) -> Click:
    """``who`` approves; ``who:reject:reason`` rejects; ``who:approve:comment`` approves with a comment."""
    who, _, rest = text.partition(":")
    action, _, note = rest.partition(":")
    action = action or "approve"
    if action not in ("approve", "reject"):
        raise ValueError(f"sign-off {text!r}: action must be approve or reject")
    return Click(reviewer=who.strip(), channel="console", action=Action(action), digest=digest, at=at, comment=note or None)


def _ask(checklist: Checklist, quorum: dict[str, int]) -> list[str]:
    needs = ", ".join(f"{n} {role}" for role, n in quorum.items())
    print(f"{checklist.system}: sign-off needed ({needs}); digest {checklist.digest[:12]}")
    answers = []
    for _ in range(sum(quorum.values())):
        answer = input("reviewer (name, or name:reject:reason; empty to stop): ").strip()
        if not answer:
            break
        answers.append(answer)
    return answers


def collect_console_signoffs(
    policy: Policy, checklist: Checklist, approvals: list[str] | None, excluded: set[str], now: Callable,
) -> tuple[list[Signoff], list[RefusedClick], SignoffState]:
    quorum = checklist.signoff.quorum
    if approvals is None:
        approvals = _ask(checklist, quorum) if sys.stdin.isatty() else []
    given: list[Signoff] = []
    refused: list[RefusedClick] = []
    for text in approvals:
        click = parse_approval(text, checklist.digest, now())
        verdict = judge(click, policy=policy, quorum=quorum, digest=checklist.digest, excluded=excluded,
                        given=given, waiting=tally(quorum, given).status == "waiting")
        (given if isinstance(verdict, Signoff) else refused).append(verdict)
    return given, refused, tally(quorum, given)
