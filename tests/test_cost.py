"""Cost is evidence: usage read from real-shaped promptfoo and Inspect files, cost per request
from reported cost or the price table, and the two budget items on the example systems."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import yaml

from promotion_gate.checklists.checklist import evaluate
from promotion_gate.checklists.cost import estimate_cost
from promotion_gate.checklists.evidence.base import EvidenceError
from promotion_gate.checklists.evidence import deepeval as deepeval_parser
from promotion_gate.checklists.evidence import generic as generic_parser
from promotion_gate.checklists.evidence import inspect_ai as inspect_parser
from promotion_gate.checklists.evidence.usage import ModelUsage, Usage, extract_usage
from promotion_gate.checklists.policy import parse_policy
from promotion_gate.checklists.policy_governance import Price
from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
from tests.conftest import FIXTURES, NOW, ROOT

EVIDENCE = FIXTURES / "evidence"
POLICY_YAML = (ROOT / "checklists" / "policy" / "policy.yaml").read_text()
PRICES = {"openai/gpt-4o": Price(input_per_mtok_usd=2.5, output_per_mtok_usd=10.0),
          "openai/gpt-4o@gpt-4o-2024-11-20": Price(input_per_mtok_usd=2.0, output_per_mtok_usd=8.0)}


def usage_of(fmt: str, name: str) -> Usage | None:
    with open(EVIDENCE / name, "rb") as fh:
        return extract_usage(fmt, fh)


def test_promptfoo_results_carry_cost_and_token_usage():
    doc = json.loads((EVIDENCE / "promptfoo__v3_pass_rate_0.75.json").read_text())
    results = doc["results"]["results"]
    u = usage_of("promptfoo", "promptfoo__v3_pass_rate_0.75.json")
    assert u.requests == len(results)
    assert u.cost_usd == pytest.approx(sum(r["cost"] for r in results))
    assert u.input_tokens == sum(r["response"]["tokenUsage"]["prompt"] for r in results)
    assert u.output_tokens == sum(r["response"]["tokenUsage"]["completion"] for r in results)
    assert set(u.by_model) == {r["provider"]["id"] for r in results}


def test_inspect_stats_model_usage():
    u = usage_of("inspect", "inspect__v2_accuracy_0.8.json")
    assert (u.requests, u.input_tokens, u.output_tokens, u.cost_usd) == (10, 2274, 1890, None)
    assert list(u.by_model) == ["openai/gpt-4o-2024-08-06"]


def test_inspect_eval_zip_header_usage():
    u = usage_of("inspect", "inspect__eval_zstd_accuracy_0.8.eval")
    assert u is not None and u.input_tokens > 0 and u.requests > 0


def test_formats_without_usage_say_none():
    assert usage_of("junit", "junit__nested_suites.xml") is None
    assert usage_of("lm-eval", "lm_eval__v0.4_hellaswag_acc_0.6.json") is None


# generic-json and deepeval: the minimal files of docs/evidence.md, with the figures each format carries.
GENERIC = {"tool": "acme-harness", "model": "gpt-4o-2024-08-06", "created_at": "2026-11-20T09:00:00Z",
           "metrics": [{"metric": "pass_rate", "value": 0.95, "n": 200, "passed": 190, "failed": 10},
                       {"metric": "cost_per_request_usd", "value": 0.0021, "n": 200, "higher_is_better": False}]}
DEEPEVAL = {"testFile": "test_support.py",
            "testCases": [{"name": "a", "input": "q", "actualOutput": "x", "success": True,
                           "metricsData": [{"name": "Answer Relevancy", "threshold": 0.7, "success": True, "score": 0.9, "evaluationModel": "gpt-4.1"}]},
                          {"name": "b", "input": "q", "actualOutput": "y", "success": False,
                           "metricsData": [{"name": "Answer Relevancy", "threshold": 0.7, "success": False, "score": 0.5, "evaluationModel": "gpt-4.1"}]}],
            "testPassed": 1, "testFailed": 1, "evaluationCost": 0.0056, "hyperparameters": {"model": "gpt-4o-2024-08-06"}}


def doc(value, edit=None) -> bytes:
    value = json.loads(json.dumps(value))
    if edit:
        edit(value)
    return json.dumps(value).encode()


def test_generic_json_usage_is_its_cost_per_request_metric():
    u = extract_usage("generic-json", io.BytesIO(doc(GENERIC)))
    assert (u.requests, u.cost_usd) == (200, pytest.approx(0.0021 * 200))
    assert list(u.by_model) == ["gpt-4o-2024-08-06"]
    mu = u.by_model["gpt-4o-2024-08-06"]
    assert (mu.requests_with_usage, mu.requests_with_cost, mu.requests_with_tokens) == (200, 200, 0)


def test_generic_json_fixture_without_cost_carries_no_usage():
    assert usage_of("generic-json", "generic__pass_rate_0.93.json") is None


def test_deepeval_usage_is_the_judges_cost_never_a_models_own():
    """evaluationCost is what deepeval's metrics spent on their judge (evaluationModel), not what the
    system under test (hyperparameters.model) cost per request: read, and attributed to no model."""
    u = extract_usage("deepeval", io.BytesIO(doc(DEEPEVAL)))
    assert (u.requests, u.cost_usd) == (2, pytest.approx(0.0056))
    assert u.by_model == {} and "judge" in u.source
    wrapped = usage_of("deepeval", "deepeval__latest_test_run_wrapper_pass_rate_0.667.json")
    assert wrapped.cost_usd == pytest.approx(0.0056) and wrapped.by_model == {}


@pytest.mark.parametrize("fmt,data", [
    ("generic-json", b"\xef\xbb\xbf" + doc(GENERIC)),
    ("deepeval", b"\xef\xbb\xbf" + doc(DEEPEVAL)),
    ("promptfoo", b"\xef\xbb\xbf" + (EVIDENCE / "promptfoo__v3_pass_rate_0.75.json").read_bytes()),
    ("inspect", b"\xef\xbb\xbf" + (EVIDENCE / "inspect__v2_accuracy_0.8.json").read_bytes()),
], ids=["generic-json", "deepeval", "promptfoo", "inspect"])
def test_a_byte_order_mark_the_parser_ignores_does_not_break_usage(fmt, data):
    assert extract_usage(fmt, io.BytesIO(data)) is not None


@pytest.mark.parametrize("fmt,module,attr,data", [
    ("generic-json", generic_parser, "MAX_BYTES", doc(GENERIC)),
    ("deepeval", deepeval_parser, "MAX_BYTES", doc(DEEPEVAL)),
    ("inspect", inspect_parser, "MAX_JSON_BYTES", (EVIDENCE / "inspect__v2_accuracy_0.8.json").read_bytes()),
], ids=["generic-json", "deepeval", "inspect .json"])
def test_usage_is_read_whole_only_up_to_the_parsers_own_cap(monkeypatch, fmt, module, attr, data):
    monkeypatch.setattr(module, attr, len(data) - 1)
    with pytest.raises(EvidenceError, match="larger than"):
        extract_usage(fmt, io.BytesIO(data))
    monkeypatch.setattr(module, attr, len(data))
    assert extract_usage(fmt, io.BytesIO(data)) is not None


@pytest.mark.parametrize("fmt,data,reason", [
    ("generic-json", doc(GENERIC, lambda d: d["metrics"][1].update(value=-1)), "cost_per_request_usd: value"),
    ("generic-json", doc(GENERIC, lambda d: d["metrics"][1].update(n=2.5)), "whole number"),
    ("deepeval", doc(DEEPEVAL, lambda d: d.update(evaluationCost="0.01")), "evaluationCost"),
    ("deepeval", b'{"testCases": [], "evaluationCost": NaN}', "evaluationCost"),
], ids=["negative generic cost", "fractional generic n", "string deepeval cost", "NaN deepeval cost"])
def test_bad_generic_and_deepeval_spend_is_unusable(fmt, data, reason):
    with pytest.raises(EvidenceError, match=reason):
        extract_usage(fmt, io.BytesIO(data))


def promptfoo_with(**result_fields) -> bytes:
    result = {"success": True, "score": 1, "provider": {"id": "openai:gpt-4o"}, "response": {"output": "x"}} | result_fields
    return json.dumps({"results": {"version": 3, "results": [result, result]}}).encode()


@pytest.mark.parametrize("fields,reason", [
    ({"cost": -0.01}, "cost must be a finite number >= 0"),
    ({"cost": "0.01"}, "not a number"),
    ({"cost": True}, "not a number"),
    ({"cost": 1e400}, "NaN and Infinity are not JSON numbers|finite"),
    ({"response": {"tokenUsage": {"prompt": 10.5, "completion": 1}}}, "whole number"),
    ({"response": {"tokenUsage": {"prompt": -10, "completion": 1}}}, ">= 0"),
], ids=["negative cost", "string cost", "boolean cost", "infinite cost", "fractional tokens", "negative tokens"])
def test_bad_spend_figures_are_unusable_never_free(fields, reason):
    with pytest.raises(EvidenceError, match=reason):
        extract_usage("promptfoo", io.BytesIO(promptfoo_with(**fields)))


def test_inspect_cost_nan_is_unusable():
    log = json.loads((EVIDENCE / "inspect__v2_accuracy_0.8.json").read_text())
    log["stats"]["model_usage"]["openai/gpt-4o-2024-08-06"]["total_cost"] = -1
    with pytest.raises(EvidenceError, match="total_cost"):
        extract_usage("inspect", io.BytesIO(json.dumps(log).encode()))


def u(requests, inp=0, out=0, cost=None, *, tokens_n=None, cost_n=None, usage_n=None):
    """One file's usage of the candidate: by default every request carries what the figures say."""
    with_tokens = (requests if (inp or out) else 0) if tokens_n is None else tokens_n
    with_cost = (requests if cost else 0) if cost_n is None else cost_n
    with_usage = max(with_tokens, with_cost) if usage_n is None else usage_n
    return ModelUsage(requests=requests, input_tokens=inp, output_tokens=out, cost_usd=cost,
                      requests_with_usage=with_usage, requests_with_tokens=with_tokens, requests_with_cost=with_cost)


@pytest.mark.parametrize("usages,version,expected,method,key", [
    ([u(10, cost=0.5)], "gpt-4o-2024-08-06", 0.05, "reported", None),
    ([u(10, 1000, 1000)], "gpt-4o-2024-08-06", (1000 * 2.5 + 1000 * 10) / 1e6 / 10, "price-table", "openai/gpt-4o"),
    ([u(10, 1000, 1000)], "gpt-4o-2024-11-20", (1000 * 2.0 + 1000 * 8.0) / 1e6 / 10, "price-table", "openai/gpt-4o@gpt-4o-2024-11-20"),
    ([u(10, cost=0.5), u(10, 1000, 0)], "gpt-4o-2024-08-06", 1000 * 2.5 / 1e6 / 10, "price-table", "openai/gpt-4o"),
    ([], "gpt-4o-2024-08-06", None, "unknown", None),
    ([u(0, cost=0.0)], "gpt-4o-2024-08-06", None, "unknown", None),
    # dilution: requests that carry no usage, or no tokens, never lower the average
    ([u(20010, 1000, 1000, tokens_n=10, usage_n=10)], "gpt-4o-2024-08-06", (1000 * 2.5 + 1000 * 10) / 1e6 / 10, "price-table", "openai/gpt-4o"),
    ([u(10, 1000, 1000), u(20000)], "gpt-4o-2024-08-06", (1000 * 2.5 + 1000 * 10) / 1e6 / 10, "price-table", "openai/gpt-4o"),
    ([u(10, 1000, 1000), u(20000, cost=2e-6)], "gpt-4o-2024-08-06", (1000 * 2.5 + 1000 * 10) / 1e6 / 10, "price-table", "openai/gpt-4o"),
    ([u(10, 1000, 1000, cost=1e-9, cost_n=1, usage_n=10)], "gpt-4o-2024-08-06", (1000 * 2.5 + 1000 * 10) / 1e6 / 10, "price-table", "openai/gpt-4o"),
    ([u(10, 1000, 1000, cost=0.0)], "gpt-4o-2024-08-06", (1000 * 2.5 + 1000 * 10) / 1e6 / 10, "price-table", "openai/gpt-4o"),
    ([u(20000, 0, 0, cost=0.0)], "gpt-4o-2024-08-06", None, "unknown", None),
    ([u(10, 1000, 1000, cost=0.5), u(20000, cost=0.0)], "gpt-4o-2024-08-06", 0.05, "reported", None),
], ids=["reported", "priced by name", "priced by exact version first", "one file without cost: priced over the requests with tokens",
        "no usage", "no requests",
        "requests without tokens in the same file", "a second file of requests without usage",
        "a file of cost-only requests beside a priced file", "one request's tiny cost does not make the file reported",
        "a reported cost of zero for requests that used tokens", "requests with usage but zero tokens and zero cost",
        "zero-cost requests without tokens beside a reported file"])
def test_cost_per_request(usages, version, expected, method, key):
    est = estimate_cost(usages, PRICES, "openai", "gpt-4o", version)
    assert est.method == method and est.price_key == key, est.reason
    assert est.cost_per_request_usd == (pytest.approx(expected) if expected is not None else None)


def test_a_model_without_a_price_is_unknown_not_free():
    est = estimate_cost([u(10, 1000, 1000)], PRICES, "anthropic", "claude-sonnet-4", "claude-sonnet-4-20250514")
    assert est.cost_per_request_usd is None and "no price" in est.reason


# --- the two items on the bundled systems --------------------------------------------------


def checklist_of(tmp_path, system, manifest_edit=None, policy_edit=None, baseline_cost=None):
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "repo" / "ai-systems" / system, root / "ai-systems" / system)
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%S.000Z").encode()
    for path in (root / "ai-systems" / system / "evals").iterdir():
        path.write_bytes(path.read_bytes().replace(b"2026-11-20T09:30:00.000Z", stamp))
    mpath = root / "ai-systems" / system / "promotion.yaml"
    if manifest_edit is not None:  # the example declares a volume: replace it (or drop it with "")
        kept = [ln for ln in mpath.read_text().splitlines(keepends=True) if not ln.startswith("expected_monthly_requests:")]
        mpath.write_text("".join(kept) + manifest_edit)
    data = yaml.safe_load(POLICY_YAML)
    if policy_edit:
        policy_edit(data)
    policy = parse_policy(yaml.safe_dump(data).encode(), "policy.yaml")
    if baseline_cost is not None:
        lock = {"system": system, "source_commit": "a" * 40, "manifest_sha256": "b" * 64, "model": "x", "evidence": [],
                "decision_id": "x", "policy_version": "1", "policy_digest": "c" * 64, "promoted_at": NOW.isoformat(),
                "cost": {"cost_per_request_usd": baseline_cost, "method": "price-table"}}
        (root / "ai-systems" / system / "production.lock.json").write_text(json.dumps(lock))
    tree = WorkingTree(root)
    cl = evaluate(read_candidate(tree, system, "0" * 40, baseline=tree), policy, NOW)
    return {r.id: r for r in cl.results}


SUPPORT_CPR = (80 * 3.0 + 40 * 15.0) / 1e6  # promptfoo tokenUsage 80/40 per result, claude-sonnet-4 list price


def test_cost_per_request_from_the_examples_token_usage(tmp_path):
    r = checklist_of(tmp_path, "support-assistant", "expected_monthly_requests: 100000\n")["PG-COST-001"]
    assert r.outcome.value == "pass", r.reason
    assert r.facts["cost"]["cost_per_request_usd"] == pytest.approx(SUPPORT_CPR, rel=0.05)
    assert r.facts["cost"]["price_key"] == "anthropic/claude-sonnet-4"
    assert r.facts["projected_monthly_usd"] == pytest.approx(SUPPORT_CPR * 100000, rel=0.05)


def budget(per_request=None, per_month=None):
    def edit(data):
        data["tiers"]["high"]["budgets"] = {"per_request_usd": per_request, "per_month_usd": per_month}
    return edit


def drop_price(data):
    del data["prices"]["anthropic/claude-sonnet-4"]


@pytest.mark.parametrize("manifest_edit,policy_edit,outcome,reason", [
    ("expected_monthly_requests: 100000\n", None, "pass", "cost per request"),
    ("expected_monthly_requests: 100000000\n", None, "fail", "> budget $5,000.00"),
    ("expected_monthly_requests: 1000\n", budget(per_request=0.0005), "fail", "cost per request $0.00084 > budget $0.0005"),
    ("", None, "warn", "no expected_monthly_requests declared"),
    ("expected_monthly_requests: 1\n", None, "pass", "projected $0.00/month"),
    ("expected_monthly_requests: 0\n", None, "fail", "expected_monthly_requests is 0"),
    ("expected_monthly_requests: 0\n", budget(), "fail", "expected_monthly_requests is 0"),  # even where no budget is set
    ("expected_monthly_requests: 100\n", budget(), "not applicable", "sets no budget"),
    ("expected_monthly_requests: 100\n", drop_price, "warn", "cost unknown"),
], ids=["within budget", "a volume that breaks the month", "a request over budget", "volume not declared",
        "one request a month", "zero requests a month", "zero requests a month at a tier without a budget",
        "no budget at the tier", "no price and no reported cost"])
def test_projected_monthly_cost_within_budget(tmp_path, manifest_edit, policy_edit, outcome, reason):
    r = checklist_of(tmp_path, "support-assistant", manifest_edit, policy_edit)["PG-COST-001"]
    assert r.outcome.value == outcome and reason in r.reason, r.reason


@pytest.mark.parametrize("baseline,outcome,reason", [
    (None, "not applicable", "production records no cost"),
    (SUPPORT_CPR, "pass", "vs production"),
    (SUPPORT_CPR / 1.2, "pass", "vs production"),
    (SUPPORT_CPR / 2, "fail", "beyond the 25% tolerance"),
    (0.0, "fail", "rose from $0.00000"),
], ids=["first promotion", "same cost", "a 20% rise within 25%", "cost doubled", "production was free"])
def test_cost_per_request_did_not_regress(tmp_path, baseline, outcome, reason):
    r = checklist_of(tmp_path, "support-assistant", "expected_monthly_requests: 1000\n", baseline_cost=baseline)["PG-COST-002"]
    assert r.outcome.value == outcome and reason in r.reason, r.reason


def test_cost_regression_only_warns_at_the_low_tier(tmp_path):
    r = checklist_of(tmp_path, "helpdesk-summarizer", "expected_monthly_requests: 1000\n", baseline_cost=1e-9)["PG-COST-002"]
    assert r.outcome.value == "warn", r.reason


def test_unusable_usage_is_an_error_that_blocks(tmp_path):
    results = checklist_of(tmp_path, "support-assistant", "expected_monthly_requests: 1000\n")
    assert results["PG-COST-001"].outcome.value == "pass"
    path = tmp_path / "repo2"
    shutil.copytree(ROOT / "examples" / "repo" / "ai-systems", path / "ai-systems")
    pf = path / "ai-systems" / "support-assistant" / "evals" / "promptfoo.json"
    pf.write_bytes(pf.read_bytes().replace(b'"prompt": 80', b'"prompt": -80', 1))
    tree = WorkingTree(path)
    cand = read_candidate(tree, "support-assistant", "0" * 40)
    assert cand.evidence[0].usage_error and "prompt" in cand.evidence[0].usage_error
