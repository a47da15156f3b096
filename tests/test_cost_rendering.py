"""Cost in the Slack request, the reports and decision.json: one summary derived in the core
(checklists.cost.build_cost_summary) from PG-COST-001/002's facts, one line rendered from it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from promotion_gate.checklists.cost import CostSummary, build_cost_summary
from promotion_gate.checklists.decision import build_lock
from promotion_gate.checklists.policy_governance import Price
from promotion_gate.checklists.results import CheckResult, Outcome
from promotion_gate.notifications.cost_text import money, render_cost_line
from promotion_gate.notifications.report import render_html, render_json, render_markdown
from promotion_gate.notifications.slack_messages import RequestContext, build_request_message
from promotion_gate.checklists.signoff import tally
from tests.audit_support import NOW, decision

PRICE = Price(input_per_mtok_usd=2.5, output_per_mtok_usd=10.0)


@pytest.mark.parametrize("summary,line", [
    (CostSummary(outcome="pass", reason="r", cost_per_request_usd=0.0021, projected_monthly_usd=420.0,
                 expected_monthly_requests=200000, method="price-table", price_key="openai/gpt-4o@2024-08-06", price=PRICE,
                 budget_per_month_usd=1000),
     "Cost: $0.0021/request, ~$420/month projected (budget $1000/month), price table: openai/gpt-4o@2024-08-06"),
    (CostSummary(outcome="pass", reason="r", cost_per_request_usd=0.05, projected_monthly_usd=50.0, method="reported",
                 budget_per_request_usd=0.1),
     "Cost: $0.05/request, ~$50.00/month projected (budget $0.1/request), cost as reported by the evidence (no price table used)"),
    (CostSummary(outcome="warn", reason="r", cost_per_request_usd=0.00084, method="price-table", price_key="anthropic/claude-sonnet-4",
                 price=PRICE, budget_per_request_usd=0.05, budget_per_month_usd=5000),
     "Cost: $0.00084/request, no monthly volume declared (budget $0.05/request, $5000/month), price table: anthropic/claude-sonnet-4"),
    (CostSummary(outcome="warn", reason="the policy has no price for x/y@z and the evidence reports no cost", budget_per_month_usd=500),
     "Cost: unknown (the policy has no price for x/y@z and the evidence reports no cost); budget $500/month"),
    (CostSummary(outcome="error", reason="usage figures are unusable: evals/p.json: prompt must be >= 0"),
     "Cost: unknown (usage figures are unusable: evals/p.json: prompt must be >= 0)"),
    (CostSummary(outcome="pass", reason="r", cost_per_request_usd=3.6e-05, projected_monthly_usd=0.72, method="price-table",
                 price_key="openai/gpt-4o-mini", price=PRICE, production_cost_per_request_usd=0.00003),
     "Cost: $0.000036/request, ~$0.72/month projected, price table: openai/gpt-4o-mini; production $0.00003/request"),
    (CostSummary(outcome="pass", reason="r", cost_per_request_usd=0.0, projected_monthly_usd=0.0, method="price-table",
                 price_key="self-hosted/llama-3.1-8b-instruct", price=Price(input_per_mtok_usd=0, output_per_mtok_usd=0)),
     "Cost: $0/request, ~$0.00/month projected, price table: self-hosted/llama-3.1-8b-instruct"),
], ids=["the brief's example", "reported cost", "no volume", "no price: unknown, never free", "unusable figures",
        "tiny cost, no exponent, production shown", "a free model"])
def test_the_cost_line(summary, line):
    assert render_cost_line(summary) == line


@pytest.mark.parametrize("value,shown", [(0.0021, "$0.0021"), (3.6e-05, "$0.000036"), (0.5, "$0.5"), (0, "$0"),
                                         (1234.5, "$1,234.50"), (1e-9, "$0.000000001")])
def test_money_never_shows_an_exponent(value, shown):
    assert money(value) == shown


def test_the_summary_is_derived_from_the_cost_items_facts():
    d = decision("promoted")  # helpdesk-summarizer: promptfoo token usage priced at openai/gpt-4o-mini
    s = build_cost_summary(d.checklist.results)
    assert (s.outcome, s.method, s.price_key, s.price, s.expected_monthly_requests) == (
        "pass", "price-table", "openai/gpt-4o-mini", Price(input_per_mtok_usd=0.15, output_per_mtok_usd=0.6), 20000)
    assert (s.budget_per_request_usd, s.budget_per_month_usd) == (0.01, 500.0)
    assert s.projected_monthly_usd == pytest.approx(s.cost_per_request_usd * 20000)
    assert s.regression_outcome == "not applicable" and s.production_cost_per_request_usd is None
    lock = build_lock(d)  # the lock file's cost is the same summary, not a second reading of the facts
    assert (lock.cost.cost_per_request_usd, lock.cost.price_key, lock.cost.projected_monthly_usd) == (
        s.cost_per_request_usd, s.price_key, s.projected_monthly_usd)


def test_no_cost_item_means_no_summary_and_a_hand_made_fact_cannot_pass_as_cost():
    d = decision("promoted")
    without = [r for r in d.checklist.results if not r.id.startswith("PG-COST-")]
    assert build_cost_summary(without) is None
    errored = [CheckResult(id="PG-COST-001", title="t", outcome=Outcome.error, reason="usage figures are unusable")]
    s = build_cost_summary(errored)
    assert s.cost_per_request_usd is None and render_cost_line(s).startswith("Cost: unknown (usage figures are unusable")
    with pytest.raises(ValueError):  # a negative or non-finite price in the facts does not build a summary
        build_cost_summary([CheckResult(id="PG-COST-001", title="t", outcome=Outcome.passed, reason="r",
                                        facts={"cost": {"method": "price-table", "price": {"input_per_mtok_usd": -1,
                                                                                            "output_per_mtok_usd": 1}}})])


def test_the_slack_request_shows_one_cost_line():
    d = decision("promoted")
    ctx = RequestContext(request=d.request, checklist=d.checklist, run="0b5f0e4e-9d1c-4a57-9a0e-4d1f2b3c4d5e",
                         deadline=NOW + timedelta(hours=48))
    message = build_request_message(ctx, "platform", tally(d.checklist.signoff.quorum, []))
    line = render_cost_line(build_cost_summary(d.checklist.results))
    contexts = [e["text"] for b in message["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert [t for t in contexts if t.startswith("Cost:")] == [line]
    assert "price table: openai/gpt-4o-mini" in line and "(budget $0.01/request, $500/month)" in line


def test_the_reports_have_a_cost_section_and_decision_json_records_the_price_entry():
    d = decision("promoted")
    line = render_cost_line(build_cost_summary(d.checklist.results))
    md, html = render_markdown(d), render_html(d)
    assert "\n## Cost\n" in md and "<h2>Cost</h2>" in html
    assert "openai/gpt\\-4o\\-mini" in md or "openai/gpt-4o-mini" in md
    assert line.split(",")[0] in md and line.split(",")[0] in html
    assert "$0.15 in, $0.6 out per million tokens" in html
    facts = next(r for r in json.loads(render_json(d))["checklist"]["results"] if r["id"] == "PG-COST-001")["facts"]
    assert facts["cost"]["price_key"] == "openai/gpt-4o-mini"
    assert facts["cost"]["price"] == {"input_per_mtok_usd": 0.15, "output_per_mtok_usd": 0.6}
    assert facts["budget"] == {"per_request_usd": 0.01, "per_month_usd": 500.0}


def test_a_decision_that_never_evaluated_has_no_cost_section():
    d = decision("error_without_checklist")
    assert "## Cost" not in render_markdown(d) and "<h2>Cost</h2>" not in render_html(d)
