"""What the gate says in Slack: the request, its closed state, the reminder, the modal, the refusal (pure)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from promotion_gate.checklists.candidate import LockedEvidence, ProductionLock
from promotion_gate.checklists.checklist import evaluate
from promotion_gate.checklists.decision import PromotionRequest
from promotion_gate.checklists.results import AppliedWaiver, Outcome
from promotion_gate.checklists.signoff import Action, Signoff, tally
from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
from promotion_gate.config.policy_source import load_policy
from promotion_gate.notifications.slack_interactions import (
    ACTION_APPROVE, ACTION_REJECT, BLOCK_REASON, VIEW_REJECT, MessageRef, SignoffTarget, WaitingPromotion,
    parse_interaction,
)
from promotion_gate.notifications.slack_messages import (
    RequestContext, build_changes, build_closed_message, build_refusal, build_reject_modal, build_reminder,
    build_request_message,
)
from tests.conftest import ROOT
from tests.fakes.slack_payloads import click_payload, form_encode

NOW = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)
RUN = "0b5f0e4e-9d1c-4a57-9a0e-4d1f2b3c4d5e"


@pytest.fixture(scope="module")
def checklist():
    candidate = read_candidate(WorkingTree(ROOT / "examples" / "repo"), "support-assistant", "c" * 40)
    cl = evaluate(candidate, load_policy(), NOW)
    results = list(cl.results)
    results[1] = results[1].model_copy(update={"outcome": Outcome.warn, "reason": "owner <@U0BOSS> & team"})
    results[2] = results[2].model_copy(update={"outcome": Outcome.inconclusive, "reason": "no drill for 2 of 3 paths"})
    results[3] = results[3].model_copy(update={"outcome": Outcome.waived, "waiver": AppliedWaiver(
        approver="sam", reason="vendor review booked for December", expires=date(2026, 12, 31),
        waived_outcome=Outcome.fail)})
    return cl.model_copy(update={"results": results})


def context(checklist, baseline=None) -> RequestContext:
    request = PromotionRequest(repository="acme/models", system="support-assistant", commit=checklist.commit,
                               requester="dana-dev", requested_at=NOW, pull_request=7)
    return RequestContext(request=request, checklist=checklist, baseline=baseline, run=RUN,
                          deadline=NOW + timedelta(hours=48), report_url="https://prefect.example/runs/flow-run/x",
                          pull_request_url="https://github.com/acme/models/pull/7")


def texts(blocks) -> str:
    return json.dumps(blocks)


def test_the_request_shows_who_what_why_and_every_item_to_review(checklist):
    body = build_request_message(context(checklist), "security", tally(checklist.signoff.quorum, []))
    shown = texts(body["blocks"])
    for fact in ["support-assistant", "@acme/support-ai", "high: customer-facing and handles personal",
                 "dana-dev", "*Sign-off asked of*\\nsecurity", checklist.digest[:12], "policy 2026.12.7",
                 "<https://prefect.example/runs/flow-run/x|Report>", "<https://github.com/acme/models/pull/7|PR #7>",
                 "*WARN* `PG-OWNER-001`", "*INCONCLUSIVE* `PG-VENDOR-001`", "no drill for 2 of 3 paths",
                 "*WAIVED* `PG-VENDOR-002`", "waived by sam until 2026-12-31 (was fail): vendor review booked",
                 "first promotion: nothing in production", "Still needed:* 1 security, 1 risk"]:
        assert fact in shown, fact
    assert "owner &lt;@U0BOSS&gt; &amp; team" in shown and "<@U0BOSS>" not in shown
    assert body["text"] == f"support-assistant at ccccccc (high tier) asks for security sign-off"
    assert len(body["blocks"]) <= 50


def test_the_buttons_carry_the_run_the_promotion_the_digest_and_the_role(checklist):
    body = build_request_message(context(checklist), "risk", tally(checklist.signoff.quorum, []))
    message = {"ts": "1.2", **body}
    for action_id, action in [(ACTION_APPROVE, Action.approve), (ACTION_REJECT, Action.reject)]:
        click = parse_interaction(form_encode(click_payload(message, "C0RISK", action_id, "U0RENE")))
        assert click.action == action
        assert click.target == SignoffTarget(run=RUN, key="acme/models#7@" + "c" * 40 + ":support-assistant",
                                             digest=checklist.digest, role="risk")


def test_the_updated_request_says_who_approved_when_and_what_is_missing(checklist):
    sam = Signoff(reviewer="U0SAM", identity="sam", role="security", action=Action.approve, at=NOW,
                  digest=checklist.digest, channel="slack", comment="redaction checked")
    state = tally(checklist.signoff.quorum, [sam])
    shown = texts(build_request_message(context(checklist), "risk", state, [sam])["blocks"])
    assert f"sam (security) approved at <!date^{int(NOW.timestamp())}^" in shown and "redaction checked" in shown
    assert "Still needed:* 1 risk" in shown and ACTION_APPROVE in shown


def test_a_closed_request_has_the_outcome_and_no_buttons(checklist):
    body = build_request_message(context(checklist), "risk", tally(checklist.signoff.quorum, []),
                                 closed="Rejected by rene (risk): drill too small")
    shown = texts(body["blocks"])
    assert "*Rejected by rene (risk): drill too small*" in shown
    assert ACTION_APPROVE not in shown and ACTION_REJECT not in shown and "Still needed" not in shown
    assert body["text"].endswith(": Rejected by rene (risk): drill too small")


def test_what_changed_since_production(checklist):
    baseline = ProductionLock(
        system="support-assistant", source_commit="b" * 40, manifest_sha256="0" * 64,
        model="openai/gpt-4o@gpt-4o-2024-08-06",
        evidence=[LockedEvidence(path="evals/promptfoo.json", format="promptfoo", sha256="1" * 64,
                                 metrics={"pass_rate": 0.95})],
        decision_id="d", policy_version="2026.10.1", policy_digest="2" * 64, promoted_at=NOW)
    lines = build_changes(checklist, baseline)
    assert lines[0] == ("model openai/gpt-4o@gpt-4o-2024-08-06 → anthropic/claude-sonnet-4@claude-sonnet-4-20250514"
                        " (vendor openai → anthropic)")
    assert "data classes: internal, pii" in lines and "manifest changed since bbbbbbb" in lines
    assert lines[3:] == ["evals/promptfoo.json pass_rate 0.95 → 0.995 (+0.045)",
                         "evals/fallback-drill.xml: new evidence, not in production"]
    same = baseline.model_copy(update={"model": "anthropic/claude-sonnet-4@claude-sonnet-4-20250514",
                                       "manifest_sha256": checklist.manifest_sha256})
    assert build_changes(checklist, same)[0] == "model unchanged: anthropic/claude-sonnet-4@claude-sonnet-4-20250514"


def test_the_reminder_the_modal_and_the_refusal():
    deadline = NOW + timedelta(hours=48)
    assert build_reminder("support-assistant", "abc1234", "risk", 1, deadline).startswith(
        "Reminder: support-assistant at `abc1234` still needs 1 risk sign-off; without it the promotion is blocked")
    target = SignoffTarget(run=RUN, key="k", digest="0123456789ab", role="risk")
    view = build_reject_modal(target, MessageRef(role="risk", channel="C0RISK", ts="1.2"))
    assert view["callback_id"] == VIEW_REJECT and view["blocks"][0]["block_id"] == BLOCK_REASON
    assert json.loads(view["private_metadata"])["target"] == target.model_dump()
    assert build_refusal("support-assistant", "dana requested this change") == (
        "Your answer on the promotion of support-assistant was not counted: dana requested this change.")


def test_a_request_closed_from_outside_the_flow_needs_only_the_record(checklist):
    record = WaitingPromotion(run=RUN, key="k", system="support-assistant", commit="c" * 40, digest=checklist.digest,
                              quorum={"security": 1}, excluded=[], posted_at=NOW, deadline=NOW, remind_at=NOW,
                              messages=[MessageRef(role="security", channel="C0SEC", ts="1.2")])
    body = build_closed_message(record, "Withdrawn: superseded by 1234567")
    assert "Withdrawn: superseded by 1234567" in texts(body) and ACTION_APPROVE not in texts(body)


def test_the_change_against_production_is_computed_once_and_both_views_agree(checklist):
    """checklists.production_change is the one source; the report's table and the Slack lines render it."""
    from promotion_gate.checklists.production_change import MetricDelta, production_change
    from promotion_gate.notifications.report import production_changes

    baseline = ProductionLock(
        system="support-assistant", source_commit="b" * 40, manifest_sha256=checklist.manifest_sha256,
        model="anthropic/claude-sonnet-4@claude-sonnet-4-20250514",
        evidence=[LockedEvidence(path="evals/promptfoo.json", format="promptfoo", sha256="1" * 64,
                                 metrics={"pass_rate": 0.995, "latency_p95": 2.0}),
                  LockedEvidence(path="evals/retired.json", format="promptfoo", sha256="3" * 64, metrics={"pass_rate": 0.9})],
        decision_id="d", policy_version="2026.10.1", policy_digest="2" * 64, promoted_at=NOW)
    change = production_change(checklist, baseline)
    kinds = {f.path: f.kind for f in change.files}
    assert kinds == {"evals/promptfoo.json": "changed", "evals/fallback-drill.xml": "new", "evals/retired.json": "dropped"}
    promptfoo = next(f for f in change.files if f.path == "evals/promptfoo.json")
    assert promptfoo.deltas == (MetricDelta("latency_p95", 2.0, None), MetricDelta("pass_rate", 0.995, 0.995))
    assert not change.manifest_changed and change.vendor_before == change.vendor_after == "anthropic"
    assert production_change(checklist, None) is None

    lines = build_changes(checklist, baseline)
    assert lines == ["model unchanged: anthropic/claude-sonnet-4@claude-sonnet-4-20250514", "data classes: internal, pii",
                     "evals/promptfoo.json latency_p95: 2 in production, missing now",
                     "evals/fallback-drill.xml: new evidence, not in production"]
    table = production_changes(checklist, baseline)
    assert [(f["path"], f["change"], f["deltas"]) for f in table["files"]] == [
        ("evals/promptfoo.json", "changed", ["latency_p95 2 -> not reported", "pass_rate 0.995 -> 0.995 (+0)"]),
        ("evals/fallback-drill.xml", "new (not in production)", []),
        ("evals/retired.json", "dropped (in production, not in the candidate)", [])]


@pytest.mark.parametrize("hostile, shown", [
    ("<!channel> look", "&lt;!channel&gt; look"),  # a reviewer's reason that would notify the channel
    ("<@U0BOSS> decides", "&lt;@U0BOSS&gt; decides"),
    ("see <https://evil.example|the report>", "see &lt;https://evil.example|the report&gt;"),
    ("red \x1b[31m text", "red \\x1b[31m text"),
    ("a & b", "a &amp; b"),
])
def test_a_closing_line_with_a_reviewers_text_is_inert_in_the_fallback_text_too(checklist, hostile, shown):
    """The top-level `text` (notifications, clients without blocks) carries the closing line as the
    blocks do: a reject reason or a void reason is shown, never obeyed."""
    line = f"Rejected by rene (risk): {hostile}"
    record = WaitingPromotion(run=RUN, key="k", system="support-assistant", commit="c" * 40, digest=checklist.digest,
                              quorum={"security": 1}, excluded=[], posted_at=NOW, deadline=NOW, remind_at=NOW,
                              messages=[MessageRef(role="security", channel="C0SEC", ts="1.2")])
    closed = build_request_message(context(checklist), "risk", tally(checklist.signoff.quorum, []), closed=line)
    for body in (closed, build_closed_message(record, line)):
        assert body["text"].endswith(f": Rejected by rene (risk): {shown}"), body["text"]
        assert "\x1b" not in json.dumps(body, ensure_ascii=False)
