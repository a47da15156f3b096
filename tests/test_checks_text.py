"""Check-run text cannot act (issue 10, point 7): what a manifest, an evidence file, a reviewer or
another App's check run wrote reaches a check run's title, summary and annotations inert. GitHub
shows titles and annotations as plain text and summaries as Markdown: every row asserts that the
field can mention no one, reference no issue, link nowhere and carries no control character, and
that the Markdown renders no link, image or tag. Pure builders, table rows."""

from __future__ import annotations

import re

import pytest

from promotion_gate.checklists.lock_guard import LockFinding
from promotion_gate.checklists.results import Outcome
from promotion_gate.notifications.checks_bodies import (
    SeenRun, build_aggregate_check, build_annotations, build_change_aggregate, build_decision_check,
    build_lock_guard_check, build_voided_check,
)
from tests.test_github_bodies import ACTS, HOSTILE_TEXT, decision_for, markdown_html

ROWS = HOSTILE_TEXT + [
    ("owner @acme/security-team via acme/other#3, see [x](https://evil) <b>now</b> \x1b[2J", "mention"),
    ("owner @acme/security-team via acme/other#3, see [x](https://evil) <b>now</b> \x1b[2J", "issue reference"),
    ("owner @acme/security-team via acme/other#3, see [x](https://evil) <b>now</b> \x1b[2J", "autolink"),
    ("owner @acme/security-team via acme/other#3, see [x](https://evil) <b>now</b> \x1b[2J", "control"),
    ("ticket #12 in the remedy", "issue reference"),
]


def assert_plain(text: str, acts: str) -> None:
    assert ACTS[acts].search(text) is None, (acts, text)


def assert_markdown(md: str, acts: str) -> None:
    assert ACTS[acts].search(md) is None, (acts, md)
    assert not re.search(r"<(a|img|script|b)\b", markdown_html(md)), md


def hostile_block(raw: str):
    """The blocked loan-prescreener decision with `raw` as the reason and the remedy of its failed
    items (a reason names what the manifest or the evidence said; the remedy is the policy's)."""
    blocked = decision_for("loan-prescreener")
    checklist = blocked.checklist
    results = [r.model_copy(update={"reason": f"{r.reason}: {raw}", "remedy": f"fix it: {raw}"}) if r.outcome.blocks else r
               for r in checklist.results]
    return blocked.model_copy(update={"checklist": checklist.model_copy(update={"results": results}),
                                      "reasons": [f"owner said: {raw}", *blocked.reasons]})


@pytest.mark.parametrize("raw, acts", ROWS)
def test_the_decision_check_title_and_annotations_cannot_act(raw, acts):
    decision = hostile_block(raw)
    check = build_decision_check(decision, "# report\n", None, "http://prefect.test/runs/flow-run/1")
    assert check.title.startswith("blocked: owner said:")
    assert_plain(check.title, acts)
    annotations = build_annotations(decision, None)
    assert annotations and sum(1 for r in decision.checklist.results if r.outcome.blocks) <= len(annotations)
    for annotation in annotations:
        assert_plain(annotation["title"], acts)
        assert_plain(annotation["message"], acts)
    assert any("How to fix: fix it:" in a["message"] for a in annotations)


@pytest.mark.parametrize("raw, acts", ROWS)
def test_an_error_decisions_check_title_cannot_act(raw, acts):
    check = build_decision_check(decision_for("helpdesk-summarizer", f"the gate failed: {raw}"), "# r\n", None, None)
    assert check.title.startswith("error: the gate failed:") and check.conclusion == "failure"
    assert_plain(check.title, acts)


@pytest.mark.parametrize("raw, acts", ROWS)
def test_a_voided_check_cannot_act(raw, acts):
    request = decision_for("helpdesk-summarizer").request
    check = build_voided_check(request, f"promotion withdrawn: {raw}", None)
    assert_plain(check.title, acts)
    assert_markdown(check.summary, acts)


@pytest.mark.parametrize("raw, acts", ROWS)
def test_another_apps_check_run_name_cannot_act_in_the_aggregate(raw, acts):
    """Any App may create a check run named ``promotion-gate / <anything>`` on the commit."""
    runs = [SeenRun("promotion-gate / helpdesk-summarizer", "completed", "success"),
            SeenRun(f"promotion-gate / {raw}", "completed", "failure")]
    check = build_aggregate_check("acme/models#12@abc", runs, "http://prefect.test")
    assert check.conclusion == "failure" and "`helpdesk-summarizer`" in check.summary
    assert_plain(check.title, acts)
    assert_markdown(check.summary, acts)


@pytest.mark.parametrize("raw, acts", ROWS)
def test_a_changed_folder_name_cannot_act_in_the_change_aggregate(raw, acts):
    check = build_change_aggregate("acme/models#12@abc", ["helpdesk-summarizer", raw], True)
    assert_plain(check.title, acts)
    assert_markdown(check.summary, acts)


@pytest.mark.parametrize("raw, acts", ROWS)
def test_the_lock_guards_paths_and_reasons_cannot_act(raw, acts):
    findings = [LockFinding(path=f"ai-systems/x/{raw}/production.lock.json", ok=False, reason=f"not signed: {raw}"),
                LockFinding(path="ai-systems/y/production.lock.json", ok=True, reason="written by the gate")]
    check = build_lock_guard_check("a" * 40, False, "1 of 2 lock file(s) not written by the gate", findings)
    assert check.conclusion == "failure" and len(check.annotations) == 1
    assert_plain(check.title, acts)
    assert_markdown(check.summary, acts)
    assert_plain(check.annotations[0]["message"], acts)


def test_plain_fields_read_as_written_without_markdown_backslashes():
    check = build_voided_check(decision_for("helpdesk-summarizer").request, "superseded by 1234567 (v1.2_final)", None)
    assert check.title == "superseded by 1234567 (v1.2_final)"
    annotations = build_annotations(hostile_block("keep a_b (c) *d*"), None)
    assert all("\\" not in a["message"] for a in annotations)
    assert all(a["annotation_level"] in ("failure", "warning") for a in annotations)
    assert Outcome.fail.blocks
