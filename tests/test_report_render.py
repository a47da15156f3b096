"""Reports for every kind of decision, in Markdown, HTML and JSON; hostile text stays text."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from promotion_gate.checklists.controls import control_label, sorted_controls

from promotion_gate.notifications.report import md_escape, render_html, render_json, render_markdown
from promotion_gate.notifications.user_text import ZWSP
from tests.audit_support import HOSTILE, VERDICTS, decision, every_kind, hostile_manifest, production_lock_of

KINDS = every_kind()


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data) -> None:
        self.text.append(data)


def parse_html(html: str) -> Tags:
    parser = Tags()
    parser.feed(html)
    return parser


def markdown_to_html(md: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(md)


@pytest.mark.parametrize("kind", VERDICTS)
def test_every_kind_renders_in_every_format(kind) -> None:
    d = KINDS[kind]
    md, html, body = render_markdown(d), render_html(d), json.loads(render_json(d))
    assert body["verdict"] == d.verdict.value and body["schema_version"] == 1
    assert f"# Promotion {d.verdict.value.upper()}" in md and f'class="verdict {d.verdict.value}"' in html
    for reason in d.reasons:
        assert md_escape(reason) in md
    assert "decided:" in md and "decided:" in html  # the timeline ends with the decision
    parsed = parse_html(html)
    assert not [t for t, a in parsed.tags if t in ("script", "link", "img", "iframe") or "src" in a]


@pytest.mark.parametrize("kind", VERDICTS)
def test_the_first_screen_answers_who_what_when_and_why(kind) -> None:
    d = KINDS[kind]
    first_screen = render_markdown(d).split("## Checklist")[0]
    for needed in (d.request.system, d.request.commit, d.request.requester, "2026-11-24 10:30:00 UTC", "**Outcome**", "**Owner**", "**Tier**"):
        assert needed in first_screen, needed
    if d.checklist is not None:
        assert md_escape(d.checklist.owner) in first_screen and md_escape(d.checklist.tier_reasons[0]) in first_screen
        assert d.checklist.policy_version in first_screen and d.checklist.policy_digest in first_screen


def test_items_show_outcome_facts_and_controls_and_evidence_its_digest() -> None:
    d = KINDS["blocked"]
    md, html = render_markdown(d), render_html(d)
    for r in d.checklist.results:
        assert r.id in md and r.outcome.symbol in md and md_escape("; ".join(control_label(c, d.checklist.control_titles) for c in sorted_controls(r.controls))) in md
    assert "Facts: strategy" in md or "Facts:" in md
    for e in d.checklist.evidence:
        assert e.sha256 in md and e.sha256 in html
    assert "pass\\_rate=" in md and "pass_rate=" in html


def test_sign_offs_refused_clicks_and_waivers_are_listed() -> None:
    d = KINDS["waived"]
    md, html = render_markdown(d), render_html(d)
    assert "| U0SAM (slack) | sam | authenticated | security | approve |" in md and "U0RENE" in html
    assert "### Refused sign-offs" in md and "requested, authored or committed this change" in md
    (waived,) = [r for r in d.checklist.results if r.waiver]
    assert "## Waivers" in md and str(waived.waiver.expires) in md and md_escape(waived.waiver.approver) in md


def test_an_error_without_a_checklist_says_it_was_not_evaluated() -> None:
    d = KINDS["error_without_checklist"]
    md, html = render_markdown(d), render_html(d)
    assert "Not evaluated" in md and "Not evaluated" in html and "unknown \\(not evaluated\\)" in md
    assert "GitHub answered 502" in md


def test_the_change_against_production_shows_bytes_and_metric_deltas() -> None:
    lock = production_lock_of(decision("promoted", system="support-assistant"))
    lock = lock.model_copy(update={"evidence": [e.model_copy(update={"sha256": "0" * 64, "metrics": {**e.metrics, "pass_rate": 0.9}})
                                                for e in lock.evidence]})
    d = decision("promoted", system="support-assistant", commit="b" * 40)
    md, html = render_markdown(d, baseline=lock), render_html(d, baseline=lock)
    assert f"Production runs commit {lock.source_commit}" in md and "Manifest: unchanged" in md
    assert "| evals/promptfoo.json | changed | pass\\_rate 0.9 -\\> 0.995 \\(\\+0.095\\);" in md
    assert "pass_rate 0.9 -&gt; 0.995 (+0.095)" in html


def test_without_a_baseline_the_regression_item_explains() -> None:
    md = render_markdown(KINDS["promoted"])
    assert "PG-EVAL-005 (N/A): first promotion" in md


@pytest.mark.parametrize("kind", ["promoted", "blocked"])
def test_hostile_text_in_a_manifest_and_a_comment_is_shown_as_text(kind) -> None:
    d = decision(kind, system="support-assistant", manifest=hostile_manifest(), comment=HOSTILE)
    assert d.checklist.owner == HOSTILE
    html = render_html(d)
    parsed = parse_html(html)
    assert not [t for t, _ in parsed.tags if t == "script"]
    assert not [a for t, a in parsed.tags if t == "a"]
    assert HOSTILE in "".join(parsed.text)  # the text, intact, as text
    md = render_markdown(d)
    shown = markdown_to_html(md)
    rendered = parse_html(shown)
    assert not [t for t, _ in rendered.tags if t in ("script", "a")]
    visible = md_escape(HOSTILE).replace("\\", "").replace(ZWSP, "")  # a zero width space breaks the autolink
    assert HOSTILE.replace("&", "&amp;") in visible and HOSTILE in "".join(rendered.text).replace(ZWSP, "")
    assert json.loads(render_json(d))["checklist"]["owner"] == HOSTILE


def test_a_hostile_sign_off_comment_cannot_break_the_markdown_table() -> None:
    d = decision("promoted", system="support-assistant", comment="ok | </td> \n## injected heading")
    md = render_markdown(d)
    assert "\n## injected heading" not in md
    row = next(line for line in md.splitlines() if line.startswith("| U0SAM"))
    assert row.count(" | ") == 7  # eight cells, the comment's pipe escaped


def test_reports_never_carry_prompt_or_response_samples() -> None:
    evidence = (KINDS["promoted"].checklist.evidence)
    assert evidence
    for d in KINDS.values():
        for text in (render_markdown(d), render_html(d), render_json(d)):
            assert "example question 0" not in text and "redacted in example" not in text


@pytest.mark.parametrize(("raw", "shown"), [
    ("[x](http://evil)", "\\[x\\]\\(http:\u200b//evil\\)"),
    ("<b>", "\\<b\\>"),
    ("a|b", "a\\|b"),
    ("line\nbreak", "line break"),
    ("{{ 7*7 }}", "\\{\\{ 7\\*7 \\}\\}"),
    ("AT&T", "AT&amp;T"),
    (None, ""),
])
def test_md_escape(raw, shown) -> None:
    assert md_escape(raw) == shown


def test_a_waiver_request_not_granted_shows_who_may_grant_it_and_the_item_stays_failed() -> None:
    from promotion_gate.checklists.decision import decide
    from tests.audit_support import NOW, checklist, request

    cl = checklist("support-assistant", fixture="high__waived__no_human_review")
    d = decide(request("support-assistant"), cl, None, now=NOW)
    md, html = render_markdown(d), render_html(d)
    assert d.verdict.value == "blocked" and any(r.startswith("PG-REVIEW-001") for r in d.reasons)
    assert "## Waivers" in md and "not granted (needs risk)" in md and "not granted (needs risk)" in html
    assert "2026-12-05" in md and "every automated item passed" not in md


def test_a_granted_waiver_shows_who_granted_it_with_role_and_time() -> None:
    d = KINDS["waived"]
    (waived,) = [r for r in d.checklist.results if r.waiver]
    assert waived.waiver.role == "risk" and waived.waiver.granted_at is not None
    md = render_markdown(d)
    assert f"{md_escape(waived.waiver.approver)} (risk)" in md and "every automated item passed" not in md
    assert "PG-REVIEW-001 waived" in d.reasons[0]


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),  # clear screen, colour
    ("\x1b]0;retitled\x07", "\\x1b]0;retitled\\x07"),  # terminal title (OSC)
    ("ok\rFAIL", "ok\\x0dFAIL"),  # a carriage return overwriting the line
    ("\x9b31m C1 CSI", "\\x9b31m C1 CSI"),
    ("\u202eevil\u202c \u2066iso\u2069 \u200f", "\\u202eevil\\u202c \\u2066iso\\u2069 \\u200f"),  # bidi
    ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
])
def test_control_characters_are_shown_not_obeyed_in_the_terminal_and_slack(raw, shown) -> None:
    from promotion_gate.checklists.decision import error_decision
    from promotion_gate.notifications.slack_messages import escape
    from promotion_gate.notifications.terminal import render_decision_summary
    from promotion_gate.notifications.user_text import show_control
    from tests.audit_support import NOW, request

    assert show_control(raw) == shown
    summary = render_decision_summary(error_decision(request("support-assistant"), f"the gate failed: {raw}", NOW))
    assert not [c for c in summary if c in "\x1b\r\x9b\u202e\u2066\u200f"]  # textwrap turns \r, \t, \n into spaces
    assert all(escaped in summary for escaped in ("\\x1b", "\\x9b", "\\u202e") if escaped in shown)
    assert escape(raw) == shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
