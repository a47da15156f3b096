"""What each answer does to a waiting promotion, and what the sweeper owes it (pure, tables)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from prefect.client.schemas.objects import StateType

from promotion_gate.checklists.signoff import Action, Click
from promotion_gate.flows.expiry import due, ended_line
from promotion_gate.config.policy_source import load_policy
from promotion_gate.slack_api.signoff import Progress, apply_answer, closing_line
from promotion_gate.notifications.slack_interactions import MessageRef, SignoffAnswer, WaitingPromotion

T0 = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
DIGEST = "ab" * 32
POLICY = load_policy()
RECORD = WaitingPromotion(
    run="0b5f0e4e-9d1c-4a57-9a0e-4d1f2b3c4d5e", key="acme/models#7@" + "c" * 40 + ":support-assistant",
    system="support-assistant", commit="c" * 40, digest=DIGEST, quorum={"security": 1, "risk": 1},
    excluded=["dana"], posted_at=T0, deadline=T0 + timedelta(hours=48), remind_at=T0 + timedelta(hours=24),
    messages=[MessageRef(role="risk", channel="C0RISK", ts="1.1"), MessageRef(role="security", channel="C0SEC", ts="1.2")],
)


def click(user: str, role: str, action: Action = Action.approve, hours: float = 1, digest: str = DIGEST,
          comment: str | None = None) -> SignoffAnswer:
    at = T0 + timedelta(hours=hours)
    return SignoffAnswer(kind="click", at=at, click=Click(reviewer=user, channel="slack", action=action, digest=digest,
                                                          at=at, role=role, comment=comment))


def fold(*answers: SignoffAnswer) -> Progress:
    progress = Progress()
    for answer in answers:
        progress = apply_answer(progress, answer, policy=POLICY, record=RECORD)
    return progress


@pytest.mark.parametrize("answers, counted, refused, status", [
    ([click("U0SAM", "security"), click("U0RENE", "risk")], ["sam", "rene"], [], "approved"),
    ([click("U0SAM", "security")], ["sam"], [], "waiting"),
    ([click("U0SAM", "security"), click("U0SAM", "security", hours=2)], ["sam"],
     ["sam has already signed off this promotion"], "waiting"),
    ([click("U0DANA", "security")], [], ["dana requested, authored or committed this change and may not sign it off"], "waiting"),
    ([click("U0SAM", "security", digest="00" * 32)], [],
     ["the evidence changed since this request: the approved digest no longer matches"], "waiting"),
    ([click("U0SAM", "security", hours=48)], [], ["the time limit for sign-off had passed"], "waiting"),
    ([click("U0RENE", "risk", Action.reject, comment="too risky")], ["rene"], [], "rejected"),
])
def test_clicks_are_judged_again_in_the_flow(answers, counted, refused, status):
    progress = fold(*answers)
    assert [s.identity for s in progress.signoffs] == counted
    assert [r.reason for r in progress.refused] == refused
    assert progress.state(RECORD.quorum).status == status


def test_user_group_membership_is_the_gateways_and_member_lists_are_checked_again():
    """The gateway sends a click only after usergroups.users.list showed the user in the role's group,
    so the role on a click is taken as checked; a role without a Slack group is checked against its members."""
    by_email = SignoffAnswer(kind="click", at=T0, click=Click(reviewer="U0NEW", channel="slack", action=Action.approve,
                                                              digest=DIGEST, at=T0, role="security", email="sam@example.com"))
    progress = fold(by_email)  # an unmapped Slack id carrying sam's email is not sam: the id decides
    assert progress.signoffs == [] and [r.code for r in progress.refused] == ["identity-conflict"]
    platform = RECORD.model_copy(update={"quorum": {"platform": 1}})
    progress = apply_answer(Progress(), click("U0JORDAN", "platform"), policy=POLICY, record=platform)
    assert [r.reason for r in progress.refused] == ["jordan does not hold the role this sign-off needs (platform)"]


@pytest.mark.parametrize("answer, expired, withdrawn, open_", [
    (SignoffAnswer(kind="expire", at=T0 + timedelta(hours=47)), False, None, True),   # early: ignored
    (SignoffAnswer(kind="expire", at=T0 + timedelta(hours=48)), True, None, False),
    (SignoffAnswer(kind="void", at=T0, reason="superseded by 1234567"), False, "superseded by 1234567", False),
    (SignoffAnswer(kind="remind", at=T0 + timedelta(hours=24)), False, None, True),
])
def test_the_deadline_a_void_and_a_reminder(answer, expired, withdrawn, open_):
    progress = fold(answer)
    assert (progress.expired, progress.withdrawn, progress.is_open(RECORD.quorum)) == (expired, withdrawn, open_)


@pytest.mark.parametrize("answers, line", [
    ([], None),
    ([click("U0SAM", "security"), click("U0RENE", "risk")], "Approved: every required sign-off was given"),
    ([click("U0RENE", "risk", Action.reject, comment="drill too small")], "Rejected by rene (risk): drill too small"),
    ([click("U0RENE", "risk", Action.reject)], "Rejected by rene (risk): no reason given"),
    ([SignoffAnswer(kind="expire", at=T0 + timedelta(hours=49))], "Expired: no quorum within 48 h"),
    ([SignoffAnswer(kind="void", at=T0, reason="the label was removed")], "Withdrawn: the label was removed"),
])
def test_the_line_that_replaces_the_buttons(answers, line):
    assert closing_line(fold(*answers), RECORD, 48) == line


@pytest.mark.parametrize("now, changes, owed", [
    (T0 + timedelta(hours=1), {}, None),
    (T0 + timedelta(hours=24), {}, "remind"),
    (T0 + timedelta(hours=30), {"reminded": True}, None),
    (T0 + timedelta(hours=48), {"reminded": True}, "expire"),
    (T0 + timedelta(hours=48), {}, "expire"),
    (T0 + timedelta(hours=49), {"status": "closed"}, None),
])
def test_what_the_sweeper_owes_a_waiting_promotion(now, changes, owed):
    assert due(RECORD.model_copy(update=changes), now) == owed


@pytest.mark.parametrize("state, reason, line", [
    (SimpleNamespace(type=StateType.CANCELLED, name="Cancelled", message=None), "superseded by 1234567",
     "Withdrawn: superseded by 1234567"),
    (SimpleNamespace(type=StateType.CANCELLED, name="Cancelled", message=None), None,
     "Withdrawn: the promotion run was cancelled"),
    (SimpleNamespace(type=StateType.CRASHED, name="Crashed", message="x"), None,
     "Closed: the promotion run crashed; nothing was promoted"),
    (SimpleNamespace(type=StateType.COMPLETED, name="Completed", message=None), None,
     "Closed: the promotion was decided without this sign-off (see the report)"),
])
def test_the_line_for_a_run_that_ended_without_closing_its_requests(state, reason, line):
    assert ended_line(state, reason) == line
