"""What the gate says on GitHub: statuses, the block comment, the promotion PR (pure builders)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promotion_gate.checklists.checklist import evaluate
from promotion_gate.checklists.decision import PromotionRequest, Verdict, decide, error_decision
from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
from promotion_gate.config.policy_source import load_policy
from promotion_gate.notifications.github_bodies import (
    BODY_LIMIT, NO_SYSTEM_MARKER, STATUS_LIMIT, build_block_comment, build_decision_status, build_no_system_comment,
    build_pending_status, build_pull_body, build_pull_title, build_reviewers, build_signoff_status, build_voided_status,
    comment_marker, fit,
)
from tests.conftest import NOW, ROOT

SHA = "0123456789abcdef0123456789abcdef01234567"
POLICY = load_policy()


def decision_for(system: str, verdict_reason: str | None = None):
    candidate = read_candidate(WorkingTree(ROOT / "examples" / "repo"), system, SHA)
    checklist = evaluate(candidate, POLICY, NOW)
    request = PromotionRequest(repository="acme/models", system=system, commit=SHA, requester="dana",
                               requested_at=NOW, pull_request=12)
    if verdict_reason:
        return error_decision(request, verdict_reason, NOW, checklist=checklist)
    return decide(request, checklist, None, now=NOW)


def test_a_promotion_is_success_and_names_the_decision():
    decision = decision_for("helpdesk-summarizer")
    status = build_decision_status(decision, "https://github.example/acme/models/pull/13")
    assert decision.verdict == Verdict.promoted
    assert (status.state, status.context) == ("success", "promotion-gate/helpdesk-summarizer")
    assert decision.decision_id in status.description and status.target_url.endswith("/pull/13")


def test_a_block_is_failure_listing_the_failed_item_ids_within_140_characters():
    decision = decision_for("loan-prescreener")
    status = build_decision_status(decision, None)
    ids = [r.id for r in decision.checklist.failures]
    assert status.state == "failure" and len(status.description) <= STATUS_LIMIT
    assert status.description.startswith(f"blocked: {len(ids)} items failed: {ids[0]}, {ids[1]}")
    assert status.description.endswith("…")  # eleven ids do not fit: cut, never refused by GitHub


def test_an_error_is_error_never_success():
    decision = decision_for("helpdesk-summarizer", "the gate failed: GitHubUnavailable: GitHub 502 on read x" + " y" * 200)
    status = build_decision_status(decision, None)
    assert status.state == "error" and len(status.description) == STATUS_LIMIT
    assert status.description.startswith("error: the gate failed: GitHubUnavailable")


def test_pending_sign_off_and_voided_statuses():
    decision = decision_for("support-assistant")
    assert build_pending_status("x", "http://p/runs/flow-run/1") == build_pending_status("x", "http://p/runs/flow-run/1")
    assert build_pending_status("x", None).state == "pending"
    signoff = build_signoff_status(decision.checklist, None)
    assert signoff.state == "pending" and signoff.description == "waiting for sign-off (1 security, 1 risk); tier high"
    voided = build_voided_status("x", "superseded by abc1234")
    assert (voided.state, voided.description, voided.context) == ("error", "superseded by abc1234", "promotion-gate/x")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=400))
def test_fit_always_gives_one_line_of_at_most_140_characters(text):
    line = fit(text)
    assert len(line) <= STATUS_LIMIT and "\n" not in line and "\r" not in line
    if len(" ".join(text.split())) <= STATUS_LIMIT:
        assert line == " ".join(text.split())


def test_the_block_comment_carries_the_marker_and_each_failure_with_its_fix():
    decision = decision_for("loan-prescreener")
    body = build_block_comment(decision, "promote:production", "http://p/runs/flow-run/1")
    assert body.splitlines()[0] == comment_marker("loan-prescreener") == "<!-- promotion-gate:loan-prescreener -->"
    for result in decision.checklist.failures:
        row = next(line for line in body.splitlines() if line.startswith(f"| **{result.id}**"))
        assert row.count(" | ") == 2  # three cells: item, why, fix
    assert "add the label `promote:production` again" in body and "[the run](http://p/runs/flow-run/1)" in body
    assert decision.decision_id in body


def test_text_from_a_team_cannot_break_out_of_the_comment():
    decision = decision_for("helpdesk-summarizer", "evil | <img src=x> [link](http://x) <!-- promotion-gate:other -->")
    body = build_block_comment(decision, "promote:production")
    reason_line = next(line for line in body.splitlines() if line.startswith("- "))
    assert re.search(r"(?<!\\)[<>\[\]()|]", reason_line[2:]) is None  # every special character escaped
    assert body.count("<!-- promotion-gate:") == 1


def test_no_system_comment_has_its_own_marker():
    body = build_no_system_comment("promote:production")
    assert body.startswith(NO_SYSTEM_MARKER) and "ai-systems/<name>/" in body


def test_the_pull_body_is_the_report_cut_to_githubs_limit():
    decision = decision_for("helpdesk-summarizer")
    assert build_pull_body("# report\n", decision) == "# report\n"
    long = build_pull_body("x" * (BODY_LIMIT + 10), decision)
    assert len(long) <= BODY_LIMIT and f"audit/helpdesk-summarizer/{decision.decision_id}.md" in long
    assert build_pull_title(decision.request) == "Promote helpdesk-summarizer at 0123456"


@pytest.mark.parametrize("owner, expected", [
    ("@acme/it-helpdesk", ([], ["it-helpdesk"])),
    ("@ACME/risk", ([], ["risk"])),
    ("@dana", (["dana"], [])),
    ("@other-org/team", ([], [])),
    ("dana@example.com", ([], [])),
    ("@", ([], [])),
    ("@bad login", ([], [])),
    (None, ([], [])),
])
def test_the_owner_becomes_a_user_or_a_team_reviewer(owner, expected):
    assert build_reviewers(owner, "acme/models") == expected


# user text cannot act: a table of what a manifest, an evidence file or a reviewer could write


ACTS = {  # what GitHub would do with the text, and how to see it in the Markdown
    "mention": re.compile(r"@[A-Za-z0-9]"),
    "issue reference": re.compile(r"#[0-9]|\bGH-[0-9]", re.IGNORECASE),
    "autolink": re.compile(r"[A-Za-z]://|\bwww\.|\w@\w", re.IGNORECASE),
    "control": re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"),
}
HOSTILE_TEXT = [
    ("@acme/security-team please look", "mention"),
    ("cc @alice", "mention"),
    ("`@acme/security-team` in code", "mention"),
    ("&#64;acme/security-team as an entity", "mention"),
    ("fixes #123", "issue reference"),
    ("see GH-1", "issue reference"),
    ("acme/models#1 and acme/models#2", "issue reference"),
    ("[click](https://evil.example/x)", "autolink"),
    ("![pixel](https://evil.example/p.png)", "autolink"),
    ("<https://evil.example>", "autolink"),
    ("bare https://evil.example/x and www.evil.example", "autolink"),
    ("mail ops@evil.example", "autolink"),
    ("<img src=x onerror=alert(1)> <a href='https://evil.example'>y</a>", "autolink"),
    ("\x1b[31mred\x1b[0m \x1b]0;retitled\x07", "control"),
    ("over\rwrite", "control"),
    ("\u202eevil\u202c and \u2066isolated\u2069", "control"),
]


def markdown_html(md: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(md)


def assert_inert(md: str, raw: str, acts: str) -> None:
    from promotion_gate.notifications.report import md_escape

    shown = md_escape(raw)
    assert shown in md and raw not in md  # it went through the one escaping function
    assert ACTS[acts].search(shown) is None, (acts, shown)
    html = markdown_html(md)
    assert not re.search(r"<(a|img|script)\b", html)  # no link, image or tag made it through CommonMark either


@pytest.mark.parametrize("raw, acts", HOSTILE_TEXT)
def test_text_in_the_block_comment_cannot_mention_reference_link_or_control(raw, acts):
    decision = decision_for("helpdesk-summarizer", verdict_reason=f"the gate failed: {raw}")
    assert_inert(build_block_comment(decision, "promote:production"), f"the gate failed: {raw}", acts)


@pytest.mark.parametrize("raw, acts", HOSTILE_TEXT)
def test_text_in_the_pull_body_cannot_mention_reference_link_or_control(raw, acts):
    from promotion_gate.notifications.report import render_markdown
    from tests.audit_support import decision

    promoted = decision("promoted", system="support-assistant", manifest=manifest_describing(raw), comment=raw)
    assert promoted.checklist.manifest.use_case.description == raw and promoted.signoffs[-1].comment == raw
    assert_inert(build_pull_body(render_markdown(promoted), promoted), raw, acts)


def manifest_describing(raw: str) -> bytes:
    """The support-assistant manifest whose use case description (shown in every report) is `raw`."""
    import json

    from tests.audit_support import FIXTURES

    text = (FIXTURES / "manifests" / "high__waived__no_human_review.yaml").read_text()
    old = "description: Answers customers' questions about their orders and accounts in the help centre chat."
    assert old in text
    return text.replace(old, f"description: {json.dumps(raw)}").encode()
