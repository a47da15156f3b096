"""The GitHub forge against the fake GitHub, through the real PyGithub: what is read and how
often, the final and waiting statuses, failures that name no secret, App authentication.
(The writes and their idempotency: tests/test_github_writes.py.)"""

from __future__ import annotations

import pytest

from promotion_gate.checklists.decision import Verdict
from promotion_gate.forge.candidate_reader import SourceError
from promotion_gate.github_api.forge import GitHubForge
from promotion_gate.github_api.client import GitHubUnavailable
from promotion_gate.config.policy_source import load_policy
from promotion_gate.config.settings import load_settings
from tests.github_support import (
    PROMOTES, REPO, UNAPPROVED, gate_env, governed_repo, judge, promote_with, request_for, system_files,
)

POLICY = load_policy()


@pytest.fixture
def forge(fake_github, monkeypatch, tmp_path):
    gate_env(monkeypatch, fake_github, tmp_path / "store")
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    return lambda: GitHubForge(load_settings(), REPO)


# reading


def test_the_candidate_is_read_at_the_head_sha_one_request_per_file(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES)
    fake_github.commit_files(REPO, "feature", {f"ai-systems/{PROMOTES}/promotion.yaml": "moved on\n"})
    before = len(fake_github.requests)
    decision = judge(forge(), request_for(sha, number))
    reads = fake_github.requests[before:]
    assert decision.verdict == Verdict.promoted  # the manifest at `sha`, not the branch's newer one
    assert [path.rsplit("/", 1)[-1] for _, path, _ in reads] == [
        "promotion.yaml", "promptfoo.json", "junit.xml", "production.lock.json"]
    assert all(call.query.get("ref") == sha for call in fake_github.calls("GET", "*/contents/*")[:3])
    assert "ref" not in fake_github.calls("GET", "*/production.lock.json")[0].query  # the default branch


def test_a_fork_pr_is_judged_on_the_fork_heads_files_only(fake_github, forge):
    fake_github.create_repo(REPO, files=system_files(PROMOTES, edit=UNAPPROVED))  # base: a blocked version
    fake_github.create_repo("alice/models", fork_of=REPO)
    sha = fake_github.commit_files("alice/models", "idea", system_files(PROMOTES), author_login="alice")
    number = fake_github.open_pull(REPO, "idea", "main", "From a fork", "alice", head_repo_full_name="alice/models")
    decision = judge(forge(), request_for(sha, number))
    assert decision.verdict == Verdict.promoted, decision.reasons
    assert not [c for c in fake_github.calls() if c.path.startswith("/repos/alice/")]  # never the fork's API


def test_a_manifest_path_that_leaves_its_folder_is_refused_and_never_read(fake_github, forge):
    leave = ("path: evals/junit.xml", "path: ../loan-prescreener/evals/promptfoo.json")
    sha, number = governed_repo(fake_github, PROMOTES, "loan-prescreener", edit=leave)
    decision = judge(forge(), request_for(sha, number))
    assert decision.verdict == Verdict.error  # unusable input (issue 9): an error decision, still blocking
    assert [r.id for r in decision.checklist.failures] == ["PG-MANIFEST-001"]
    assert "must stay inside the system's folder" in decision.reasons[0]
    assert not fake_github.calls("GET", "*/loan-prescreener/*")


def test_a_directory_is_not_a_file(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES)
    with pytest.raises(SourceError, match="is a directory"):
        forge().candidate_source(request_for(sha, number)).read(f"ai-systems/{PROMOTES}/evals")


def test_a_file_over_one_megabyte_is_read_from_its_blob(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES)
    path = f"ai-systems/{PROMOTES}/evals/junit.xml"
    data = fake_github.file_at(REPO, sha, path)
    entry = forge().repo.get_contents(path, ref=sha)
    fake_github.fail_next("GET /repos/*/contents/*junit.xml", status=200, body={  # GitHub's answer above 1 MB
        "type": "file", "encoding": "none", "content": "", "size": len(data), "name": "junit.xml", "path": path,
        "sha": entry.sha, "url": entry.url})
    assert forge().candidate_source(request_for(sha, number)).read(path) == data
    assert fake_github.calls("GET", f"*/git/blobs/{entry.sha}")


class _Content:
    def __init__(self, path, type="file"):
        self.path, self.type, self.encoding, self.content, self.size = path, type, "base64", "eA==", 1
        self.decoded_content = b"x"


class _Repo:
    def __init__(self, answer):
        self.answer = answer

    def get_contents(self, path, ref=None):
        return self.answer


@pytest.mark.parametrize("answer, error", [
    (_Content("ai-systems/other/secret.json"), "resolves to ai-systems/other/secret.json, outside ai-systems/x/"),
    (_Content("ai-systems/x/evals/a.json", type="symlink"), "is a symlink, not a regular file"),
    (_Content("ai-systems/x/vendored", type="submodule"), "is a submodule, not a regular file"),
])
def test_a_symbolic_link_out_of_the_folder_or_a_submodule_is_refused(answer, error):
    from promotion_gate.github_api.client import Retrying
    from promotion_gate.github_api.source import AtRef

    with pytest.raises(SourceError, match=error):
        AtRef(_Repo(answer), "a" * 40, Retrying(retries=0)).read("ai-systems/x/evals/a.json")
    inside = AtRef(_Repo(_Content("ai-systems/x/evals/real.json")), "a" * 40, Retrying(retries=0))
    assert inside.read("ai-systems/x/evals/a.json") == b"x"  # a link inside the folder is followed


# statuses and failures


def test_the_final_status_links_the_pr_and_a_sign_off_wait_is_announced(fake_github, forge):
    sha, number = governed_repo(fake_github, PROMOTES, "support-assistant")
    request = request_for(sha, number)
    decision = judge(forge(), request)
    promoted = decision.model_copy(update={"promotion": promote_with(forge(), request, decision)})
    forge().conclude(request, promoted)
    status = fake_github.statuses(REPO, sha)[f"promotion-gate/{PROMOTES}"]
    assert status["state"] == "success" and status["target_url"] == promoted.promotion.pull_request_url
    high = request_for(sha, number, "support-assistant")
    forge().announce(high, judge(forge(), high).checklist)
    waiting = fake_github.statuses(REPO, sha)["promotion-gate/support-assistant"]
    assert (waiting["state"], waiting["description"]) == ("pending", "waiting for sign-off (1 security, 1 risk); tier high")
    forge().announce(request, decision.checklist)  # nothing to wait for: no write
    assert len(fake_github.status_history(REPO, sha)) == 2


def test_github_staying_down_is_an_error_that_names_no_secret(fake_github, forge, monkeypatch):
    monkeypatch.setenv("PROMOTION_GATE_GITHUB_TOKEN", "ghp_SECRETSECRETSECRET")
    sha, number = governed_repo(fake_github, PROMOTES)
    fake_github.fail_next("*", status=502, times=50)
    with pytest.raises(GitHubUnavailable) as error:
        forge().candidate_source(request_for(sha, number)).read(f"ai-systems/{PROMOTES}/promotion.yaml")
    assert str(error.value) == (f"GitHub 502 on read ai-systems/{PROMOTES}/promotion.yaml: Bad Gateway (after 4 tries)")
    assert error.value.__cause__ is None and error.value.__suppress_context__
    assert all(c.token == "ghp_SECRETSECRETSECRET" for c in fake_github.calls())


def test_the_committers_of_the_pr_are_excluded_from_sign_off(fake_github, forge):
    fake_github.add_user("sam", email="sam@acme.example")
    sha, number = governed_repo(fake_github, "support-assistant", author="sam")
    excluded = forge().excluded_identities(request_for(sha, number, "support-assistant"), POLICY)
    assert {"github:dana", "github:alice"} <= excluded and ("sam" in excluded or "github:sam" in excluded)


def test_a_pr_with_more_commits_than_github_lists_fails_closed(fake_github, forge):
    """GitHub lists at most 250 commits of a PR: a committer beyond them would not be excluded, so the
    gate refuses to decide who may sign off (the flow records the error) instead of guessing."""
    fake_github.add_user("sam", email="sam@acme.example")
    sha, number = governed_repo(fake_github, "support-assistant", author="sam")
    for i in range(250):
        sha = fake_github.commit_files(REPO, "feature", {"docs/n.txt": f"{i}\n"}, f"chore {i}", author_login="alice")
    with pytest.raises(Exception, match=r"#\d+ has 251 commits; GitHub lists 250 of them"):
        forge().excluded_identities(request_for(sha, number, "support-assistant"), POLICY)


def test_a_github_app_acts_through_an_installation_token(fake_github, forge, monkeypatch, tmp_path):
    from tests.github_support import as_github_app

    as_github_app(monkeypatch, fake_github, tmp_path, installation=None)
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    fake_github.add_installation(7, 42, "acme", repositories=[REPO])
    request = request_for(sha, number)
    app_forge = forge()
    decision = judge(app_forge, request)
    app_forge.block(request, decision, "")
    app_forge.conclude(request, decision)
    from tests.fakes.github_routes_checks import latest_check_runs  # an App reports through check runs, not statuses

    assert latest_check_runs(fake_github, REPO, sha)[f"promotion-gate / {PROMOTES}"]["app"]["id"] == 42
    assert f"promotion-gate/{PROMOTES}" not in fake_github.statuses(REPO, sha)
    assert fake_github.comments(REPO, number)[0]["user"]["login"] == "promotion-gate[bot]"
    assert len(fake_github.calls("POST", "/app/installations/7/access_tokens")) == 1
    assert len(fake_github.calls("GET", "/repos/acme/models/installation")) == 1
