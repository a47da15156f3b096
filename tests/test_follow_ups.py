"""The loose ends of the GitHub and Slack paths, end state on the fakes: a superseded promotion PR
is closed naming its successor; a block comment is resolved by a later promotion; the owner's
Slack notice of a block is sent once per decision."""

from __future__ import annotations

import json

import pytest

from promotion_gate.checklists.decision import Verdict
from promotion_gate.github_api.forge import GitHubForge
from promotion_gate.slack_api.owner_notice import notify_block
from promotion_gate.config.settings import load_settings
from tests.fakes import FakeSlack
from tests.github_support import PROMOTES, REPO, UNAPPROVED, gate_env, governed_repo, judge, promote_with, request_for, system_files


def _forge(fake_github, monkeypatch, tmp_path, **extra):
    gate_env(monkeypatch, fake_github, tmp_path / "store", **extra)
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    return GitHubForge(load_settings(), REPO)


def test_a_newer_promotion_closes_the_older_promotion_pr_naming_its_successor(fake_github, monkeypatch, tmp_path):
    forge = _forge(fake_github, monkeypatch, tmp_path)
    sha, number = governed_repo(fake_github, PROMOTES)
    first = request_for(sha, number)
    old = promote_with(forge, first, judge(forge, first))
    newer_sha = fake_github.commit_files(REPO, "feature", {f"ai-systems/{PROMOTES}/notes.md": "v2\n"}, "v2")
    second = request_for(newer_sha, number)
    new = promote_with(forge, second, judge(forge, second))
    pulls = {p["head"]["ref"]: p for p in fake_github.pulls(REPO)}
    older, newer = pulls[old.branch], pulls[new.branch]
    assert (older["state"], newer["state"]) == ("closed", "open")
    comments = fake_github.comments(REPO, older["number"])
    assert len(comments) == 1 and f"#{newer['number']}" in comments[0]["body"] and newer_sha[:7] in comments[0]["body"]
    promote_with(forge, second, judge(forge, second))  # the same promotion again: nothing closed or said twice
    assert len(fake_github.comments(REPO, older["number"])) == 1 and fake_github.pull(REPO, newer["number"])["state"] == "open"


def test_a_fork_branch_named_like_a_promotion_is_not_closed(fake_github, monkeypatch, tmp_path):
    forge = _forge(fake_github, monkeypatch, tmp_path)
    sha, number = governed_repo(fake_github, PROMOTES)
    fake_github.create_repo("mallory/models", fork_of=REPO)
    fake_github.commit_files("mallory/models", f"promote/{PROMOTES}/0000000", {"x.md": "x\n"}, "x", author_login="mallory")
    fork_pr = fake_github.open_pull(REPO, f"promote/{PROMOTES}/0000000", "main", "look alike", "mallory",
                                    head_repo_full_name="mallory/models")
    request = request_for(sha, number)
    promote_with(forge, request, judge(forge, request))
    assert fake_github.pull(REPO, fork_pr)["state"] == "open"


def test_a_block_comment_is_resolved_by_a_later_promotion_of_the_same_pr(fake_github, monkeypatch, tmp_path):
    forge = _forge(fake_github, monkeypatch, tmp_path)
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    blocked_request = request_for(sha, number)
    blocked = judge(forge, blocked_request)
    assert blocked.verdict == Verdict.blocked
    forge.block(blocked_request, blocked, "")
    assert "is blocked" in fake_github.comments(REPO, number)[0]["body"]
    fixed = fake_github.commit_files(REPO, "feature", system_files(PROMOTES), "fix the version")
    request = request_for(fixed, number)
    decision = judge(forge, request)
    assert decision.verdict == Verdict.promoted, decision.reasons
    promotion = promote_with(forge, request, decision)
    comments = fake_github.comments(REPO, number)
    assert len(comments) == 1 and "was promoted" in comments[0]["body"] and "blocked it" in comments[0]["body"]
    assert promotion.pull_request_url in comments[0]["body"]


def test_a_pr_never_blocked_gets_no_comment_on_promotion(fake_github, monkeypatch, tmp_path):
    forge = _forge(fake_github, monkeypatch, tmp_path)
    sha, number = governed_repo(fake_github, PROMOTES)
    request = request_for(sha, number)
    promote_with(forge, request, judge(forge, request))
    assert fake_github.comments(REPO, number) == []


def test_the_owner_is_told_of_a_block_once_per_decision(fake_github, fake_slack, monkeypatch, tmp_path):
    forge = _forge(fake_github, monkeypatch, tmp_path, SLACK_API_URL=fake_slack.base_url, SLACK_BOT_TOKEN=FakeSlack.BOT_TOKEN)
    fake_slack.add_channel("C0HELP", "it-helpdesk-oncall")
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    decision = judge(forge, request_for(sha, number))
    settings = load_settings()
    first = notify_block(settings, decision, tmp_path / "store")
    again = notify_block(settings, decision, tmp_path / "store")  # a resumed or repeated run
    assert first.startswith("slack: block notice sent") and again.startswith("slack: block notice already sent")
    sent = fake_slack.messages("C0HELP")
    assert len(sent) == 1 and decision.decision_id in sent[0]["text"] and f"/pull/{number}" in sent[0]["text"]
    request = request_for(sha, number)
    promoted = judge(forge, request).model_copy(update={"verdict": Verdict.promoted})
    assert notify_block(settings, promoted, tmp_path / "store") == "slack: no block notice (not blocked)"


UNVOUCHED = ("the promotion run was cancelled outside the gate (through the Prefect API or UI), with no reason the "
             "gate can vouch for; nothing was promoted; the canceller's unverified words: ")


def _gate_run(client, request):
    """A gate run waiting for sign-off (suspended), tagged as the gate tags it, as the Prefect API sees it."""
    from prefect.states import Paused, Scheduled

    from promotion_gate.flows.promotion import promotion_gate
    from promotion_gate.prefect_api.gate_runs import gate_tags

    run = client.create_flow_run(promotion_gate, parameters={"request": request.model_dump(mode="json")},
                                 state=Scheduled(), tags=gate_tags(request))
    client.set_flow_run_state(run.id, Paused(reschedule=True), force=True)
    return client.read_flow_run(run.id)


def _api_cancel(client, run_id, message=None):
    """What anyone who can reach the Prefect API (or the UI) can do: cancel a run with any message."""
    from prefect.states import Cancelled, Cancelling

    client.set_flow_run_state(run_id, Cancelling(message=message), force=True)
    client.set_flow_run_state(run_id, Cancelled(message=message), force=True)


def _gate_void(settings, request, reason):
    """What the promotion-request flow does on a push or a withdrawal (flows/dispatch.py)."""
    from promotion_gate.flows.dispatch import void_stale_runs

    return void_stale_runs.fn(settings, request.repository, request.pull_request, None, reason)


def _copy_void_input(client, source, target, reason=None):
    """An attacker copies the gate's sealed void input of `source` onto `target` (its reason changed, if given)."""
    from promotion_gate.prefect_api.gate_runs import VOID_KEY

    value = json.loads(client.read_flow_run_input(source, VOID_KEY))
    if reason is not None:
        value["reason"] = reason
    if source == target:
        client.delete_flow_run_input(target, VOID_KEY)
    client.create_flow_run_input(target, VOID_KEY, json.dumps(value), sender="promotion-gate-void")


def _cancel_api_made_up(client, settings, request):
    run = _gate_run(client, request)
    _api_cancel(client, run.id, "promotion withdrawn by the security lead")
    return run.id


def _cancel_api_quoting(client, settings, request):
    """A made-up message that tries to close the quote, hide text (bidi controls) and run on."""
    run = _gate_run(client, request)
    _api_cancel(client, run.id, '"superseded by bbbbbbb"; the gate can vouch for this\u202e\u2066\n' + "x" * 300)
    return run.id


def _cancel_gate_supersede(client, settings, request):
    run = _gate_run(client, request)
    _gate_void(settings, request, "superseded by bbbbbbb")
    return run.id


def _cancel_gate_withdraw(client, settings, request):
    run = _gate_run(client, request)
    _gate_void(settings, request, "promotion withdrawn by dana")
    return run.id


def _cancel_seal_copied(client, settings, request):
    from promotion_gate.checklists.decision import PromotionRequest

    other = PromotionRequest.model_validate(request.model_dump() | {"pull_request": 99})
    genuine = _gate_run(client, other)
    _gate_void(settings, other, "promotion withdrawn by dana")  # the gate's own, of another run
    run = _gate_run(client, request)
    _copy_void_input(client, genuine.id, run.id)
    _api_cancel(client, run.id, "promotion withdrawn by dana")
    return run.id


def _cancel_seal_reason_altered(client, settings, request):
    run = _gate_run(client, request)
    _gate_void(settings, request, "superseded by bbbbbbb")
    _copy_void_input(client, run.id, run.id, reason="promotion withdrawn by the security lead")
    _api_cancel(client, run.id, "promotion withdrawn by the security lead")
    return run.id


def _cancel_no_message(client, settings, request):
    run = _gate_run(client, request)
    _api_cancel(client, run.id)
    return run.id


CANCELLATIONS = [  # (how the run was cancelled, the reason the ledger records, the sweeper holds the seal key)
    pytest.param(_cancel_api_made_up, UNVOUCHED + '"promotion withdrawn by the security lead"', True, id="api-made-up-reason"),
    pytest.param(_cancel_api_quoting, UNVOUCHED + '"\\"superseded by bbbbbbb\\"; the gate can vouch for this '
                 + "x" * 66 + '\\u2026"', True, id="api-reason-quoting-and-capped"),  # one line, bidi controls gone
    pytest.param(_cancel_gate_supersede, "superseded by bbbbbbb", True, id="gate-supersede"),
    pytest.param(_cancel_gate_withdraw, "promotion withdrawn by dana", True, id="gate-withdraw"),
    pytest.param(_cancel_seal_copied, UNVOUCHED + '"promotion withdrawn by dana"', True, id="seal-copied-to-another-run"),
    pytest.param(_cancel_seal_reason_altered, UNVOUCHED + '"promotion withdrawn by the security lead"',
                 True, id="seal-reason-altered"),
    pytest.param(_cancel_no_message, "the promotion run was cancelled outside the gate (through the Prefect API or UI), "
                 "with no reason the gate can vouch for; nothing was promoted; it carried no message", True, id="no-message"),
    pytest.param(_cancel_gate_supersede, "the promotion run was cancelled; the sweeper could not check whether the gate "
                 "cancelled it (the Slack signing secret is not set where it runs), so there is no reason the gate can "
                 'vouch for; nothing was promoted; the canceller\'s unverified words: "superseded by bbbbbbb"',
                 False, id="gate-supersede-sweeper-without-key"),
]


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("cancel", "reason", "sweeper_has_key"), CANCELLATIONS)
def test_a_cancelled_gate_run_is_recorded_once_as_withdrawn_with_only_the_reason_the_gate_vouches_for(
        fake_github, monkeypatch, tmp_path, cancel, reason, sweeper_has_key):
    from prefect.client.orchestration import get_client

    from promotion_gate.audit_store.store import AuditStore
    from promotion_gate.flows.withdrawn_runs import decide_cancelled_run
    from tests.slack_support import SECRET as SLACK_SECRET

    gate_env(monkeypatch, fake_github, tmp_path / "store", SLACK_SIGNING_SECRET=SLACK_SECRET)
    settings = load_settings()
    request = request_for("a" * 40, 3)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(cancel(client, settings, request))
    assert run.state.is_cancelled()
    if not sweeper_has_key:  # the void was sealed; the sweeper, without the secret, cannot check it
        monkeypatch.delenv("PROMOTION_GATE_SLACK_SIGNING_SECRET")
    assert decide_cancelled_run(run) is True
    assert decide_cancelled_run(run) is False  # once
    store = AuditStore(tmp_path / "store")
    entries = [json.loads(line) for line in store.lines()]
    mine = [e for e in entries if e["decision_id"] == entries[-1]["decision_id"]]
    assert [(e["verdict"], e["system"]) for e in mine] == [("withdrawn", PROMOTES)]
    recorded = json.loads((store.decision_dir(mine[0]["decision_id"]) / "decision.json").read_text())
    assert recorded["reasons"] == [reason]
    assert SLACK_SECRET not in json.dumps(recorded)
