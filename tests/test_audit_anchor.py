"""Issue 11: the ledger head leaves the store on every decision, sign-offs say how they were
authenticated, the evidence is kept; on the fake GitHub and on a local repository."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from github import GithubException

from promotion_gate.checklists.attestation import public_pem
from promotion_gate.checklists.checkpoint import ANCHOR_REF, parse_checkpoint
from promotion_gate.checklists.decision import PromotionRequest, Verdict
from promotion_gate.cli.audit import run_verify
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.audit_store.evidence import blob_path
from promotion_gate.flows.promotion import promotion_gate
from tests.fakes.fixtures import github_client
from tests.github_support import (
    BLOCKED, LABEL, PROMOTES, REPO, UNAPPROVED, gate_env, gate_key_pem, governed_repo, request_for,
)

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def store(fake_github, monkeypatch, tmp_path):
    gate_env(monkeypatch, fake_github, tmp_path / "store")
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    return tmp_path / "store"


@pytest.fixture
def gate_pub(tmp_path):
    path = tmp_path / "gate.pub.pem"  # the auditor's copy, held outside the store
    path.write_bytes(public_pem(load_pem_private_key(gate_key_pem().encode(), None).public_key()))
    return str(path)


def checkpoints_on_github(fake, repo: str = REPO) -> list[int]:
    return [parse_checkpoint(fake.file_at(repo, sha, "checkpoint.json")).seq for sha in fake.ref_log(repo, ANCHOR_REF)]


def test_the_checkpoint_ref_advances_once_per_decision_and_the_pr_and_comment_carry_the_head(fake_github, store, gate_pub, capsys):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    blocked = promotion_gate(request_for(sha, number))
    assert blocked.verdict == Verdict.blocked and checkpoints_on_github(fake_github) == [1]
    head1 = AuditStore(store).head()
    assert f"Ledger head: entry 1, sha256 `{head1}`" in fake_github.comments(REPO, number)[0]["body"]
    fake_github.add_labels(REPO, number, LABEL)
    again = promotion_gate(request_for(sha, number))  # a re-run at the same commit is on record too
    assert again.follows == blocked.decision_id and checkpoints_on_github(fake_github) == [2, 1]
    fixed = fake_github.commit_files(REPO, "feature", {}, "nothing changed but the head", author_login="alice")
    promoted_sha, promoted_number = governed_repo(fake_github, PROMOTES, repo="acme/other")
    promoted = promotion_gate(request_for(promoted_sha, promoted_number, repo="acme/other"))
    assert promoted.verdict == Verdict.promoted and fixed
    assert checkpoints_on_github(fake_github, "acme/other") == [3]  # one store, anchored in the repository it governs
    pull = next(p for p in fake_github.pulls("acme/other") if p["head"]["ref"].startswith("promote/"))
    assert f"Ledger head: entry 3, sha256 `{AuditStore(store).head()}`" in pull["body"]
    capsys.readouterr()
    assert run_verify(str(store), keys=[gate_pub], anchor_ref="acme/other", allow_newer=False) == 0
    out = capsys.readouterr().out
    assert "anchor: acme/other refs/promotion-gate/ledger holds; newest anchored seq 3" in out, out


def test_a_force_pushed_ref_is_reported_by_verify_and_a_non_fast_forward_is_refused(fake_github, store, gate_pub, capsys):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    for _ in range(3):
        fake_github.add_labels(REPO, number, LABEL)
        promotion_gate(request_for(sha, number))
    log = fake_github.ref_log(REPO, ANCHOR_REF)
    assert len(log) == 3
    repo = github_client(fake_github).get_repo(REPO)
    with pytest.raises(GithubException) as refused:  # what the gate sends (force=false) cannot rewind the ref
        repo.get_git_ref("promotion-gate/ledger").edit(log[2], force=False)
    assert refused.value.status == 422 and fake_github.ref_log(REPO, ANCHOR_REF) == log
    capsys.readouterr()
    assert run_verify(str(store), keys=[gate_pub], anchor_ref=REPO) == 0
    fake_github.force_ref(REPO, ANCHOR_REF, log[1])  # an insider with push rights rewinds it
    capsys.readouterr()
    assert run_verify(str(store), keys=[gate_pub], anchor_ref=REPO) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL seq 2") and "anchor ref rewound" in out and "ledger holds 3 entries" in out, out


def test_the_github_path_refuses_the_demo_key(fake_github, store, monkeypatch):
    monkeypatch.delenv("PROMOTION_GATE_SIGNING_KEY")
    sha, number = governed_repo(fake_github, PROMOTES)
    with pytest.raises(Exception, match="refuses the generated demo key.*PROMOTION_GATE_SIGNING_KEY_PATH"):
        promotion_gate(request_for(sha, number))
    assert not store.exists() or not (store / "ledger.jsonl").exists()
    assert not fake_github.state.repo(REPO).refs


def test_the_github_path_never_counts_an_asserted_sign_off(fake_github, store):
    sha, number = governed_repo(fake_github, "support-assistant")
    decision = promotion_gate(request_for(sha, number, system="support-assistant"), approvals=["sam", "rene"])
    assert decision.verdict == Verdict.blocked and decision.signoffs == []
    assert {c.code for c in decision.refused} == {"asserted-refused"}, decision.refused
    assert fake_github.labels(REPO, number) == [BLOCKED]


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def local(repo, commit, system) -> PromotionRequest:
    return PromotionRequest(repository=str(repo), system=system, commit=commit, requester="dana-dev",
                            requested_at=datetime.now(timezone.utc))


def test_a_local_run_advances_the_ref_records_asserted_sign_offs_and_keeps_the_evidence(example_repo, tmp_path, monkeypatch):
    for name in ("PROMOTION_GATE_SIGNING_KEY_PATH", "PROMOTION_GATE_SIGNING_KEY", "PROMOTION_GATE_SIGNING_KEY_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    repo, commit = example_repo
    store = tmp_path / "store"
    first = promotion_gate(local(repo, commit, "helpdesk-summarizer"), store=str(store))
    assert git(repo, "rev-list", "--count", ANCHOR_REF) == "1"
    second = promotion_gate(local(repo, commit, "support-assistant"), approvals=["sam", "rene"], store=str(store))
    assert git(repo, "rev-list", "--count", ANCHOR_REF) == "2"
    checkpoint = json.loads(git(repo, "show", f"{ANCHOR_REF}:checkpoint.json"))
    assert (checkpoint["seq"], checkpoint["decision_id"], checkpoint["head"]) == (2, second.decision_id, AuditStore(store).head())
    assert second.verdict == Verdict.promoted and {(s.channel, s.authentication) for s in second.signoffs} == {("console", "asserted")}
    report = (store / "decisions" / second.decision_id / "report.md").read_text()
    assert "| sam | asserted (not verified) |" in report.replace("(console) ", "")
    assert "signed with a DEMO key: not evidence" in report  # no key configured: the demo key, said so
    for decision in (first, second):
        for rec in decision.checklist.evidence:
            blob = blob_path(store, rec.sha256)
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == rec.sha256, rec.path
    demo_pub = str(tmp_path / "demo-keys" / "demo-signing-key.pub.pem")
    assert run_verify(str(store), keys=[demo_pub], anchor_ref=str(repo)) == 4  # holds, but a demo key is not evidence
    blob = blob_path(store, first.checklist.evidence[0].sha256)
    blob.write_bytes(blob.read_bytes() + b" ")
    assert run_verify(str(store), keys=[demo_pub], anchor_ref=str(repo)) == 1
    assert AuditStore(store).verify().problem.detail.startswith("evidence/sha256/")
