"""The promotion flow under Prefect's test harness, against a local git repository."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone

import pytest

from promotion_gate.checklists.decision import PromotionRequest, Verdict
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.flows.promotion import promotion_gate

pytestmark = pytest.mark.usefixtures("prefect_harness")


def request(repo, commit, system, requester="dana-dev") -> PromotionRequest:
    return PromotionRequest(repository=str(repo), system=system, commit=commit, requester=requester,
                            requested_at=datetime.now(timezone.utc))


def git(repo, *args) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_low_tier_promotes_with_branch_lock_and_report(example_repo, tmp_path) -> None:
    repo, commit = example_repo
    store = tmp_path / "store"
    decision = promotion_gate(request(repo, commit, "helpdesk-summarizer"), store=str(store))
    assert decision.verdict == Verdict.promoted
    branch = f"promote/helpdesk-summarizer/{commit[:7]}"
    assert decision.promotion.branch == branch
    lock = json.loads(git(repo, "show", f"{branch}:ai-systems/helpdesk-summarizer/production.lock.json"))
    assert lock["source_commit"] == commit and lock["decision_id"] == decision.decision_id
    assert {e["path"] for e in lock["evidence"]} == {"evals/promptfoo.json", "evals/junit.xml"}
    assert "PROMOTED" in git(repo, "show", f"{branch}:audit/helpdesk-summarizer/{decision.decision_id}.md")
    assert git(repo, "rev-parse", f"{branch}~1") == git(repo, "rev-parse", "main")  # off the production branch
    folder = store / "decisions" / decision.decision_id
    assert {p.name for p in folder.iterdir()} >= {"report.md", "report.html", "decision.json"}


def test_blocked_system_has_no_branch_and_a_recorded_decision(example_repo, tmp_path) -> None:
    repo, commit = example_repo
    decision = promotion_gate(request(repo, commit, "loan-prescreener"), store=str(tmp_path / "s"))
    assert decision.verdict == Verdict.blocked
    assert {r.id for r in decision.checklist.failures} >= {"PG-VENDOR-002", "PG-DATA-001", "PG-FALLBACK-001", "PG-REVIEW-001"}
    assert git(repo, "branch", "--list", "promote/loan-prescreener/*") == ""
    assert AuditStore(tmp_path / "s").find(decision.decision_id) is not None


def test_high_tier_promotes_after_sign_offs_and_refuses_the_requester(example_repo, tmp_path) -> None:
    repo, commit = example_repo
    decision = promotion_gate(request(repo, commit, "support-assistant"), approvals=["dana", "sam", "rene"], store=str(tmp_path / "s"))
    assert decision.verdict == Verdict.promoted
    assert {(s.identity, s.role) for s in decision.signoffs} == {("sam", "security"), ("rene", "risk")}
    assert [c.identity for c in decision.refused] == ["dana"]


def test_high_tier_without_quorum_is_blocked_and_a_rejection_blocks(example_repo, tmp_path) -> None:
    repo, commit = example_repo
    one = promotion_gate(request(repo, commit, "support-assistant"), approvals=["sam"], store=str(tmp_path / "a"))
    assert one.verdict == Verdict.blocked and "missing 1 risk" in one.reasons[0]
    rejected = promotion_gate(request(repo, commit, "support-assistant"), approvals=["sam", "rene:reject:drill too small"], store=str(tmp_path / "b"))
    assert rejected.verdict == Verdict.blocked and "drill too small" in rejected.reasons[0]
    assert git(repo, "branch", "--list", "promote/support-assistant/*") == ""


def test_running_the_same_promotion_twice_gives_one_branch_and_two_ledger_entries_the_second_following_the_first(example_repo, tmp_path) -> None:
    repo, commit = example_repo
    store = tmp_path / "s"
    first = promotion_gate(request(repo, commit, "helpdesk-summarizer"), store=str(store))
    second = promotion_gate(request(repo, commit, "helpdesk-summarizer"), store=str(store))
    assert first.decision_id != second.decision_id and second.follows == first.decision_id  # every run is on record
    assert first.promotion.commit == second.promotion.commit
    assert len(AuditStore(store).lines()) == 2
    assert git(repo, "branch", "--list", "promote/*").count("promote/") == 1
    assert git(repo, "rev-list", "--count", "refs/promotion-gate/ledger") == "2"  # anchored once per decision


def test_the_same_request_recorded_again_is_one_entry(example_repo, tmp_path) -> None:
    """A resumed run re-derives the same decision id: nothing is recorded twice."""
    repo, commit = example_repo
    store = tmp_path / "s"
    ask = request(repo, commit, "helpdesk-summarizer")
    first = promotion_gate(ask, store=str(store))
    again = promotion_gate(ask, store=str(store))
    assert first.decision_id == again.decision_id and len(AuditStore(store).lines()) == 1


def test_an_exception_ends_in_a_recorded_error_decision(tmp_path) -> None:
    missing_repo = tmp_path / "not-a-repo"
    missing_repo.mkdir()
    decision = promotion_gate(request(missing_repo, "b" * 40, "helpdesk-summarizer"), store=str(tmp_path / "s"))
    assert decision.verdict == Verdict.error
    assert "git" in decision.reasons[0]
    assert AuditStore(tmp_path / "s").find(decision.decision_id) is not None


HELPDESK = "ai-systems/helpdesk-summarizer"


def _yaml_cut(text: str) -> str:
    return "schema_version: 1\nname: [unclosed\n"


def _nan_threshold(text: str) -> str:  # the team in a hurry: a floor that no number can fail
    return text.replace("thresholds: {pass_rate: {min: 0.90}}", "thresholds: {pass_rate: {min: .nan}}")


def _nan_in_evidence(repo) -> None:  # the evidence itself holds a NaN rate
    path = repo / HELPDESK / "evals/promptfoo.json"
    path.write_text(path.read_text().replace('"score": 1.0', '"score": NaN', 1))


@pytest.mark.parametrize("case, edit, item, names", [
    ("malformed_yaml", lambda repo: _edit(repo, "promotion.yaml", _yaml_cut), "PG-MANIFEST-001", f"{HELPDESK}/promotion.yaml:"),
    ("nan_threshold", lambda repo: _edit(repo, "promotion.yaml", _nan_threshold), "PG-MANIFEST-001", "pass_rate"),
    ("nan_in_evidence", _nan_in_evidence, "PG-EVAL-001", f"{HELPDESK}/evals/promptfoo.json"),
])
def test_unusable_input_at_the_commit_is_an_error_decision_naming_the_file(example_repo, tmp_path, case, edit, item, names) -> None:
    """Issue 9 point 1: unusable input is an error decision in the flow (exit 2 from check), never
    "blocked" and never promoted; it is recorded like any decision."""
    repo, _ = example_repo
    edit(repo)
    git(repo, "commit", "-qam", f"break the input: {case}")
    commit = git(repo, "rev-parse", "HEAD")
    decision = promotion_gate(request(repo, commit, "helpdesk-summarizer"), store=str(tmp_path / "s"))
    assert decision.verdict == Verdict.error, decision.reasons
    assert decision.reasons[0].startswith(f"{item}: ") and names in decision.reasons[0]
    assert item in {r.id for r in decision.checklist.failures if r.outcome.value == "error"}
    assert AuditStore(tmp_path / "s").find(decision.decision_id) is not None
    assert git(repo, "branch", "--list", "promote/helpdesk-summarizer/*") == ""


def _edit(repo, name: str, change) -> None:
    path = repo / HELPDESK / name
    path.write_text(change(path.read_text()))


def test_the_flow_reads_the_commit_not_the_working_tree(example_repo, tmp_path) -> None:
    repo, commit = example_repo
    (repo / "ai-systems/loan-prescreener/promotion.yaml").write_text("garbage: [")
    decision = promotion_gate(request(repo, commit, "loan-prescreener"), store=str(tmp_path / "s"))
    assert "PG-MANIFEST-001" not in {r.id for r in decision.checklist.failures}


def test_a_blocked_then_approved_promotion_is_a_new_decision(example_repo, tmp_path) -> None:
    repo, commit = example_repo
    store = tmp_path / "s"
    blocked = promotion_gate(request(repo, commit, "support-assistant"), approvals=["sam"], store=str(store))
    promoted = promotion_gate(request(repo, commit, "support-assistant"), approvals=["sam", "rene"], store=str(store))
    assert blocked.verdict == Verdict.blocked and promoted.verdict == Verdict.promoted
    assert blocked.decision_id != promoted.decision_id
    assert len(AuditStore(store).lines()) == 2
