"""Waivers granted in Slack (issue 9 point 8): the fold of Grant clicks (a table, pure), then end to end:
the gate deployment under Prefect's harness, the fake Slack, clicks signed for real through the gateway.

A manifest's `waivers:` entry is a request; only a Grant click by a policy identity of a role the
policy lets waive the item, bound to the digest, within the requested and the tier's expiry, and by
someone who neither asked, authored nor committed the change, turns the failed item into waived."""

from __future__ import annotations

import subprocess
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from promotion_gate.checklists.decision import Verdict
from promotion_gate.checklists.results import Outcome, WaiverRequest
from promotion_gate.checklists.signoff import Action, Click
from promotion_gate.config.policy_source import load_policy
from promotion_gate.config.settings import load_settings
from promotion_gate.slack_api.signoff import Progress, apply_answer, closing_line, roles_asked
from promotion_gate.prefect_api.waiting import read_waiting, send_answer
from promotion_gate.notifications.slack_interactions import (ACTION_APPROVE, ACTION_WAIVE, MessageRef, SignoffAnswer, WaitingPromotion,
                                                             answer_seal_key, seal_answer)
from tests.fakes.fixtures import fake_slack, slack_server  # noqa: F401
from tests.slack_support import (  # noqa: F401
    SECRET, decision_of, gate_deployment, gateway, post_interaction, report_of, slack_env, start_gate, wait_final, wait_suspended,
)
from tests.test_flow_waivers import commit_change
from tests.test_hostile import CANDIDATE_LOW, promptfoo

T0 = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
DIGEST = "cd" * 32
POLICY = load_policy()
E3 = WaiverRequest(item="PG-EVAL-003", reason="the retriever fix lands next sprint", expires=date(2026, 12, 4),
                   asked_of="nobody in particular", waivable_by=["risk"], latest_expiry=date(2027, 2, 22))
KEY = answer_seal_key("the-signing-secret")
RECORD = WaitingPromotion(
    run="0b5f0e4e-9d1c-4a57-9a0e-4d1f2b3c4d5e", key="/repo@" + "c" * 40 + ":helpdesk-summarizer",
    system="helpdesk-summarizer", commit="c" * 40, digest=DIGEST, quorum={}, excluded=["dana"], posted_at=T0,
    deadline=T0 + timedelta(hours=72), remind_at=T0 + timedelta(hours=36),
    messages=[MessageRef(role="risk", channel="C0RISK", ts="1.1")], waivers={E3.item: E3},
)


def grant(user: str, role: str = "risk", item: str = "PG-EVAL-003", expires: date | None = None, digest: str = DIGEST,
          hours: float = 1) -> SignoffAnswer:
    at = T0 + timedelta(hours=hours)
    return seal_answer(SignoffAnswer(kind="click", at=at, click=Click(reviewer=user, channel="slack", action=Action.waive,
                                                                      digest=digest, at=at, role=role, item=item, expires=expires)),
                       RECORD.run, KEY)


def fold(*answers: SignoffAnswer, record: WaitingPromotion = RECORD) -> Progress:
    progress = Progress()
    for answer in answers:
        progress = apply_answer(progress, answer, policy=POLICY, record=record, key=KEY)
    return progress


OLD_RECORD = WaitingPromotion.model_validate(RECORD.model_dump(exclude={"waivers"}))  # written before waivers were kept


@pytest.mark.parametrize("answers, record, granted, refused, status", [
    ([grant("U0RENE")], RECORD, ["rene"], [], "approved"),
    ([], RECORD, [], [], "waiting"),                                                    # the request alone waives nothing
    ([grant("U0DANA")], RECORD, [], ["dana requested, authored or committed this change and may not sign it off"], "waiting"),
    ([grant("U0SAM", role="security")], RECORD, [], ["sam does not hold a role that may waive PG-EVAL-003 (risk)"], "waiting"),
    ([grant("U0RENE", item="PG-EVAL-004")], RECORD, [], ["this promotion has no grantable waiver request for PG-EVAL-004"], "waiting"),
    ([grant("U0RENE", item="PG-MANIFEST-001")], RECORD, [], ["PG-MANIFEST-001 can never be waived"], "waiting"),
    ([grant("U0RENE", expires=date(2026, 12, 31))], RECORD, [],
     ["a grant until 2026-12-31 is longer than the 2026-12-04 requested"], "waiting"),
    ([grant("U0RENE", expires=date(2027, 3, 1))], RECORD.model_copy(update={"waivers": {E3.item: E3.model_copy(update={"expires": date(2027, 6, 1)})}}),
     [], ["a grant until 2027-03-01 is beyond the policy's limit (2027-02-22)"], "waiting"),
    ([grant("U0RENE", expires=date(2026, 11, 20))], RECORD, [], ["a grant until 2026-11-20 has already expired"], "waiting"),
    ([grant("U0RENE", digest="00" * 32)], RECORD, [],
     ["the evidence changed since this request: the approved digest no longer matches"], "waiting"),
    ([grant("U0RENE", hours=72)], RECORD, [], ["the time limit for sign-off had passed"], "waiting"),
    ([grant("U0RENE"), grant("U0JORDAN", hours=2)], RECORD, ["rene"], ["the waiver of PG-EVAL-003 is already granted"], "approved"),
    ([grant("U0RENE")], OLD_RECORD, [], ["this promotion has no grantable waiver request for PG-EVAL-003"], "approved"),
], ids=["risk-grants", "no-grant", "requester", "other-role", "not-requested", "never-waivable",
        "longer-than-requested", "beyond-tier-limit", "already-expired", "stale-digest", "too-late", "second-grant",
        "record-without-requests"])
def test_grant_clicks_are_judged_against_the_requests_kept_on_the_record(answers, record, granted, refused, status):
    """(Slack user-group membership is the gateway's, checked at click time: a security reviewer on the
    risk message is refused there, in the end-to-end test below.)"""
    progress = fold(*answers, record=record)
    assert [s.identity for s in progress.signoffs] == granted
    assert [r.reason for r in progress.refused] == refused
    assert progress.state(record.quorum, record.waivers).status == status


def test_a_granted_waiver_closes_the_request_and_the_roles_asked_include_the_grantors():
    done = fold(grant("U0RENE"))
    assert closing_line(done, RECORD, 72) == "Approved: every required sign-off was given"
    assert closing_line(fold(), RECORD, 72) is None
    assert roles_asked({}, {E3.item: E3}) == ["risk"]
    assert roles_asked({"platform": 1, "risk": 1}, {E3.item: E3}) == ["platform", "risk"]   # risk asked once
    assert roles_asked({"platform": 1}, {}) == ["platform"]


# end to end


SYSTEM = "helpdesk-summarizer"


@pytest.fixture()
def failing_with_request(example_repo):
    """A low-tier system whose regression suite fails PG-EVAL-003, with a waiver the team wrote for it."""
    repo, _ = example_repo
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # the flow judges with the clock
    expires = (datetime.now(timezone.utc) + timedelta(days=10)).date()
    manifest = yaml.safe_load((repo / f"ai-systems/{SYSTEM}/promotion.yaml").read_text())
    manifest["waivers"] = [{"item": "PG-EVAL-003", "approver": "nobody in particular",
                            "reason": "the retriever fix lands next sprint", "expires": expires}]
    commit = commit_change(repo, {
        f"ai-systems/{SYSTEM}/promotion.yaml": yaml.safe_dump(manifest, sort_keys=False),
        f"ai-systems/{SYSTEM}/evals/promptfoo.json": promptfoo((CANDIDATE_LOW, 80, 60), stamp=stamp),
    })
    return repo, commit, expires


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def store() -> Path:
    return Path(load_settings().audit_store)


def grant_click(fake, gateway, user: str, channel: str = "C0RISK", item: str = "PG-EVAL-003"):
    message = fake.messages(channel)[0]
    return post_interaction(gateway, fake.click(channel, message["ts"], f"{ACTION_WAIVE}:{item}", user))


@pytest.mark.usefixtures("gate_deployment")
def test_a_grant_in_slack_by_risk_promotes_and_the_requesters_own_grant_is_refused(failing_with_request, slack_env, gateway):
    repo, commit, expires = failing_with_request
    fake = slack_env
    run = start_gate(repo, commit, system=SYSTEM)
    record = wait_suspended(run)
    assert [(m.role, m.channel) for m in record.messages] == [("risk", "C0RISK")]     # low tier: no quorum, the grantor asked
    assert list(record.waivers) == ["PG-EVAL-003"] and record.waivers["PG-EVAL-003"].waivable_by == ["risk"]
    assert fake.messages("C0SEC") == []
    assert "Grant waiver of PG-EVAL-003" in str(fake.messages("C0RISK")[0]["blocks"])

    assert grant_click(fake, gateway, "U0DANA").status_code == 200                  # the requester grants her own waiver
    assert grant_click(fake, gateway, "U0SAM").status_code == 200                   # security may not waive PG-EVAL-003
    assert read_waiting(run).seen == 0                                               # neither woke the flow
    assert grant_click(fake, gateway, "U0RENE").status_code == 200
    wait_final(run)

    decision = decision_of(store(), SYSTEM)
    assert decision.verdict == Verdict.promoted, decision.reasons
    (waived,) = [r for r in decision.checklist.results if r.outcome == Outcome.waived]
    w = waived.waiver
    assert (waived.id, w.approver, w.role, w.channel, w.expires, w.waived_outcome) == (
        "PG-EVAL-003", "rene", "risk", "slack", expires, Outcome.fail)
    assert w.granted_at is not None and w.granted_at.date() == datetime.now(timezone.utc).date()
    assert [(s.identity, s.action, s.item, s.authentication) for s in decision.signoffs] == [
        ("rene", Action.waive, "PG-EVAL-003", "authenticated")]
    assert {(c.reviewer, c.reason) for c in decision.refused} == {
        ("U0DANA", "dana requested, authored or committed this change and may not sign it off"),
        ("U0SAM", "sam does not hold a role that may waive PG-EVAL-003 (risk)"),
    }
    recorded = next((store() / "decisions").glob("*/decision.json")).read_text()
    assert '"approver":"rene"' in recorded.replace(" ", "") and str(expires) in recorded
    assert "rene" in report_of(store()) and "PG-EVAL-003" in report_of(store())
    assert "Approved: every required sign-off was given" in str(fake.messages("C0RISK")[0]["blocks"])
    assert git(repo, "branch", "--list", f"promote/{SYSTEM}/{commit[:7]}")
    assert [c.status for c in fake.calls("chat.postMessage")] == [200]              # the resumed run asked nobody again


@pytest.mark.usefixtures("gate_deployment")
def test_without_a_grant_the_wait_expires_blocked_and_is_never_promoted(failing_with_request, slack_env, gateway):
    repo, commit, _ = failing_with_request
    fake = slack_env
    run = start_gate(repo, commit, system=SYSTEM)
    record = wait_suspended(run)
    assert ACTION_APPROVE not in str(fake.messages("C0RISK")[0]["blocks"])            # asked to grant, not to approve
    assert grant_click(fake, gateway, "U0DANA").status_code == 200                  # the requester, refused and recorded
    expire = seal_answer(SignoffAnswer(kind="expire", at=record.deadline), run, answer_seal_key(SECRET))
    assert send_answer(run, expire) == "sent"                                       # what the sweeper sends, sealed
    wait_final(run)
    decision = decision_of(store(), SYSTEM)
    assert decision.verdict == Verdict.blocked                                      # the item stays failed: it blocks
    (reason,) = decision.reasons
    assert reason.startswith("PG-EVAL-003: ") and "waiver requested until" in reason and "needs a grant by risk" in reason
    assert [r.id for r in decision.checklist.failures] == ["PG-EVAL-003"] and not decision.signoffs
    assert [c.reason for c in decision.refused] == ["dana requested, authored or committed this change and may not sign it off"]
    shown = str(fake.messages("C0RISK")[0]["blocks"])
    assert "Expired: no quorum within 72 h" in shown and ACTION_WAIVE not in shown      # closed: no button left
    assert git(repo, "branch", "--list", f"promote/{SYSTEM}/*") == ""
