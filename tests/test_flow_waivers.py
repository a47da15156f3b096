"""The real flow (Prefect's test harness, a local git repository): a waiver written into the manifest
changes nothing until a risk reviewer grants it on the console; an inconclusive low-tier item waits
for its platform reviewer."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from promotion_gate.checklists.decision import PromotionRequest, Verdict
from promotion_gate.checklists.results import Outcome
from promotion_gate.flows.promotion import promotion_gate
from tests.test_hostile import CANDIDATE_LOW, junit, promptfoo

pytestmark = pytest.mark.usefixtures("prefect_harness")
SYSTEM = "helpdesk-summarizer"
DEVELOPER = {"GIT_AUTHOR_NAME": "Dana Developer", "GIT_AUTHOR_EMAIL": "dana@example.com",
             "GIT_COMMITTER_NAME": "Dana Developer", "GIT_COMMITTER_EMAIL": "dana@example.com"}


def commit_change(repo, files: dict[str, str]) -> str:
    """The team's next commit on the candidate branch (the flow reads at this SHA)."""
    import os

    for rel, text in files.items():
        (repo / rel).write_text(text)
    env = {**os.environ, **DEVELOPER}
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "change"], check=True, env=env)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True, env=env).stdout.strip()


def request(repo, commit) -> PromotionRequest:
    return PromotionRequest(repository=str(repo), system=SYSTEM, commit=commit, requester="dana-dev",
                            requested_at=datetime.now(timezone.utc))


@pytest.fixture()
def failing_with_request(example_repo):
    repo, _ = example_repo
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # the flow judges with the clock
    manifest = yaml.safe_load((repo / f"ai-systems/{SYSTEM}/promotion.yaml").read_text())
    manifest["waivers"] = [{"item": "PG-EVAL-003", "approver": "nobody in particular", "reason": "the retriever fix lands next sprint",
                            "expires": (datetime.now(timezone.utc) + timedelta(days=10)).date()}]
    commit = commit_change(repo, {
        f"ai-systems/{SYSTEM}/promotion.yaml": yaml.safe_dump(manifest, sort_keys=False),
        f"ai-systems/{SYSTEM}/evals/promptfoo.json": promptfoo((CANDIDATE_LOW, 80, 60), stamp=stamp),
    })
    return repo, commit


def test_a_self_written_waiver_blocks_and_a_grant_by_risk_promotes(failing_with_request, tmp_path) -> None:
    repo, commit = failing_with_request
    blocked = promotion_gate(request(repo, commit), approvals=[], store=str(tmp_path / "s"))
    assert blocked.verdict == Verdict.blocked and [r.id for r in blocked.checklist.failures] == ["PG-EVAL-003"]
    refused = promotion_gate(request(repo, commit), approvals=["dana:waive:PG-EVAL-003", "priya:waive:PG-EVAL-003"], store=str(tmp_path / "s"))
    assert refused.verdict == Verdict.blocked
    assert [c.identity for c in refused.refused] == ["dana", "priya"]
    granted = promotion_gate(request(repo, commit), approvals=["rene:waive:PG-EVAL-003"], store=str(tmp_path / "s"))
    assert granted.verdict == Verdict.promoted, granted.reasons
    (waived,) = [r for r in granted.checklist.results if r.outcome == Outcome.waived]
    assert waived.id == "PG-EVAL-003" and waived.waiver.approver == "rene" and waived.waiver.role == "risk"
    recorded = json.loads((tmp_path / "s" / "decisions" / granted.decision_id / "decision.json").read_text())
    item = next(r for r in recorded["checklist"]["results"] if r["id"] == "PG-EVAL-003")
    assert item["waiver"]["approver"] == "rene" and item["waiver_request"]["asked_of"] == "nobody in particular"
    assert "every automated item passed" not in recorded["reasons"][0]


def test_an_inconclusive_low_tier_item_waits_for_its_platform_reviewer(example_repo, tmp_path) -> None:
    repo, _ = example_repo
    commit = commit_change(repo, {f"ai-systems/{SYSTEM}/evals/junit.xml": junit(1, stamp=datetime.now(timezone.utc).isoformat())})
    alone = promotion_gate(request(repo, commit), approvals=[], store=str(tmp_path / "s"))
    assert alone.verdict == Verdict.blocked and "1 platform" in alone.reasons[0]
    signed = promotion_gate(request(repo, commit), approvals=["priya"], store=str(tmp_path / "s"))
    assert signed.verdict == Verdict.promoted and [(s.identity, s.role) for s in signed.signoffs] == [("priya", "platform")]
