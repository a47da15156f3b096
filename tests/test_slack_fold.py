"""What each answer does to a waiting promotion, and what the sweeper owes it (pure, tables)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from prefect.client.schemas.objects import StateType

from promotion_gate.checklists.signoff import Action, Click
from promotion_gate.flows.expiry import due, ended_line
from promotion_gate.config.policy_source import load_policy
from promotion_gate.slack_api.signoff import UNSEALED, UNSEALED_RESUME, Progress, apply_answer, closing_line
from promotion_gate.notifications.slack_interactions import (MessageRef, SignoffAnswer, WaitingPromotion, answer_seal_key,
                                                             seal_answer, seal_holds)
from promotion_gate.prefect_api.waiting import SignoffInput

T0 = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
DIGEST = "ab" * 32
POLICY = load_policy()
RECORD = WaitingPromotion(
    run="0b5f0e4e-9d1c-4a57-9a0e-4d1f2b3c4d5e", key="acme/models#7@" + "c" * 40 + ":support-assistant",
    system="support-assistant", commit="c" * 40, digest=DIGEST, quorum={"security": 1, "risk": 1},
    excluded=["dana"], posted_at=T0, deadline=T0 + timedelta(hours=48), remind_at=T0 + timedelta(hours=24),
    messages=[MessageRef(role="risk", channel="C0RISK", ts="1.1"), MessageRef(role="security", channel="C0SEC", ts="1.2")],
)


KEY = answer_seal_key("the-signing-secret")


def unsealed(user: str, role: str, action: Action = Action.approve, hours: float = 1, digest: str = DIGEST,
             comment: str | None = None, interaction: str | None = None) -> SignoffAnswer:
    at = T0 + timedelta(hours=hours)
    return SignoffAnswer(kind="click", at=at, interaction=interaction,
                         click=Click(reviewer=user, channel="slack", action=action, digest=digest, at=at, role=role,
                                     comment=comment))


def click(user: str, role: str, action: Action = Action.approve, hours: float = 1, digest: str = DIGEST,
          comment: str | None = None, interaction: str | None = None) -> SignoffAnswer:
    """A click as the gateway sends it: sealed for the run (with the Slack interaction it came from)."""
    return seal_answer(unsealed(user, role, action, hours, digest, comment, interaction), RECORD.run, KEY)


def fold(*answers: SignoffAnswer) -> Progress:
    progress = Progress()
    for answer in answers:
        progress = apply_answer(progress, answer, policy=POLICY, record=RECORD, key=KEY)
    return progress


def tampered(answer: SignoffAnswer, **click_fields) -> SignoffAnswer:
    """A sealed answer whose click was changed afterwards (the seal kept)."""
    return answer.model_copy(update={"click": answer.click.model_copy(update=click_fields)})


#   how an answer reaches the flow without the gateway, and what counts (nothing but the last row)
FORGED = [
    ("resumed through the Prefect API, no seal", unsealed("U0SAM", "security"), []),
    ("sealed for another run", seal_answer(unsealed("U0SAM", "security"), "11111111-2222-4333-8444-555555555555", KEY), []),
    ("sealed with another key", seal_answer(unsealed("U0SAM", "security"), RECORD.run, answer_seal_key("a-guess")), []),
    ("a sealed click given another role", tampered(click("U0SAM", "security"), role="risk"), []),
    ("a sealed click given another reviewer", tampered(click("U0SAM", "security"), reviewer="U0RENE"), []),
    ("a sealed click given another time", tampered(click("U0SAM", "security"), at=T0 + timedelta(hours=2)), []),
    ("a seal copied from another click", click("U0SAM", "security").model_copy(
        update={"click": click("U0RENE", "risk").click}), []),
    ("a reject turned into an approval", tampered(click("U0RENE", "risk", Action.reject, comment="no"), action=Action.approve), []),
    ("as the gateway sends it", click("U0SAM", "security"), ["sam"]),
]


@pytest.mark.parametrize("name, answer, counted", FORGED, ids=[row[0] for row in FORGED])
def test_only_a_click_the_gateway_sealed_for_this_run_counts(name, answer, counted):
    progress = fold(answer)
    assert [s.identity for s in progress.signoffs] == counted
    if not counted:
        assert [(r.code, r.reason) for r in progress.refused] == [("unsealed", UNSEALED)]
        assert progress.state(RECORD.quorum).status == "waiting"


def test_the_seal_survives_the_trip_through_the_server_as_plain_json():
    """The flow gets the answer back from Prefect as JSON validated into SignoffInput: the seal still holds."""
    sent = click("U0SAM", "security", comment="{{ flow_run.id }} looks fine")
    back = SignoffInput.model_validate(json.loads(json.dumps(SignoffInput.model_validate(sent.model_dump()).model_dump(mode="json"))))
    assert seal_holds(back, RECORD.run, KEY) and [s.identity for s in fold(back).signoffs] == ["sam"]


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


A, B, R = "a" * 64, "b" * 64, "c" * 64  # the Slack interactions (a digest of each signed request)

#   one Slack interaction reaching the flow more than once: a captured signed request replayed to a
#   second gateway process or after a restart (judged and sealed again, at that process's time), or
#   a kept copy delivered as well: it is applied once, whatever its time; (answers, counted, refused, status)
REPEATS = [
    ("the approve twice", [click("U0SAM", "security", interaction=A), click("U0SAM", "security", interaction=A)],
     [("sam", Action.approve)], [], "waiting"),
    ("the approve again, judged later by another gateway process",
     [click("U0SAM", "security", interaction=A), click("U0SAM", "security", hours=1.05, interaction=A)],
     [("sam", Action.approve)], [], "waiting"),
    ("approve, reject, the approve replayed",
     [click("U0SAM", "security", interaction=A), click("U0SAM", "security", Action.reject, 1.02, interaction=R),
      click("U0SAM", "security", hours=1.04, interaction=A)],
     [("sam", Action.approve), ("sam", Action.reject)], [], "rejected"),
    ("a refused click replayed", [click("U0DANA", "security", interaction=A), click("U0DANA", "security", hours=1.05, interaction=A)],
     [], ["dana requested, authored or committed this change and may not sign it off"], "waiting"),
    ("two clicks, two interactions: the second is judged", [click("U0SAM", "security", interaction=A),
                                                            click("U0SAM", "security", hours=2, interaction=B)],
     [("sam", Action.approve)], ["sam has already signed off this promotion"], "waiting"),
    ("a copy without the seal takes no interaction", [unsealed("U0SAM", "security", interaction=A),
                                                      click("U0SAM", "security", interaction=A)],
     [("sam", Action.approve)], [UNSEALED], "waiting"),
]


@pytest.mark.parametrize("name, answers, counted, refused, status", REPEATS, ids=[row[0] for row in REPEATS])
def test_one_slack_interaction_is_applied_once_however_often_it_arrives(name, answers, counted, refused, status):
    progress = fold(*answers)
    assert [(s.identity, s.action) for s in progress.signoffs] == counted
    assert [r.reason for r in progress.refused] == refused
    assert progress.state(RECORD.quorum).status == status


def test_user_group_membership_is_the_gateways_and_member_lists_are_checked_again():
    """The gateway sends a click only after usergroups.users.list showed the user in the role's group,
    so the role on a click is taken as checked; a role without a Slack group is checked against its members."""
    by_email = seal_answer(SignoffAnswer(kind="click", at=T0, click=Click(reviewer="U0NEW", channel="slack", action=Action.approve,
                                                                          digest=DIGEST, at=T0, role="security", email="sam@example.com")),
                           RECORD.run, KEY)
    progress = fold(by_email)  # an unmapped Slack id carrying sam's email is not sam: the id decides
    assert progress.signoffs == [] and [r.code for r in progress.refused] == ["identity-conflict"]
    platform = RECORD.model_copy(update={"quorum": {"platform": 1}})
    progress = apply_answer(Progress(), click("U0JORDAN", "platform"), policy=POLICY, record=platform, key=KEY)
    assert [r.reason for r in progress.refused] == ["jordan does not hold the role this sign-off needs (platform)"]


def sealed(kind: str, hours: float, reason: str | None = None, run: str = RECORD.run, key: bytes = KEY) -> SignoffAnswer:
    """A reminder, the deadline or a void as their senders send them: sealed for the run."""
    return seal_answer(SignoffAnswer(kind=kind, at=T0 + timedelta(hours=hours), reason=reason), run, key)


@pytest.mark.parametrize("answer, expired, withdrawn, open_, reminder", [
    (sealed("expire", 47), False, None, True, False),   # early: ignored
    (sealed("expire", 48), True, None, False, False),
    (sealed("void", 0, "superseded by 1234567"), False, "superseded by 1234567", False, False),
    (sealed("remind", 24), False, None, True, True),
    (sealed("remind", 23), False, None, True, False),   # early: ignored
])
def test_the_deadline_a_void_and_a_reminder(answer, expired, withdrawn, open_, reminder):
    progress = fold(answer)
    assert (progress.expired, progress.withdrawn, progress.is_open(RECORD.quorum), progress.reminder) == (
        expired, withdrawn, open_, reminder)
    assert progress.refused_resumes == []


OTHER_RUN = "11111111-2222-4333-8444-555555555555"

#   how an expiry, a void or a reminder reaches the flow without its sender: none acts, each is refused and the wait goes on
FORGED_ENDINGS = [
    ("an expire resumed through the Prefect API, no seal", SignoffAnswer(kind="expire", at=T0 + timedelta(hours=49))),
    ("an expire dated a year on, no seal", SignoffAnswer(kind="expire", at=T0 + timedelta(days=365))),
    ("a void resumed through the Prefect API, no seal", SignoffAnswer(kind="void", at=T0, reason="withdrawn by the team")),
    ("a reminder resumed through the Prefect API, no seal", SignoffAnswer(kind="remind", at=T0 + timedelta(hours=24))),
    ("an expire sealed for another run", sealed("expire", 49, run=OTHER_RUN)),
    ("an expire sealed with another key", sealed("expire", 49, key=answer_seal_key("a-guess"))),
    ("a void sealed for another run", sealed("void", 0, "superseded by 1234567", run=OTHER_RUN)),
    ("a sealed reminder turned into an expire", sealed("remind", 48).model_copy(update={"kind": "expire"})),
    ("a sealed early expire given a later time", sealed("expire", 47).model_copy(update={"at": T0 + timedelta(hours=49)})),
    ("a sealed void given another reason", sealed("void", 0, "superseded by 1234567").model_copy(
        update={"reason": "the label was removed"})),
    ("a sealed click turned into a void", click("U0RENE", "risk").model_copy(update={"kind": "void", "click": None})),
    ("a sealed click turned into an expire", click("U0RENE", "risk", hours=49).model_copy(update={"kind": "expire"})),
]


@pytest.mark.parametrize("name, answer", FORGED_ENDINGS, ids=[row[0] for row in FORGED_ENDINGS])
def test_only_an_expiry_a_void_or_a_reminder_its_sender_sealed_for_this_run_acts(name, answer):
    progress = fold(answer)
    assert (progress.expired, progress.withdrawn, progress.reminder, progress.is_open(RECORD.quorum)) == (False, None, False, True)
    assert [(r.kind, r.reason) for r in progress.refused_resumes] == [(answer.kind, UNSEALED_RESUME)]
    assert progress.refused == [] and closing_line(progress, RECORD, 48) is None
    after = fold(answer, click("U0SAM", "security"), click("U0RENE", "risk"))  # the wait went on: the real answers decide
    assert after.state(RECORD.quorum).status == "approved" and len(after.refused_resumes) == 1


@pytest.mark.parametrize("answers, line", [
    ([], None),
    ([click("U0SAM", "security"), click("U0RENE", "risk")], "Approved: every required sign-off was given"),
    ([click("U0RENE", "risk", Action.reject, comment="drill too small")], "Rejected by rene (risk): drill too small"),
    ([click("U0RENE", "risk", Action.reject)], "Rejected by rene (risk): no reason given"),
    ([sealed("expire", 49)], "Expired: no quorum within 48 h"),
    ([sealed("void", 0, "the label was removed")], "Withdrawn: the label was removed"),
    ([SignoffAnswer(kind="expire", at=T0 + timedelta(hours=49))], None),
    ([SignoffAnswer(kind="void", at=T0, reason="the label was removed")], None),
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


def test_what_decides_a_click_comes_from_the_flow_not_from_a_record_anyone_could_write():
    """The record is a flow-run input: a newer version written through the Prefect API with nobody
    excluded, a smaller quorum and no waivers changes nothing the flow judges with."""
    from promotion_gate.checklists.checklist import evaluate
    from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
    from promotion_gate.slack_api.signoff import as_the_flow_knows_it
    from tests.conftest import ROOT

    candidate = read_candidate(WorkingTree(ROOT / "examples" / "repo"), "support-assistant", "c" * 40)
    checklist = evaluate(candidate, POLICY, T0)
    forged = RECORD.model_copy(update={"excluded": [], "quorum": {"security": 1}, "waivers": {}, "digest": checklist.digest})
    trusted = as_the_flow_knows_it(forged, checklist, {"sam"})  # sam, a security reviewer, asked for this promotion
    assert (trusted.quorum, trusted.excluded) == (checklist.signoff.quorum, ["sam"]) and trusted.quorum
    answer = seal_answer(unsealed("U0SAM", "security", digest=checklist.digest), RECORD.run, KEY)
    for record, counted in ((forged, ["sam"]), (trusted, [])):  # the forged record alone would count the requester
        progress = apply_answer(Progress(), answer, policy=POLICY, record=record, key=KEY)
        assert [s.identity for s in progress.signoffs] == counted
    assert trusted.model_copy(update={"excluded": RECORD.excluded}) == as_the_flow_knows_it(trusted, checklist, set(RECORD.excluded))


@pytest.mark.parametrize("secret, sealed_by_it", [
    ("the-signing-secret", True),   # the worker's and the gateway's secret: the flow checks what the sweeper seals
    (None, False),                  # not set where the sweeper runs: it seals nothing, so it sends nothing
    ("   ", False),                 # blank: a mistake, never a key (logged; the rest of the sweep goes on)
])
def test_the_sweeper_seals_with_the_key_the_flow_checks(secret, sealed_by_it):
    from pydantic import SecretStr

    from promotion_gate.config.settings import Settings
    from promotion_gate.flows.expiry import sweeper_key

    key = sweeper_key(Settings(slack_signing_secret=SecretStr(secret) if secret is not None else None))
    assert (key is not None) == sealed_by_it
    if key is not None:
        expire = seal_answer(SignoffAnswer(kind="expire", at=RECORD.deadline), RECORD.run, key)
        assert fold(expire).expired and fold(expire).refused_resumes == []
