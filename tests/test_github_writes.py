"""The gate's writes to the fake GitHub, through the real PyGithub: the block (one comment, the
label swap) and the promotion (branch, commit, PR, review request); re-runs, faults and lost
answers never write anything twice."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from github import GithubException
from github.Issue import Issue

from promotion_gate.checklists.decision import build_lock, error_decision
from promotion_gate.github_api.forge import GitHubForge
from promotion_gate.config.settings import load_settings
from promotion_gate.notifications.report import render_markdown
from tests.github_support import (
    BLOCKED, LABEL, PROMOTES, REPO, UNAPPROVED, gate_env, governed_repo, judge, promote_with, request_for, writes,
)


@pytest.fixture
def forge(fake_github, monkeypatch, tmp_path):
    gate_env(monkeypatch, fake_github, tmp_path / "store")
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    return lambda: GitHubForge(load_settings(), REPO)


# blocking


def test_a_block_comments_once_swaps_the_label_and_a_rerun_edits_the_comment(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED, labels=(LABEL, "team:ml"))
    request = request_for(sha, number)
    decision = judge(forge(), request)
    before = len(fake_github.requests)
    forge().block(request, decision, render_markdown(decision))
    assert [m for m, _, _ in writes(fake_github)[-2:]] == ["POST", "PUT"] and len(fake_github.requests) - before == 3
    assert fake_github.labels(REPO, number) == ["team:ml", BLOCKED]
    first = fake_github.comments(REPO, number)
    fake_github.add_labels(REPO, number, LABEL)  # the team asks again
    forge().block(request, error_decision(request, "the gate failed: another reason", datetime.now(timezone.utc)), "")
    comments = fake_github.comments(REPO, number)
    assert len(comments) == 1 and comments[0]["id"] == first[0]["id"] and comments[0]["body"] != first[0]["body"]
    assert fake_github.labels(REPO, number) == ["team:ml", BLOCKED]


def test_an_unchanged_comment_and_labels_are_not_rewritten(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    request = request_for(sha, number)
    decision = judge(forge(), request)
    forge().block(request, decision, "")
    count = len(writes(fake_github))
    forge().block(request, decision, "")
    assert len(writes(fake_github)) == count


def test_a_comment_created_but_answered_with_502_is_not_repeated(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    request = request_for(sha, number)
    decision = judge(forge(), request)
    fake_github.lose_answer_next("POST /repos/*/issues/*/comments", status=502)  # GitHub wrote it; the answer was lost
    forge().block(request, decision, "")
    assert len(fake_github.comments(REPO, number)) == 1
    assert [c.status for c in fake_github.calls("POST", "*/comments")] == [502]  # found on the retry, not posted again


@pytest.mark.parametrize("arm", [
    lambda fake: fake.fail_next("POST /repos/*/issues/*/comments", status=502),
    lambda fake: fake.fail_next("PUT /repos/*/issues/*/labels", status=503, times=2),
    lambda fake: fake.fail_secondary_rate_limit("POST /repos/*/issues/*/comments", retry_after=1),
    lambda fake: fake.fail_primary_rate_limit("PUT /repos/*/issues/*/labels", reset_in=1, status=429),
    lambda fake: fake.fail_next("GET /repos/*/issues/*", status=500),
])
def test_faults_on_the_block_writes_end_in_one_comment_and_the_swap(fake_github, forge, arm):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    request = request_for(sha, number)
    decision = judge(forge(), request)
    arm(fake_github)
    forge().block(request, decision, "")
    assert len(fake_github.comments(REPO, number)) == 1 and fake_github.labels(REPO, number) == [BLOCKED]
    assert any(status >= 403 for _, _, status in fake_github.requests)  # the fault was met


# promoting


def test_a_promotion_is_a_branch_off_the_default_branch_a_pr_and_a_review_request(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES)
    request = request_for(sha, number)
    decision = judge(forge(), request)
    promotion = promote_with(forge(), request, decision)
    branch = f"promote/{PROMOTES}/{sha[:7]}"
    pulls = [p for p in fake_github.pulls(REPO) if p["head"]["ref"] == branch]
    assert promotion.branch == branch and promotion.pull_request_url == pulls[0]["html_url"]
    assert pulls[0]["base"]["ref"] == "main" and pulls[0]["body"] == render_markdown(decision)
    assert [t["slug"] for t in pulls[0]["requested_teams"]] == ["it-helpdesk"]
    lock = fake_github.file_at(REPO, branch, f"ai-systems/{PROMOTES}/production.lock.json")
    assert build_lock(decision).model_validate_json(lock).decision_id == decision.decision_id
    assert fake_github.file_at(REPO, branch, f"audit/{PROMOTES}/{decision.decision_id}.md") == render_markdown(decision).encode()
    assert fake_github.state.git.commit(fake_github.branch_sha(REPO, branch)).parents == (fake_github.branch_sha(REPO, "main"),)


def test_a_second_promotion_run_finds_the_branch_and_the_pr(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES)
    request = request_for(sha, number)
    decision = judge(forge(), request)
    first = promote_with(forge(), request, decision)
    second = promote_with(forge(), request, decision)
    assert first == second and len(fake_github.pulls(REPO)) == 2  # the team's PR and one promotion PR
    assert len(fake_github.calls("POST", "*/requested_reviewers")) == 1


def test_a_branch_holding_another_decision_is_repointed_and_gets_its_pr(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES)
    branch = f"promote/{PROMOTES}/{sha[:7]}"
    fake_github.commit_files(REPO, branch, {"stale.txt": "left over\n"})
    request = request_for(sha, number)
    decision = judge(forge(), request)
    promotion = promote_with(forge(), request, decision)
    assert fake_github.file_at(REPO, branch, "stale.txt") is None and promotion.pull_request_url


@pytest.mark.parametrize("arm", [
    lambda fake: fake.fail_next("POST /repos/*/git/refs", status=502),
    lambda fake: fake.fail_next("POST /repos/*/pulls", status=502, times=2),
    lambda fake: fake.fail_next("POST /repos/*/git/trees", status=504),
    lambda fake: fake.fail_secondary_rate_limit("POST /repos/*/pulls", retry_after=1),
    lambda fake: fake.fail_primary_rate_limit("POST /repos/*/git/commits", reset_in=1),
    lambda fake: fake.fail_next("POST /repos/*/pulls/*/requested_reviewers", status=502),
])
def test_faults_on_the_promotion_writes_end_in_one_pr(fake_github, forge, arm):
    sha, number = governed_repo(fake_github, PROMOTES)
    request = request_for(sha, number)
    decision = judge(forge(), request)
    arm(fake_github)
    promotion = promote_with(forge(), request, decision)
    promotions = [p for p in fake_github.pulls(REPO) if p["head"]["ref"] == promotion.branch]
    assert len(promotions) == 1 and promotions[0]["requested_teams"]
    assert any(status >= 403 for _, _, status in fake_github.requests)


@pytest.mark.parametrize("lost", [502, 504])
def test_a_pr_created_but_answered_with_502_is_found_not_repeated(fake_github, forge, lost):
    sha, number = governed_repo(fake_github, PROMOTES)
    request = request_for(sha, number)
    decision = judge(forge(), request)
    fake_github.lose_answer_next("POST /repos/*/pulls", status=lost)  # GitHub opened it; the answer was lost
    promotion = promote_with(forge(), request, decision)
    promotions = [p for p in fake_github.pulls(REPO) if p["head"]["ref"] == promotion.branch]
    assert len(promotions) == 1 and [t["slug"] for t in promotions[0]["requested_teams"]] == ["it-helpdesk"]
    assert [c.status for c in fake_github.calls("POST", "*/pulls")] == [lost, 422]  # "A pull request already exists"
    assert promotion.pull_request_url == promotions[0]["html_url"]


def _foreign_pull(fake_github, sha: str, author: str = "mallory") -> tuple[str, int]:
    """A PR from the gate's branch name opened by `author` (the branch made as a push would)."""
    branch = f"promote/{PROMOTES}/{sha[:7]}"
    fake_github.commit_files(REPO, branch, {"x.txt": "mine\n"}, author_login=author)
    return branch, fake_github.open_pull(REPO, branch, "main", "not the gate's", author)


@pytest.mark.parametrize("created", [True, False], ids=["met-as-already-exists", "found-first"])
def test_a_pr_from_the_gates_branch_opened_by_someone_else_is_refused_not_adopted(fake_github, forge, created):
    from promotion_gate.github_api.writes import Branch, NotTheGates, open_pull

    sha, _ = governed_repo(fake_github, PROMOTES)
    branch, foreign = _foreign_pull(fake_github, sha)
    gate = forge()
    with pytest.raises(NotTheGates) as refused:
        open_pull(gate.call, gate.repo, Branch(branch, fake_github.branch_sha(REPO, branch), created), "main", "t", "b")
    said = str(refused.value)
    assert f"#{foreign}" in said and "mallory" in said and "not by the gate (promotion-gate-bot)" in said
    assert [p["number"] for p in fake_github.pulls(REPO) if p["head"]["ref"] == branch] == [foreign]  # left alone


def test_a_pr_of_the_gate_at_another_commit_is_refused(fake_github, forge):
    from promotion_gate.github_api.writes import Branch, NotTheGates, open_pull

    sha, _ = governed_repo(fake_github, PROMOTES)
    branch, foreign = _foreign_pull(fake_github, sha, author="promotion-gate-bot")
    gate = forge()
    with pytest.raises(NotTheGates, match=f"#{foreign} from {branch} is at [0-9a-f]{{7}}, not the promotion commit abcdef0"):
        open_pull(gate.call, gate.repo, Branch(branch, "abcdef0" + "0" * 33, True), "main", "t", "b")


@pytest.mark.usefixtures("prefect_harness")
def test_a_promotion_refuses_a_pr_someone_else_opened_from_its_branch_as_an_error_decision(fake_github, forge):
    from promotion_gate.checklists.decision import Verdict
    from promotion_gate.flows.promotion import promotion_gate

    sha, number = governed_repo(fake_github, PROMOTES)
    branch, foreign = _foreign_pull(fake_github, sha)
    decision = promotion_gate(request_for(sha, number))
    assert decision.verdict == Verdict.error and decision.promotion is None
    assert f"pull request #{foreign}" in decision.reasons[0] and "mallory" in decision.reasons[0]
    assert "refusing to re-point its branch" in decision.reasons[0] and "GitHub 422" not in decision.reasons[0]
    pull = fake_github.pull(REPO, foreign)  # left as it was: open, its branch not moved
    assert pull["state"] == "open" and pull["head"]["sha"] == fake_github.branch_sha(REPO, branch) != sha
    assert fake_github.statuses(REPO, sha)[f"promotion-gate/{PROMOTES}"]["state"] == "error"


@pytest.mark.usefixtures("prefect_harness")
def test_a_pr_someone_opens_from_the_gates_new_branch_before_the_gate_does_is_left_as_it_was(fake_github, forge, monkeypatch):
    """The race: the gate creates its branch, and before its own PR is opened someone opens one from
    it. The gate refuses to adopt it, and does not delete the branch either (GitHub would close their
    PR with it, and drop what they pushed): an error decision names the PR and its author."""
    from promotion_gate.checklists.decision import Verdict
    from promotion_gate.flows.promotion import promotion_gate
    from promotion_gate.github_api import writes

    sha, number = governed_repo(fake_github, PROMOTES)
    created, foreign = writes._create_or_verify_ref, []

    def create_then_race(repo, name, commit_sha, same_decision):
        made = created(repo, name, commit_sha, same_decision)
        foreign.append(fake_github.open_pull(REPO, name, "main", "mine now", "mallory"))
        return made

    monkeypatch.setattr(writes, "_create_or_verify_ref", create_then_race)
    decision = promotion_gate(request_for(sha, number))
    assert decision.verdict == Verdict.error and decision.promotion is None
    assert f"pull request #{foreign[0]}" in decision.reasons[0] and "mallory" in decision.reasons[0]
    branch = f"promote/{PROMOTES}/{sha[:7]}"
    pull = fake_github.pull(REPO, foreign[0])
    assert pull["state"] == "open" and pull["head"]["sha"] == fake_github.branch_sha(REPO, branch)  # left as it was
    assert not fake_github.calls("DELETE", "*/git/refs/*")
    assert [p["number"] for p in fake_github.pulls(REPO) if p["head"]["ref"] == branch] == foreign  # the gate opened none
    assert fake_github.statuses(REPO, sha)[f"promotion-gate/{PROMOTES}"]["state"] == "error"


def test_a_deleted_branch_closes_the_pr_made_from_it_as_on_github(fake_github):
    """The fake does what GitHub does, so that a test of the gate sees a deletion's effect on a PR."""
    import httpx

    sha, number = governed_repo(fake_github, PROMOTES)
    reply = httpx.delete(f"{fake_github.base_url}/repos/{REPO}/git/refs/heads/feature",
                         headers={"Authorization": "token test-token"})
    assert reply.status_code == 204 and fake_github.pull(REPO, number)["state"] == "closed"


def test_a_review_github_refuses_does_not_stop_the_promotion(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES, edit=('owner: "@acme/it-helpdesk"', 'owner: "@stranger"'))
    request = request_for(sha, number)
    promotion = promote_with(forge(), request, judge(forge(), request))
    assert promotion.pull_request_url and fake_github.calls("POST", "*/requested_reviewers")[0].status == 422
