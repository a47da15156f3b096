"""`promotion-gate inventory --github` with no repository named: every repository the GitHub App
is installed on (GET /app/installations, then GET /installation/repositories with each
installation's token), read as one inventory. Against the fake GitHub, through PyGithub."""

from __future__ import annotations

import hashlib
import json

import pytest

from promotion_gate.cli.inventory import run_inventory
from promotion_gate.github_api.inventory import installed_repositories
from promotion_gate.config.settings import SettingsError, load_settings
from tests.conftest import NOW
from tests.fakes import FakeGitHub
from tests.github_support import gate_env, system_files

MODELS = {"support-assistant": "anthropic/claude-sonnet-4@claude-sonnet-4-20250514",
          "helpdesk-summarizer": "openai/gpt-4o-mini@gpt-4o-mini-2024-07-18"}


def production_repo(fake: FakeGitHub, repo: str, system: str, *, branch: str = "main") -> str:
    """`repo` with `system`'s files on `sandbox` and its lock file (pinning them) on `branch`; the source commit."""
    if repo.lower() not in fake.state.repos:
        fake.create_repo(repo)
    files = system_files(system, NOW)
    source = fake.commit_files(repo, "sandbox", files, f"Add {system}", author_login="dana")
    manifest = files[f"ai-systems/{system}/promotion.yaml"]
    lock = {"schema_version": 1, "system": system, "source_commit": source,
            "manifest_sha256": hashlib.sha256(manifest).hexdigest(), "model": MODELS[system],
            "evidence": [{"path": "evals/promptfoo.json", "format": "promptfoo", "sha256": "a" * 64,
                          "metrics": {"pass_rate": 0.995}, "samples": {"pass_rate": 400}, "produced_at": NOW.isoformat()}],
            "decision_id": f"{system}-{source[:7]}-0123456789", "policy_version": "2026.11.1",
            "policy_digest": "b" * 64, "promoted_at": NOW.isoformat(), "approved_by": ["rene", "sam"]}
    fake.commit_files(repo, branch, {f"ai-systems/{system}/production.lock.json": json.dumps(lock, indent=2) + "\n"},
                      f"Promote {system}", author_login="promotion-gate-bot")
    return source


@pytest.fixture
def app_env(fake_github, monkeypatch, tmp_path):
    """The App (id 42) installed on two repositories of acme (not on acme/private) and on all of umbrella;
    another App's installation on beta. Token auth switched off."""
    from tests.github_support import as_github_app
    from tests.test_fakes import private_key_pem

    gate_env(monkeypatch, fake_github, tmp_path / "store")
    as_github_app(monkeypatch, fake_github, tmp_path, installation=None)
    fake_github.register_app(99, private_key_pem(), slug="someone-else")
    production_repo(fake_github, "acme/models", "support-assistant")
    production_repo(fake_github, "acme/helpdesk", "helpdesk-summarizer")
    production_repo(fake_github, "acme/private", "helpdesk-summarizer")
    production_repo(fake_github, "umbrella/Chat", "support-assistant")
    fake_github.create_repo("umbrella/docs")  # installed, no system: contributes no row
    production_repo(fake_github, "beta/other", "support-assistant")
    fake_github.add_installation(7, 42, "acme", repositories=["acme/models", "acme/helpdesk"])
    fake_github.add_installation(8, 42, "umbrella")
    fake_github.add_installation(9, 99, "beta")
    return monkeypatch


def test_every_repository_the_app_is_installed_on_and_no_other(fake_github, app_env):
    names, notes = installed_repositories(load_settings())
    assert names == ["acme/helpdesk", "acme/models", "umbrella/Chat", "umbrella/docs"] and notes == []
    listed = fake_github.calls("GET", "/installation/repositories")
    assert len(listed) == 2 and all(c.token.startswith("ghs_") for c in listed)  # installation tokens, not the JWT


def test_the_configured_installation_only(fake_github, app_env):
    app_env.setenv("PROMOTION_GATE_GITHUB_INSTALLATION_ID", "8")
    assert installed_repositories(load_settings()) == (["umbrella/Chat", "umbrella/docs"], [])


def test_inventory_github_without_repositories_is_one_inventory_of_every_installation(fake_github, app_env, capsys):
    assert run_inventory(None, github=[], fmt="json", policy=None, production_branch=None, store=None) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert sorted((r["repository"], r["system"]) for r in rows) == [
        ("acme/helpdesk", "helpdesk-summarizer"), ("acme/models", "support-assistant"), ("umbrella/Chat", "support-assistant")]


def test_a_token_cannot_list_installations_and_says_so(fake_github, monkeypatch, tmp_path, capsys):
    gate_env(monkeypatch, fake_github, tmp_path / "store")  # token auth, no App
    with pytest.raises(SettingsError, match="lists the GitHub App's installations"):
        installed_repositories(load_settings())
    assert run_inventory(None, github=[], fmt="table", policy=None, production_branch=None, store=None) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error:") and "name the repositories" in err and "Traceback" not in err


def test_installation_repositories_needs_an_installation_token(fake_github):
    import requests

    answer = requests.get(f"{fake_github.base_url}/installation/repositories", headers={"Authorization": "token personal"}, timeout=5)
    assert answer.status_code == 403 and "installation access token" in answer.json()["message"]


def test_github_down_while_listing_is_one_error_line(fake_github, app_env, capsys):
    fake_github.fail_next("GET /installation/repositories", status=502, times=10)
    assert run_inventory(None, github=[], fmt="table", policy=None, production_branch=None, store=None) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error:") and "502" in err and "Traceback" not in err


def test_a_symlinked_lock_is_a_problem_and_a_truncated_tree_an_error(fake_github, monkeypatch, tmp_path):
    """A lock that links to another file (its target could change with no lock path changed) is not
    read through; a tree GitHub lists only in part would leave systems out: an error, not a short inventory."""
    from promotion_gate.github_api.inventory import read_github_systems
    from promotion_gate.forge.candidate_reader import SourceError
    from tests.fakes import github_routes_git

    gate_env(monkeypatch, fake_github, tmp_path / "store")
    production_repo(fake_github, "acme/models", "support-assistant")
    lock = "ai-systems/support-assistant/production.lock.json"
    data = fake_github.file_at("acme/models", "main", lock)
    fake_github.commit_files("acme/models", "main", {lock.replace("production.lock", "lock-data"): data}, "tidy",
                             symlinks={lock: "lock-data.json"})
    (system,) = read_github_systems(load_settings(), ["acme/models"])
    assert system.lock is None and "symbolic link" in system.problems[0]
    monkeypatch.setattr(github_routes_git, "TREE_ENTRIES_LISTED", 3)
    with pytest.raises(SourceError, match="truncated"):
        read_github_systems(load_settings(), ["acme/models"])
