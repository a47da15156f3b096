"""Issue 11, point 5, in the flow: a tier whose policy refuses asserted sign-offs
(`signoff.accept_asserted_signoffs: false`) does not count a console approval; the decision records
it as refused, with its code and reason. One row per tier, each beside the same approval at the
same tier accepting them. The promotion flow under Prefect's test harness, on a local repository."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
import yaml

from promotion_gate.checklists.decision import PromotionRequest, Verdict
from promotion_gate.checklists.signoff import ASSERTED_REFUSED
from promotion_gate.flows.promotion import promotion_gate
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("prefect_harness")
POLICY = yaml.safe_load((ROOT / "checklists" / "policy" / "policy.yaml").read_text())


def judged_at(tier: str, system_tier: str, quorum: dict[str, int], accept: bool) -> dict:
    """The embedded policy, with a system of ``system_tier`` judged at ``tier`` instead (the same items and
    floors as its own tier) and ``tier`` asking ``quorum`` and accepting asserted sign-offs or not."""
    policy = copy.deepcopy(POLICY)
    if tier != system_tier:
        policy["tier_rules"].insert(0, {"tier": tier, "reason": "judged at this tier (test)", "when": {"audience": "internal"}})
        policy["tiers"][tier] = copy.deepcopy(policy["tiers"][system_tier])
        for item in policy["items"]:
            tiers = [t for t in item["tiers"] if t != tier]
            item["tiers"] = tiers + [tier] if system_tier in tiers else tiers
    policy["tiers"][tier]["signoff"] |= {"quorum": quorum, "accept_asserted_signoffs": accept}
    return policy


#   tier, the example system (and its own tier), the quorum asked, the console approvals that meet it
TIERS = [
    ("low", "helpdesk-summarizer", "low", {"security": 1}, ["sam"]),
    ("medium", "helpdesk-summarizer", "low", {"platform": 1}, ["priya"]),
    ("high", "support-assistant", "high", {"security": 1, "risk": 1}, ["sam", "rene"]),
]
ROWS = [(*row, accept) for row in TIERS for accept in (True, False)]


@pytest.mark.parametrize("tier, system, own_tier, quorum, approvals, accept", ROWS,
                         ids=[f"{r[0]}-{'accepts' if r[5] else 'refuses'}-asserted" for r in ROWS])
def test_a_tier_that_refuses_asserted_sign_offs_does_not_count_a_console_approval(
        example_repo, tmp_path, monkeypatch, tier, system, own_tier, quorum, approvals, accept) -> None:
    repo, commit = example_repo
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(judged_at(tier, own_tier, quorum, accept)))
    monkeypatch.setenv("PROMOTION_GATE_POLICY_PATH", str(path))
    request = PromotionRequest(repository=str(repo), system=system, commit=commit, requester="dana-dev",
                               requested_at=datetime.now(timezone.utc))
    decision = promotion_gate(request, approvals=approvals, store=str(tmp_path / "store"))
    assert decision.checklist.tier.value == tier
    assert decision.checklist.signoff.accept_asserted_signoffs is accept
    if accept:
        assert decision.verdict == Verdict.promoted, decision.reasons
        assert sorted(s.identity for s in decision.signoffs) == sorted(approvals)
        assert {(s.channel, s.authentication) for s in decision.signoffs} == {("console", "asserted")}
        assert decision.refused == []
        return
    assert decision.verdict == Verdict.blocked and decision.signoffs == []
    assert sorted(c.reviewer for c in decision.refused) == sorted(approvals)
    assert {c.code for c in decision.refused} == {ASSERTED_REFUSED}
    assert all("only asserts who gives it" in c.reason and "authenticated sign-offs only" in c.reason for c in decision.refused)
    assert "missing" in decision.reasons[0]  # the quorum is not met: the refused approvals did not count
