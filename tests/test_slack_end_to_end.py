"""Sign-off in Slack end to end: the gate deployment served under Prefect's harness, the fake Slack,
the signed interaction route. Each run suspends while it waits (no process alive) and is resumed
by the answers; each test asserts the end state: the decision, the branch, the Slack messages."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

from promotion_gate.checklists.decision import Decision, Verdict
from promotion_gate.checklists.signoff import Action, Click
from promotion_gate.flows.expiry import close_voided, sweep_signoffs
from promotion_gate.prefect_api.gate_runs import void_gate_runs
from promotion_gate.config.settings import load_settings
from promotion_gate.prefect_api.waiting import read_run_state, read_waiting, send_answer
from promotion_gate.notifications.slack_interactions import (
    ACTION_APPROVE, ACTION_COMMENT, ACTION_REASON, ACTION_REJECT, BLOCK_COMMENT, BLOCK_REASON, SignoffAnswer,
    SignoffTarget, answer_seal_key, seal_answer, seal_holds,
)
from tests.conftest import ROOT
from tests.fakes import FakeSlack
from tests.fakes.fixtures import fake_slack, slack_server  # noqa: F401
from tests.fakes.slack_payloads import click_payload
from tests.slack_support import (  # noqa: F401
    SECRET,
    gate_deployment, gateway, post_interaction, slack_env, start_gate, wait_final, wait_suspended,
    decision_of, report_of,
)

pytestmark = pytest.mark.usefixtures("gate_deployment")
COMMENT = "redaction checked; {{ flow_run.name }} and {\"__prefect_kind\": \"jinja\"} stay text"


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def store() -> Path:
    return Path(load_settings().audit_store)


def payload(fake, channel: str, user: str, action: str = ACTION_APPROVE) -> dict:
    return fake.click(channel, fake.messages(channel)[0]["ts"], action, user)


def click(fake, gateway, channel: str, user: str, action: str = ACTION_APPROVE, **kwargs):
    return post_interaction(gateway, payload(fake, channel, user, action), **kwargs)


def blocks(fake, channel: str) -> str:
    return json.dumps(fake.messages(channel)[0]["blocks"])


def ephemeral_texts(fake) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in fake.ephemerals():
        out.setdefault(e["user"], []).append(e["text"])
    return out


def test_quorum_from_two_roles_promotes_and_every_refused_click_is_recorded(example_repo, slack_env, gateway):
    repo, commit = example_repo
    fake = slack_env
    fake.fail_next("chat.postMessage", error="ratelimited", retry_after=0)
    fake.fail_next("chat.postMessage", status=500)
    run = start_gate(repo, commit)
    record = wait_suspended(run)
    assert [(m.role, m.channel) for m in record.messages] == [("risk", "C0RISK"), ("security", "C0SEC")]
    assert [c.status for c in fake.calls("chat.postMessage")] == [429, 500, 200, 200]

    assert click(fake, gateway, "C0SEC", "U0DANA").status_code == 200          # the requester
    assert click(fake, gateway, "C0SEC", "U0JORDAN").status_code == 200        # risk, not security
    assert click(fake, gateway, "C0SEC", "U0OUT").status_code == 200           # nobody the policy knows
    stale = payload(fake, "C0SEC", "U0SAM")
    target = SignoffTarget.decode(stale["actions"][0]["value"])
    stale["actions"][0]["value"] = target.model_copy(update={"digest": "0" * 64}).encode()
    assert post_interaction(gateway, stale).status_code == 200                  # a digest that no longer matches
    forged = click(fake, gateway, "C0SEC", "U0SAM", secret="not-the-signing-secret")
    replayed = click(fake, gateway, "C0SEC", "U0SAM", timestamp=int(time.time()) - 360)
    assert (forged.status_code, forged.json()["error"]) == (401, "the Slack signature does not match")
    assert (replayed.status_code, replayed.json()["error"]) == (401, "the request is more than 5 minutes old (a replayed click)")
    assert read_waiting(run).seen == 0 and read_run_state(run).is_paused()    # none of it woke the flow

    approve = payload(fake, "C0SEC", "U0SAM")
    approve["state"] = {"values": {BLOCK_COMMENT: {ACTION_COMMENT: {"type": "plain_text_input", "value": COMMENT}}}}
    assert post_interaction(gateway, approve).status_code == 200
    wait_suspended(run, seen=1)
    assert "sam (security) approved" in blocks(fake, "C0RISK") and "Still needed:* 1 risk" in blocks(fake, "C0RISK")
    assert click(fake, gateway, "C0SEC", "U0SAM").status_code == 200           # a double click
    assert click(fake, gateway, "C0RISK", "U0RENE").status_code == 200
    wait_final(run)

    decision = decision_of(store())
    assert decision.verdict == Verdict.promoted, decision.reasons
    assert {(s.identity, s.role, s.reviewer, s.comment) for s in decision.signoffs} == {
        ("sam", "security", "U0SAM", COMMENT), ("rene", "risk", "U0RENE", None)}
    assert git(repo, "branch", "--list", f"promote/support-assistant/{commit[:7]}")
    refused = {(c.reviewer, c.reason) for c in decision.refused}
    assert refused == {
        ("U0DANA", "dana requested, authored or committed this change and may not sign it off"),
        ("U0JORDAN", "jordan does not hold the role this sign-off needs (security)"),
        ("U0OUT", "U0OUT is not a known reviewer (no identity in the policy)"),
        ("U0SAM", "the evidence changed since this request: the approved digest no longer matches"),
        ("U0SAM", "sam has already signed off this promotion"),
    }
    report = report_of(store())
    assert "Refused sign-offs" in report and "sam has already signed off this promotion" in report
    told = ephemeral_texts(fake)
    assert told["U0DANA"] == ["Your answer on the promotion of support-assistant was not counted: "
                              "dana requested, authored or committed this change and may not sign it off."]
    assert [t.split(": ", 1)[1] for t in told["U0SAM"]] == [
        "the evidence changed since this request: the approved digest no longer matches.",
        "sam has already signed off this promotion."]                           # nothing for the unverified two
    assert set(told) == {"U0DANA", "U0JORDAN", "U0OUT", "U0SAM"}
    for channel in ("C0SEC", "C0RISK"):
        assert "Approved: every required sign-off was given" in blocks(fake, channel)
        assert ACTION_APPROVE not in blocks(fake, channel)
    assert len(fake.calls("chat.update")) == 4                                 # 2 messages x 2 state changes
    with get_client(sync_client=True) as client:                               # what the gateway sent the flow
        sent = json.loads(client.read_flow_run_input(run, "suspended-signoff-1-response"))
    assert set(sent) == {"kind", "at", "click", "reason", "interaction", "seal"} and sent["click"]["comment"] == COMMENT
    assert seal_holds(SignoffAnswer.model_validate(sent), run, answer_seal_key(SECRET))  # the gateway's word, for this run
    assert set(sent["click"]) == {"reviewer", "channel", "action", "digest", "at", "role", "comment", "email",
                                 "guest", "item", "expires"}
    assert_no_secret_kept(run, decision.model_dump_json() + report)


def test_an_answer_resumed_through_the_prefect_api_without_the_gateway_counts_for_nothing(example_repo, slack_env, gateway):
    """Whoever can reach the Prefect API can resume a waiting run with any input: clicks in the names
    of platform engineers (in neither role's user group) for security and risk, with the right digest.
    Neither counts, both are on record; the real reviewers' clicks through Slack still promote."""
    repo, commit = example_repo
    fake = slack_env
    run = start_gate(repo, commit)
    record = wait_suspended(run)
    now = datetime.now(timezone.utc)
    for seen, (user, role) in enumerate([("U0PRIYA", "security"), ("U0TOMAS", "risk")], start=1):
        forged = SignoffAnswer(kind="click", at=now, click=Click(reviewer=user, channel="slack", action=Action.approve,
                                                                 digest=record.digest, at=now, role=role))
        assert send_answer(run, forged) == "sent"
        assert wait_suspended(run, seen=seen).signoffs == []
    copied = seal_answer(forged, "11111111-2222-4333-8444-555555555555", answer_seal_key(SECRET))  # sealed for another run
    assert send_answer(run, copied) == "sent"
    wait_suspended(run, seen=3)
    assert click(fake, gateway, "C0SEC", "U0SAM").status_code == 200
    wait_suspended(run, seen=4)
    assert click(fake, gateway, "C0RISK", "U0RENE").status_code == 200
    wait_final(run)
    decision = decision_of(store())
    assert decision.verdict == Verdict.promoted, decision.reasons
    assert {(s.identity, s.role, s.authentication) for s in decision.signoffs} == {
        ("sam", "security", "authenticated"), ("rene", "risk", "authenticated")}
    assert sorted((c.reviewer, c.code) for c in decision.refused) == [
        ("U0PRIYA", "unsealed"), ("U0TOMAS", "unsealed"), ("U0TOMAS", "unsealed")]
    assert "did not come from the gateway" in report_of(store())


#   a resume that would end the wait (or remind) sent through the Prefect API by someone who is not its sender
FORGED_ENDINGS = [
    ("an expire dated after the deadline", lambda record: SignoffAnswer(kind="expire", at=record.deadline + timedelta(days=1))),
    ("a void", lambda record: SignoffAnswer(kind="void", at=record.posted_at, reason="withdrawn by the team")),
    ("a reminder", lambda record: SignoffAnswer(kind="remind", at=record.remind_at)),
    ("an expire sealed for another run", lambda record: seal_answer(SignoffAnswer(kind="expire", at=record.deadline),
                                                                    "11111111-2222-4333-8444-555555555555", answer_seal_key(SECRET))),
]


def test_an_expiry_a_void_or_a_reminder_resumed_through_the_prefect_api_is_refused_and_the_wait_goes_on(
        example_repo, slack_env, gateway):
    """Whoever can reach the Prefect API resumes the waiting run with an expiry, a void and a reminder
    of their own: none is acted on (no decision, no reminder, the requests stay open), each is a logged
    refusal the decision counts, and the reviewers' clicks through Slack still promote."""
    repo, commit = example_repo
    fake = slack_env
    run = start_gate(repo, commit)
    record = wait_suspended(run)
    for seen, (_, forge) in enumerate(FORGED_ENDINGS, start=1):
        assert send_answer(run, forge(record)) == "sent"
        assert wait_suspended(run, seen=seen).status == "waiting"
    assert [m for m in fake.messages() if m.get("thread_ts")] == []  # no reminder went out
    assert ACTION_APPROVE in blocks(fake, "C0RISK")
    assert click(fake, gateway, "C0SEC", "U0SAM").status_code == 200
    wait_suspended(run, seen=len(FORGED_ENDINGS) + 1)
    assert click(fake, gateway, "C0RISK", "U0RENE").status_code == 200
    wait_final(run)
    decision = decision_of(store())
    assert decision.verdict == Verdict.promoted, decision.reasons
    assert any(f"{len(FORGED_ENDINGS)} unsealed resumes refused" in e.event for e in decision.timeline), decision.timeline
    with get_client(sync_client=True) as client:
        logs = [e.message for e in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run])))]
    assert sum("refused a resume" in m for m in logs) == len(FORGED_ENDINGS), logs
    assert_no_secret_kept(run)


def test_sealed_clicks_of_one_run_count_for_nothing_in_another_whatever_its_record_says(example_repo, slack_env, gateway):
    """Run A is approved through Slack; anyone with Prefect API access reads its sealed answers, writes a
    version of run B's record naming run A, and resumes B with them. The flow checks a seal against the
    run it runs, not a run a record names: neither counts, and B's decision names both."""
    repo, commit = example_repo
    fake = slack_env
    run_a = start_gate(repo, commit)
    wait_suspended(run_a)
    assert click(fake, gateway, "C0SEC", "U0SAM").status_code == 200
    wait_suspended(run_a, seen=1)
    assert click(fake, gateway, "C0RISK", "U0RENE").status_code == 200
    wait_final(run_a)
    with get_client(sync_client=True) as client:
        sealed = [SignoffAnswer.model_validate(json.loads(client.read_flow_run_input(run_a, f"suspended-signoff-{n}-response")))
                  for n in (1, 2)]
    run_b = start_gate(repo, commit)  # the same commit: the same digest
    record = wait_suspended(run_b)
    with get_client(sync_client=True) as client:
        client.create_flow_run_input(run_b, "promotion-gate-slack-500000",
                                     record.model_copy(update={"run": run_a, "version": 500000}).model_dump_json(), sender="attacker")
    for seen, answer in enumerate(sealed, start=1):
        assert send_answer(run_b, answer) == "sent"
        wait_suspended(run_b, seen=seen)
    void = seal_answer(SignoffAnswer(kind="void", at=record.posted_at, reason="ended by the test"), run_b, answer_seal_key(SECRET))
    assert send_answer(run_b, void) == "sent"
    wait_final(run_b)
    ours = [d for d in (Decision.model_validate_json(p.read_bytes()) for p in (store() / "decisions").glob("*/decision.json"))
            if d.verdict != Verdict.promoted]
    assert [(d.verdict, d.signoffs) for d in ours] == [(Verdict.withdrawn, [])]
    assert sorted((c.reviewer, c.code) for c in ours[0].refused) == [("U0RENE", "unsealed"), ("U0SAM", "unsealed")]


@pytest.mark.usefixtures("quick_policy")
def test_a_later_record_version_cannot_put_the_deadline_off(example_repo, slack_env, gateway):
    """A version of the record with a deadline 30 days on: the sweeper still expires the request at the
    deadline it was posted with (the record's first version), and the decision says expired."""
    repo, commit = example_repo
    run = start_gate(repo, commit)
    record = wait_suspended(run)
    with get_client(sync_client=True) as client:
        client.create_flow_run_input(run, "promotion-gate-slack-500000", record.model_copy(
            update={"deadline": record.deadline + timedelta(days=30), "version": 500000}).model_dump_json(), sender="attacker")
    assert sweep_signoffs(now=record.deadline + timedelta(seconds=1)).expired == [record.key]
    wait_final(run)
    assert decision_of(store()).verdict == Verdict.expired


def assert_no_secret_kept(run: str, *texts: str) -> None:
    """Neither the bot token nor the signing secret is in the run's inputs, parameters, logs or the records."""
    with get_client(sync_client=True) as client:
        inputs = [i.value for i in client.filter_flow_run_input(run, "", 1000, set())]
        logs = [entry.message for entry in client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run])))]
        parameters = json.dumps(client.read_flow_run(run).parameters)
    kept = "\n".join([*texts, *inputs, *logs, parameters])
    assert inputs  # (logs: whatever the runs sent at the configured level)
    assert FakeSlack.BOT_TOKEN not in kept and SECRET not in kept


def test_a_rejection_with_the_modals_reason_blocks(example_repo, slack_env, gateway):
    repo, commit = example_repo
    fake = slack_env
    run = start_gate(repo, commit)
    wait_suspended(run)
    assert click(fake, gateway, "C0RISK", "U0RENE", ACTION_REJECT).status_code == 200
    [view] = fake.views()
    assert read_waiting(run).seen == 0                                          # Reject alone decides nothing
    submitted = fake.submit_view(view["id"], "U0RENE", {BLOCK_REASON: {ACTION_REASON: "the drill covers one path of three"}})
    assert post_interaction(gateway, submitted).status_code == 200
    wait_final(run)
    decision = decision_of(store())
    assert decision.verdict == Verdict.blocked
    assert decision.reasons == ["rejected by rene (risk): the drill covers one path of three"]
    assert git(repo, "branch", "--list", "promote/*") == ""
    for channel in ("C0SEC", "C0RISK"):
        assert "Rejected by rene (risk): the drill covers one path of three" in blocks(fake, channel)
        assert ACTION_REJECT not in blocks(fake, channel)


@pytest.fixture
def quick_policy(tmp_path, monkeypatch):
    """The embedded policy with a high-tier time limit of 0.008 h (28.8 s), reminding at half of it; the
    sweeps that judge it are given their time, so no test waits on the clock."""
    text = (ROOT / "checklists/policy/policy.yaml").read_text()
    high = "signoff: {quorum: {security: 1, risk: 1}, time_limit_hours: 48, reminder_at: 0.5"
    assert text.count(high) == 1, "the high tier's sign-off line moved: update quick_policy"
    text = text.replace(high, "signoff: {quorum: {security: 1, risk: 1}, time_limit_hours: 0.008, reminder_at: 0.5")
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    monkeypatch.setenv("PROMOTION_GATE_POLICY_PATH", str(path))


@pytest.mark.usefixtures("quick_policy")
def test_no_quorum_in_time_is_reminded_then_expires_with_no_process_alive(example_repo, slack_env, gateway):
    repo, commit = example_repo
    fake = slack_env
    run = start_gate(repo, commit)
    wait_suspended(run)
    click(fake, gateway, "C0SEC", "U0SAM")
    record = wait_suspended(run, seen=1)
    assert sweep_signoffs(now=record.remind_at - timedelta(seconds=1)).reminded == []  # nothing due yet (the sweep's time is given)
    assert sweep_signoffs(now=record.remind_at).reminded == [record.key]
    record = wait_suspended(run, seen=2)
    reminders = [m for m in fake.messages() if m.get("thread_ts")]
    assert [(m["channel"], m["text"].split(";")[0]) for m in reminders] == [
        ("C0RISK", f"Reminder: support-assistant at `{commit[:7]}` still needs 1 risk sign-off")]
    assert sweep_signoffs(now=record.deadline).expired == [record.key]
    wait_final(run)
    decision = decision_of(store())
    assert decision.verdict == Verdict.expired
    assert decision.reasons == ["no quorum within 0.008 h: missing 1 risk"]
    assert [s.identity for s in decision.signoffs] == ["sam"]
    assert "Expired: no quorum within 0.008 h" in blocks(fake, "C0RISK") and ACTION_APPROVE not in blocks(fake, "C0RISK")
    assert post_interaction(gateway, payload_from_history(fake, "C0RISK", "U0RENE")).status_code == 200
    assert ephemeral_texts(fake)["U0RENE"][-1].endswith("the promotion is no longer waiting for sign-off.")


@pytest.mark.parametrize("closed_by", ["the voiding side", "the sweeper"])
def test_a_push_while_waiting_voids_the_approvals_and_closes_the_requests(example_repo, slack_env, gateway, closed_by):
    repo, commit = example_repo
    fake = slack_env
    run = start_gate(repo, commit)
    wait_suspended(run)
    click(fake, gateway, "C0SEC", "U0SAM")
    wait_suspended(run, seen=1)
    with get_client(sync_client=True) as client:                                # what the promotion-request flow does
        void_gate_runs(client, [client.read_flow_run(run)], "superseded by 1234567", key=answer_seal_key(SECRET))
    assert read_run_state(run).is_cancelled()
    if closed_by == "the voiding side":
        assert close_voided(run, "superseded by 1234567") is True
        line = "Withdrawn: superseded by 1234567"
    else:                                                                       # the reason is kept on the Cancelled state
        line = "Withdrawn: superseded by 1234567"
        state = read_run_state(run)
        assert (state.name, state.message) == ("Withdrawn", "superseded by 1234567")
    assert sweep_signoffs().closed == ([] if closed_by == "the voiding side" else [read_waiting(run).key])
    for channel in ("C0SEC", "C0RISK"):
        assert line in blocks(fake, channel) and ACTION_APPROVE not in blocks(fake, channel)
        assert "sam (security) approved" in blocks(fake, channel)
    assert sweep_signoffs().closed == [] and close_voided(run, "again") is False  # closed once
    assert post_interaction(gateway, payload_from_history(fake, "C0RISK", "U0RENE")).status_code == 200
    assert ephemeral_texts(fake)["U0RENE"] == [
        "Your answer on the promotion of support-assistant was not counted: the promotion is no longer waiting for sign-off."]
    assert git(repo, "branch", "--list", "promote/*") == ""


def payload_from_history(fake, channel: str, user: str) -> dict:
    """A click on the request as it was before it was closed (a client that had not refreshed)."""
    first = fake.message_history(channel, fake.messages(channel)[0]["ts"])[0]
    return click_payload(first, first["channel"], ACTION_APPROVE, user)


def test_a_void_answer_records_a_withdrawn_decision(example_repo, slack_env, gateway):
    repo, commit = example_repo
    fake = slack_env
    run = start_gate(repo, commit)
    record = wait_suspended(run)
    click(fake, gateway, "C0SEC", "U0SAM")
    wait_suspended(run, seen=1)
    void = seal_answer(SignoffAnswer(kind="void", at=record.posted_at, reason="the label was removed"), run, answer_seal_key(SECRET))
    assert send_answer(run, void) == "sent"  # sealed by a holder of the key, as a void must be
    wait_final(run)
    decision = decision_of(store())
    assert (decision.verdict, decision.reasons) == (Verdict.withdrawn, ["the label was removed"])
    assert "Withdrawn: the label was removed" in blocks(fake, "C0RISK")


@pytest.mark.parametrize("arrange, reason", [
    (lambda fake: fake.fail_next("chat.postMessage", status=500, times=20),
     "sign-off could not be requested in Slack: chat.postMessage for risk to C0RISK: Slack answered internal_error (HTTP 500)"),
    (lambda fake: setattr(fake, "strict_channels", True) or fake.workspace.channels.pop("C0SEC"),
     "sign-off could not be requested in Slack: chat.postMessage for security to C0SEC: Slack answered channel_not_found (HTTP 200)"),
])
def test_when_slack_stays_down_the_promotion_is_blocked_with_the_reason(example_repo, slack_env, arrange, reason):
    repo, commit = example_repo
    fake = slack_env
    arrange(fake)
    run = start_gate(repo, commit)
    wait_final(run)
    decision = decision_of(store())
    assert (decision.verdict, decision.reasons) == (Verdict.error, [reason])
    assert decision.checklist is not None and decision.blocked
    assert read_waiting(run) is None
    posted = [m for m in fake.messages() if not m.get("thread_ts")]
    assert all("Not requested:" in json.dumps(m["blocks"]) and ACTION_APPROVE not in json.dumps(m["blocks"]) for m in posted)


def test_a_click_the_run_cannot_take_is_kept_and_applied_by_the_sweep_never_dropped(example_repo, slack_env, monkeypatch):
    """Fault row (issue 10): the second reviewer clicks while the run is still busy with the first
    answer (as when the worker is gone: resumed, nobody runs it). The click is kept on the run,
    the reviewer is told so (never "no longer waiting"), and the sweep applies it once."""
    from starlette.applications import Starlette

    from promotion_gate.gateway.slack_routes import routes
    from tests.slack_support import TestClient

    monkeypatch.setenv("PROMOTION_GATE_SLACK_CLICK_WAIT_SECONDS", "0.3")
    repo, commit = example_repo
    fake = slack_env
    run = start_gate(repo, commit)
    wait_suspended(run)
    with TestClient(Starlette(routes=routes(load_settings()))) as quick:
        assert click(fake, quick, "C0SEC", "U0SAM").status_code == 200   # resumes the run: busy for seconds
        assert click(fake, quick, "C0RISK", "U0RENE").status_code == 200  # finds it busy: kept
    told = ephemeral_texts(fake)
    assert list(told) == ["U0RENE"] and "will apply your answer when it resumes" in told["U0RENE"][0]
    record = wait_suspended(run, seen=1)
    assert [s.identity for s in record.signoffs] == ["sam"]
    swept = sweep_signoffs()
    assert swept.delivered == [run]
    wait_final(run)
    assert sweep_signoffs().delivered == []  # once
    decision = decision_of(store())
    assert decision.verdict == Verdict.promoted and sorted(s.identity for s in decision.signoffs) == ["rene", "sam"]
    assert decision.refused == [] and not any("no longer waiting" in t for ts in ephemeral_texts(fake).values() for t in ts)


def promoted_by_sam_and_rene(fake, gateway, run) -> Decision:
    """The two genuine reviewers sign off the waiting run; its recorded decision, promoted by them."""
    assert click(fake, gateway, "C0SEC", "U0SAM").status_code == 200
    wait_suspended(run, seen=1)
    assert click(fake, gateway, "C0RISK", "U0RENE").status_code == 200
    wait_final(run)
    decision = decision_of(store())
    assert decision.verdict == Verdict.promoted and sorted(s.identity for s in decision.signoffs) == ["rene", "sam"]
    return decision


def test_only_this_workspace_and_live_people_count_and_the_id_decides(example_repo, slack_env, gateway):
    """Attack rows through the signed route (issue 10): each click below is refused with its code and
    recorded; the two genuine reviewers then promote. Counted approvals: 2."""
    repo, commit = example_repo
    fake = slack_env
    fake.add_user("U0JORDAN", "jordan", "jordan@example.com", deleted=True)        # deactivated
    fake.add_user("U0OUT", "casey", "casey@elsewhere.example", is_bot=True)          # a bot account
    fake.add_user("U0ALEX", "alex", "alex@example.com", is_restricted=True)          # a guest; alex holds security
    fake.add_usergroup("S0SECURITY", "security-reviewers", ["U0SAM", "U0ALEX"])      # listed and in the group: only the guest rule refuses
    fake.add_user("U0DANA", "dana", "sam@example.com")                              # the requester, email set to sam's
    run = start_gate(repo, commit)
    wait_suspended(run)
    foreign = payload(fake, "C0SEC", "U0SAM")
    foreign["team"], foreign["user"]["team_id"] = {"id": "T0EVIL", "domain": "evil"}, "T0EVIL"
    assert post_interaction(gateway, foreign).status_code == 200
    for user in ("U0JORDAN", "U0OUT", "U0ALEX", "U0DANA"):
        assert click(fake, gateway, "C0SEC", user).status_code == 200
    assert read_waiting(run).seen == 0 and read_run_state(run).is_paused()      # none of it woke the flow
    decision = promoted_by_sam_and_rene(fake, gateway, run)
    assert sorted((c.reviewer, c.code) for c in decision.refused) == [
        ("U0ALEX", "guest"), ("U0DANA", "identity-conflict"), ("U0JORDAN", "not-a-person"),
        ("U0OUT", "not-a-person"), ("U0SAM", "foreign-workspace")]
    assert set(ephemeral_texts(fake)) == {"U0ALEX", "U0DANA", "U0JORDAN", "U0OUT", "U0SAM"}


def test_the_policy_lists_who_holds_a_role_and_the_slack_group_only_takes_away(example_repo, slack_env, gateway):
    """Signed clicks on the security request: priya (platform in the reviewed policy) added to the Slack
    group S0SECURITY by whoever can edit it, and alex (security in the policy) taken out of the group
    (it lists sam only), are both refused and recorded; sam and rene then promote."""
    repo, commit = example_repo
    fake = slack_env
    fake.add_user("U0PRIYA", "priya", "priya@example.com")
    fake.add_user("U0ALEX", "alex", "alex@example.com")
    fake.add_usergroup("S0SECURITY", "security-reviewers", ["U0SAM", "U0PRIYA"])
    run = start_gate(repo, commit)
    wait_suspended(run)
    for user in ("U0PRIYA", "U0ALEX"):
        assert click(fake, gateway, "C0SEC", user).status_code == 200
    assert read_waiting(run).seen == 0 and read_run_state(run).is_paused()  # neither woke the flow
    decision = promoted_by_sam_and_rene(fake, gateway, run)
    assert sorted((c.reviewer, c.reason) for c in decision.refused) == [
        ("U0ALEX", "alex does not hold the role this sign-off needs (security)"),
        ("U0PRIYA", "priya does not hold the role this sign-off needs (security)")]


# A captured signed click replayed inside Slack's 5-minute window to a gateway whose memory never saw
# it: another process behind the same address, or this one after a restart; or the sealed answer it
# became, copied from the run and resumed through the Prefect API. (row, what sam does before the replay)
REPLAYS = [
    ("to another gateway process, after the flow counted the approve", "approve", "gateway"),
    ("after sam's own reject stopped the promotion", "approve, reject", "gateway"),
    ("the sealed answer copied from the run, resumed through the Prefect API", "approve", "prefect"),
]


@pytest.mark.parametrize("case, before, via", REPLAYS, ids=[row[0] for row in REPLAYS])
def test_a_replayed_click_is_judged_once_whichever_process_receives_it(example_repo, slack_env, gateway, case, before, via):
    from starlette.applications import Starlette

    from promotion_gate.gateway.inbound import Refusals
    from promotion_gate.gateway.slack_routes import routes
    from tests.fakes.slack_payloads import build_interaction_request
    from tests.slack_support import TestClient

    repo, commit = example_repo
    fake = slack_env
    run = start_gate(repo, commit)
    wait_suspended(run)
    body, headers = build_interaction_request(payload(fake, "C0SEC", "U0SAM"), SECRET)
    assert gateway.post("/slack/interactions", content=body, headers=headers).status_code == 200
    wait_suspended(run, seen=1)
    if before == "approve, reject":
        assert click(fake, gateway, "C0SEC", "U0SAM", ACTION_REJECT).status_code == 200
        [view] = fake.views()
        submitted = fake.submit_view(view["id"], "U0SAM", {BLOCK_REASON: {ACTION_REASON: "the drill misses a path"}})
        assert post_interaction(gateway, submitted).status_code == 200
        wait_final(run)
    if via == "gateway":
        refusals = Refusals()
        with TestClient(Starlette(routes=routes(load_settings(), refusals))) as restarted:  # its own memory: empty
            assert restarted.post("/slack/interactions", content=body, headers=headers).status_code == 200
        assert refusals.snapshot()["slack"] == {"repeat": 1}       # known as a repeat by the run's claim, not by memory
    else:
        with get_client(sync_client=True) as client:
            sent = SignoffAnswer.model_validate_json(client.read_flow_run_input(run, "suspended-signoff-1-response"))
        assert send_answer(run, sent) == "sent"
        wait_suspended(run, seen=2)
    if before == "approve":
        assert click(fake, gateway, "C0RISK", "U0RENE").status_code == 200
        wait_final(run)
    decision = decision_of(store())
    if before == "approve":
        assert decision.verdict == Verdict.promoted
        assert sorted((s.identity, s.action) for s in decision.signoffs) == [("rene", Action.approve), ("sam", Action.approve)]
    else:
        assert decision.verdict == Verdict.blocked
        assert decision.reasons == ["rejected by sam (security): the drill misses a path"]
    assert decision.refused == []                                # the replay is no refused second click of sam's
    assert "U0SAM" not in ephemeral_texts(fake)                  # and sam is told nothing about it
