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


@pytest.mark.usefixtures("prefect_harness")
def test_a_cancelled_gate_run_is_recorded_once_as_a_withdrawn_decision(fake_github, monkeypatch, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled, Cancelling, Running, Scheduled

    from promotion_gate.audit_store.store import AuditStore
    from promotion_gate.flows.promotion import promotion_gate
    from promotion_gate.flows.withdrawn_runs import decide_cancelled_run

    gate_env(monkeypatch, fake_github, tmp_path / "store")
    request = request_for("a" * 40, 3)
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(promotion_gate, parameters={"request": request.model_dump(mode="json")},
                                     state=Scheduled())
        client.set_flow_run_state(run.id, Running(), force=True)  # a running run: its Cancelling keeps the reason
        client.set_flow_run_state(run.id, Cancelling(message="superseded by bbbbbbb"), force=True)
        client.set_flow_run_state(run.id, Cancelled(), force=True)
        run = client.read_flow_run(run.id)
    assert decide_cancelled_run(run) is True
    assert decide_cancelled_run(run) is False  # once
    store = AuditStore(tmp_path / "store")
    entries = [json.loads(line) for line in store.lines()]
    assert [(e["verdict"], e["system"]) for e in entries] == [("withdrawn", PROMOTES)]
    recorded = json.loads((store.decision_dir(entries[0]["decision_id"]) / "decision.json").read_text())
    assert recorded["reasons"] == ["superseded by bbbbbbb"]
