"""Auditors read controls, not codes: every control id the policy cites has a title, ids sort
naturally (Art. 9 before Art. 10), and every report states the system's EU AI Act risk class."""

from __future__ import annotations

import pytest

from promotion_gate.checklists.controls import control_label, control_sort_key, sorted_controls
from promotion_gate.checklists.policy import PolicyError, parse_policy
from promotion_gate.config.policy_source import load_policy
from promotion_gate.notifications.report import render_html, render_markdown
from tests.audit_support import checklist, decision
from tests.conftest import ROOT

POLICY = load_policy()
POLICY_FILE = ROOT / "checklists" / "policy" / "policy.yaml"


def test_every_control_an_item_cites_has_a_title() -> None:
    cited = {c for item in POLICY.items for c in item.controls}
    assert cited and all(POLICY.control_titles.get(c, "").strip() for c in cited), sorted(cited - set(POLICY.control_titles))
    assert POLICY.control_titles["EU-AI-ACT:Art.14"] == "Human oversight"
    assert POLICY.control_titles["EU-AI-ACT:Art.9"] == "Risk management system"
    assert POLICY.control_titles["ISO42001:A.6.2.8"] == "AI system recording of event logs"


#   what a hurried policy edit does, and the id the loader must name
UNTITLED = [
    ("a new control id with no title", "ISO42001:A.6.2.3]", "ISO42001:A.6.2.3, ISO42001:A.99.1]", "ISO42001:A.99.1"),
    ("a title left empty", "  EU-AI-ACT:Art.9: Risk management system", "  EU-AI-ACT:Art.9: ''", "EU-AI-ACT:Art.9"),
    ("a title deleted", "  ISO42001:A.10.3: Suppliers\n", "", "ISO42001:A.10.3"),
]


@pytest.mark.parametrize("name, old, new, named", UNTITLED, ids=[u[0] for u in UNTITLED])
def test_a_policy_citing_an_untitled_control_does_not_load(name, old, new, named) -> None:
    text = POLICY_FILE.read_text()
    assert old in text
    with pytest.raises(PolicyError) as refused:
        parse_policy(text.replace(old, new, 1).encode(), "policy.yaml")
    assert "controls without a title" in str(refused.value) and named in str(refused.value)


#   ids in, natural order out
ORDERS = [
    (["EU-AI-ACT:Art.10", "EU-AI-ACT:Art.9", "EU-AI-ACT:Art.15"], ["EU-AI-ACT:Art.9", "EU-AI-ACT:Art.10", "EU-AI-ACT:Art.15"]),
    (["ISO42001:A.6.2.10", "ISO42001:A.6.2.3", "ISO42001:A.10.3", "ISO42001:A.7.2"],
     ["ISO42001:A.6.2.3", "ISO42001:A.6.2.10", "ISO42001:A.7.2", "ISO42001:A.10.3"]),
    (["NIST-AI-RMF:MEASURE-2.10", "NIST-AI-RMF:MEASURE-2.5", "NIST-AI-RMF:GOVERN-1.4", "NIST-AI-RMF:MAP-1.1"],
     ["NIST-AI-RMF:GOVERN-1.4", "NIST-AI-RMF:MAP-1.1", "NIST-AI-RMF:MEASURE-2.5", "NIST-AI-RMF:MEASURE-2.10"]),
    (["ISO42001:A.3.2", "EU-AI-ACT:Art.9", "NIST-AI-RMF:MAP-2.2", "EU-AI-ACT:Art.9"], ["EU-AI-ACT:Art.9", "ISO42001:A.3.2", "NIST-AI-RMF:MAP-2.2"]),
]


@pytest.mark.parametrize("given, expected", ORDERS)
def test_control_ids_sort_naturally(given, expected) -> None:
    assert sorted_controls(given) == expected
    assert control_sort_key("EU-AI-ACT:Art.9") < control_sort_key("EU-AI-ACT:Art.10")


def test_a_control_is_shown_with_its_title() -> None:
    assert control_label("EU-AI-ACT:Art.14", POLICY.control_titles) == "EU-AI-ACT:Art.14 Human oversight"
    assert control_label("X:unknown", POLICY.control_titles) == "X:unknown"


#   system (example manifest), the risk class its report must state
RISK = [
    ("loan-prescreener", "high-risk (Annex III, 5(b) creditworthiness)"),  # automated decisions about people
    ("support-assistant", "limited risk (Art. 50 transparency)"),  # a customer-facing chatbot
    ("helpdesk-summarizer", "minimal risk (no specific obligations)"),  # internal
]


@pytest.mark.parametrize("system, risk", RISK)
def test_each_report_states_the_risk_class(system, risk) -> None:
    cl = checklist(system)
    assert cl.risk_class == risk
    d = decision("blocked", system=system)
    md, html = render_markdown(d), render_html(d)
    assert f"| **EU AI Act risk class** | {risk.replace('(', chr(92) + '(').replace(')', chr(92) + ')')} |" in md
    assert f'<td colspan="3" id="risk-class">{risk}</td>' in html


def test_the_report_lists_controls_with_titles_in_natural_order() -> None:
    d = decision("blocked", system="support-assistant")
    assert d.checklist.control_titles and set(d.checklist.control_titles) == {c for r in d.checklist.results for c in r.controls}
    html = render_html(d)
    assert '<span class="ctl">EU-AI-ACT:Art.15 Accuracy, robustness and cybersecurity</span>' in html
    eval_row = next(r for r in d.checklist.results if r.id == "PG-EVAL-001")
    labels = [control_label(c, d.checklist.control_titles) for c in sorted_controls(eval_row.controls)]
    assert "".join(f'<span class="ctl">{label}</span>' for label in labels) in html
