"""The policy-impact check on a pull request that changes the policy, run by the
`promotion-request` dispatch against the fake GitHub (PyGithub), under Prefect's harness.
End state asserted on the head commit: `promotion-gate/policy-impact` as a commit status (token)
or a check run (App), with the systems that would go out of policy and why."""

from __future__ import annotations

import pytest
import yaml

from promotion_gate.flows.dispatch import promotion_request
from promotion_gate.flows.policy_impact import POLICY_FILE, touched_policy, watched_policy_paths
from promotion_gate.config.settings import Settings
from tests.conftest import ROOT
from tests.fakes.github_routes_checks import check_runs, latest_check_runs
from tests.github_support import REPO, gate_env
from tests.test_inventory_github import production_repo

POLICY_YAML = (ROOT / "checklists" / "policy" / "policy.yaml").read_text()
CONTEXT = "promotion-gate/policy-impact"


def edited(*edits) -> str:
    data = yaml.safe_load(POLICY_YAML)
    for edit in edits:
        edit(data)
    return yaml.safe_dump(data)


def drop_pii(data):
    data["providers"]["anthropic"]["data_classes"] = ["public", "internal", "confidential", "health"]


def bump(data):
    data["version"] = "2026.12.9"


def add_pii(data):  # a loosening: openai may now receive health data
    data["providers"]["openai"]["data_classes"] = sorted(set(data["providers"]["openai"]["data_classes"]) | {"health"})


def recert_sooner(data):
    data["tiers"]["high"]["recertify_after_days"] = 1  # production was approved more than a day ago


def policy_pr(fake, files: dict) -> tuple[str, int]:
    """acme/models: production (support-assistant's lock on main) and the policy on main; a PR changing `files`."""
    production_repo(fake, REPO, "support-assistant")
    fake.commit_files(REPO, "main", {POLICY_FILE: POLICY_YAML}, "The policy", author_login="platform")
    sha = fake.commit_files(REPO, "policy-change", files, "Change the policy", author_login="pat")
    return sha, fake.open_pull(REPO, "policy-change", "main", "Change the policy", "pat")


@pytest.fixture
def env(fake_github, monkeypatch, tmp_path, prefect_harness):
    gate_env(monkeypatch, fake_github, tmp_path / "store")
    return monkeypatch


def dispatch(sha: str, number: int, action: str = "guard") -> None:
    promotion_request(action=action, repository=REPO, pull_request=number, head_sha=sha, sender="pat",
                      base="main" if action == "guard" else None)


@pytest.mark.parametrize("files,state,description", [
    ({POLICY_FILE: edited(drop_pii)}, "failure",
     "1 of 1 production systems would be out of policy: support-assistant"),
    ({POLICY_FILE: edited(bump)}, "success", "no production system goes out of policy (1 checked)"),
    ({POLICY_FILE: edited(add_pii)}, "success", "no production system goes out of policy (1 checked)"),
    ({POLICY_FILE: edited(recert_sooner)}, "success",
     "no production system goes out of policy (1 checked); 1 would be due for re-certification"),
    ({POLICY_FILE: "version: [unterminated\n"}, "failure", "policy impact not judged: "),
    ({POLICY_FILE: edited(lambda d: d["items"].append(dict(d["items"][0], id="PG-NOPE-001")))}, "failure",
     "policy impact not judged: checklists/policy/policy.yaml@"),
    ({POLICY_FILE: None}, "failure", "policy impact not judged: the pull request deletes checklists/policy/policy.yaml"),
], ids=["a tightening that puts production out of policy", "a version bump", "a loosening",
        "re-certification sooner: due, not out of policy", "a policy that does not parse",
        "an item without a check (a policy that does not load)", "the policy deleted"])
def test_the_policy_impact_status_on_the_head(fake_github, env, files, state, description):
    sha, number = policy_pr(fake_github, files)
    dispatch(sha, number)
    status = fake_github.statuses(REPO, sha)[CONTEXT]
    assert status["state"] == state and status["description"].startswith(description), status["description"]
    assert len(status["description"]) <= 140


def test_a_pr_that_does_not_touch_the_policy_gets_no_policy_check(fake_github, env):
    sha, number = policy_pr(fake_github, {"docs/readme.md": "policy.yaml mentioned, not changed\n"})
    dispatch(sha, number)
    assert CONTEXT not in fake_github.statuses(REPO, sha)
    assert not fake_github.calls("GET", f"/repos/{REPO}/contents/{POLICY_FILE}")  # no read beyond the file list


def test_the_policy_moved_away_is_a_deletion(fake_github, env):
    sha, number = policy_pr(fake_github, {POLICY_FILE: None, "checklists/policy/old-policy.yaml": POLICY_YAML})
    dispatch(sha, number)
    assert fake_github.statuses(REPO, sha)[CONTEXT]["state"] == "failure"


def test_a_labelled_policy_pr_is_checked_on_the_promotion_path_too(fake_github, env, monkeypatch):
    import promotion_gate.flows.dispatch as dispatch_module

    sha, number = policy_pr(fake_github, {POLICY_FILE: edited(drop_pii)})
    monkeypatch.setattr(dispatch_module, "post_no_system_comment", lambda *a: None)  # the comment is not under test
    promotion_request(action="promote", repository=REPO, pull_request=number, head_sha=sha, sender="pat", author="pat")
    assert fake_github.statuses(REPO, sha)[CONTEXT]["state"] == "failure"


def test_with_an_app_the_verdict_is_a_check_run_listing_each_system_and_why(fake_github, env, tmp_path):
    from tests.github_support import as_github_app

    as_github_app(env, fake_github, tmp_path)
    sha, number = policy_pr(fake_github, {POLICY_FILE: edited(drop_pii)})
    fake_github.add_installation(7, 42, "acme", repositories=[REPO])
    dispatch(sha, number)
    run = latest_check_runs(fake_github, REPO, sha)[CONTEXT]
    assert (run["status"], run["conclusion"]) == ("completed", "failure")
    assert run["output"]["title"] == "1 of 1 production systems would be out of policy: support-assistant"
    summary = run["output"]["summary"]
    assert "- **support-assistant** in acme/models: current → out-of-policy" in summary
    assert "PG-RECERT-002 (out-of-policy): anthropic may no longer receive pii" in summary
    assert CONTEXT not in fake_github.statuses(REPO, sha)  # statuses are for tokens
    dispatch(sha, number)  # the same head again: the same run, edited, not a second one
    assert len([r for r in check_runs(fake_github, REPO, sha) if r["name"] == CONTEXT]) == 1


@pytest.mark.parametrize("configured,changed,touched", [
    (None, [POLICY_FILE], POLICY_FILE),
    (None, ["checklists/policy/other.yaml"], None),
    ("governance/policy.yaml", ["governance/policy.yaml"], "governance/policy.yaml"),
    ("/etc/promotion-gate/policy.yaml", ["etc/promotion-gate/policy.yaml"], None),
    ("../outside/policy.yaml", ["outside/policy.yaml"], None),
    ("governance/policy.yaml", [POLICY_FILE], POLICY_FILE),
], ids=["the gate's own path", "another file beside it", "a repository-relative configured path",
        "an absolute configured path is the gate's own file, not the repository's", "a path leaving the repository",
        "the default path is always watched"])
def test_which_file_is_the_policy(configured, changed, touched):
    settings = Settings(policy_path=configured)
    assert touched_policy(settings, changed) == touched
    assert POLICY_FILE in watched_policy_paths(settings)
