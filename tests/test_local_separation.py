"""Separation of duties on a local repository (`promotion-gate run`, the demo, the Slack path on a local
checkout): who requested, authored or committed the change may not sign it off, however the requester
is spelled and however many commits follow theirs."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from promotion_gate.checklists.decision import PromotionRequest
from promotion_gate.config.policy_source import load_policy
from promotion_gate.local_repo.forge import LocalForge

POLICY = load_policy()
AT = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)


def git(repo: Path, *args: str, email: str = "ci@example.com") -> str:
    env = {"GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": email, "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": email,
           "HOME": str(repo), "PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True).stdout.strip()


def change(tmp_path: Path, *authors: str) -> Path:
    """A repository whose `main` is production, and a change on top of it: one commit per author email."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "production")
    git(repo, "checkout", "-q", "-b", "change")
    for i, email in enumerate(authors):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"commit {i}", email=email)
    return repo


def excluded(repo: Path, requester: str) -> set[str]:
    request = PromotionRequest(repository=str(repo), system="support-assistant", commit=git(repo, "rev-parse", "HEAD"),
                               requester=requester, requested_at=AT)
    return LocalForge(str(repo), "main").excluded_identities(request, POLICY)


@pytest.mark.parametrize(("requester", "authors"), [
    ("sam-sec", ["ci@example.com"]),           # the GitHub login, as written in the policy
    ("Sam-Sec", ["ci@example.com"]),           # logins are case-insensitive
    ("SAM@example.com", ["ci@example.com"]),   # so are emails
    ("Sam", ["ci@example.com"]),               # the identity's own name
    ("dana-dev", ["Sam@Example.com"]),          # a committer, email in another case
    ("dana-dev", ["sam@example.com"] + ["ci@example.com"] * 250),  # sam's commit, then 250 by CI
    ("dana-dev", ["1234567+sam-sec@users.noreply.github.com"]),  # sam's commit made on github.com, email private
    ("dana-dev", ["sam+laptop@example.com"]),  # sam's mailbox with a +tag
    ("sam-sec ", ["ci@example.com"]),          # a trailing space
    ("ｓａｍ-ｓｅｃ", ["ci@example.com"]),        # full-width letters
    ("sam-sec\u200b", ["ci@example.com"]),     # a zero-width space
    ("1234567+sam-sec@users.noreply.github.com", ["ci@example.com"]),  # the requester as GitHub's noreply address
    ("sam+x@example.com", ["ci@example.com"]),  # the requester's mailbox with a +tag
], ids=["login", "login in another case", "email in another case", "identity name in another case",
        "committer email in another case", "a committer followed by 250 commits", "a noreply committer",
        "a committer's +tag", "requester with a trailing space", "requester in full-width letters",
        "requester with a zero-width space", "requester as a noreply address", "requester's +tag"])
def test_sam_may_not_sign_off_a_change_he_requested_or_committed(tmp_path, requester, authors) -> None:
    assert "sam" in excluded(change(tmp_path, *authors), requester)


def test_a_co_author_under_githubs_noreply_address_is_excluded(tmp_path) -> None:
    repo = change(tmp_path, "dana@example.com")
    git(repo, "commit", "-q", "--allow-empty", "-m", "pair\n\nCo-authored-by: Sam <1234567+sam-sec@users.noreply.github.com>",
        email="dana@example.com")
    assert "sam" in excluded(repo, "dana-dev")


def test_someone_who_did_not_take_part_is_not_excluded(tmp_path) -> None:
    assert "sam" not in excluded(change(tmp_path, "ci@example.com"), "dana-dev")
