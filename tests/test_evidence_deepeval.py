"""deepeval test-run parser.

Fixture shapes: confident-ai/deepeval deepeval/test_run/test_run.py (TestRun saved by_alias:
testFile, testCases, conversationalTestCases, metricsScores, hyperparameters, testPassed,
testFailed, runDuration, evaluationCost, datasetAlias; .deepeval/.latest_test_run.json wraps it
in testRunData) and test_run/api.py (LLMApiTestCase: name, input, actualOutput, success,
metricsData[{name, threshold, success, score, reason, strictMode, evaluationModel, error,
evaluationCost, verboseLogs}]; older releases: metricsMetadata[{metric, ...}]).
"""

import io
import itertools
import json
import re
from pathlib import Path

import pytest

from promotion_gate.checklists.evidence import read_evidence
from promotion_gate.checklists.evidence.base import EvidenceError

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
CURRENT = {
    "pass_rate": (2 / 3, 3, 2, 1),
    "Answer Relevancy": (0.7, 3, None, None),
    "Answer Relevancy/pass_rate": (2 / 3, 3, 2, 1),
    "Faithfulness": (0.95, 2, None, None),
    "Faithfulness/pass_rate": (2 / 3, 3, 2, 1),  # the errored run counts as failed
}


def parse(name: str):
    with (FIXTURES / name).open("rb") as f:
        return read_evidence("deepeval", f)[0]


def parse_doc(doc):
    return read_evidence("deepeval", io.BytesIO(json.dumps(doc).encode()))[0]


def row(m):
    return (m.value, m.n, m.passed, m.failed)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("deepeval__pass_rate_0.667.json", CURRENT),
        ("deepeval__latest_test_run_wrapper_pass_rate_0.667.json", CURRENT),
        ("deepeval__legacy_metrics_metadata_pass_rate_0.5.json", {
            "pass_rate": (0.5, 2, 1, 1), "Answer Relevancy": (0.5, 2, None, None), "Answer Relevancy/pass_rate": (0.5, 2, 1, 1)}),
    ],
)
def test_metrics_per_fixture(name, expected):
    parsed = parse(name)
    assert {k: row(m) for k, m in parsed.metrics.items()} == {k: pytest.approx(v) for k, v in expected.items()}


def test_model_is_the_system_under_test_not_the_judge():
    prov = parse("deepeval__pass_rate_0.667.json").provenance
    assert (prov.tool, prov.model, prov.dataset) == ("deepeval", "gpt-4o-mini-2024-07-18", "support-faq")
    assert parse("deepeval__legacy_metrics_metadata_pass_rate_0.5.json").provenance.model is None


def test_cases_not_evaluated_are_left_out_and_conversational_cases_count():
    doc = {"testCases": [{"name": "a", "success": None, "metricsData": None}],
           "conversationalTestCases": [{"name": "c", "success": True, "metricsData": [{"name": "Role Adherence", "score": 1.0, "success": True}]}]}
    metrics = parse_doc(doc).metrics
    assert row(metrics["pass_rate"]) == (1.0, 1, 1, 0)
    assert row(metrics["Role Adherence"]) == (1.0, 1, None, None)


def test_a_metric_that_always_errored_has_a_rate_but_no_mean():
    doc = {"testCases": [{"name": "a", "success": False, "metricsData": [{"name": "Toxicity", "success": False, "error": "judge failed"}]}]}
    metrics = parse_doc(doc).metrics
    assert "Toxicity" not in metrics
    assert row(metrics["Toxicity/pass_rate"]) == (0.0, 1, 0, 1)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("deepeval__bad__nan_score.json", "test case 1 metric 1 (Answer Relevancy) score is nan"),
        ("deepeval__bad__no_test_cases.json", "the test run has no test cases"),
        ("promptfoo__v3_pass_rate_0.75.json", "no testCases: not a deepeval test run file"),
        ("junit__nested_suites.xml", "deepeval test run is not valid JSON"),
    ],
)
def test_bad_files_are_refused_with_the_reason(name, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse(name)


@pytest.mark.parametrize(
    "doc, reason",
    [
        ({"testCases": "many"}, "testCases is str, not a list"),
        ({"testCases": [3]}, "test case 1 is not an object"),
        ({"testCases": [{"success": "yes"}]}, "test case 1: 'success' is 'yes'"),
        ({"testCases": [{"success": True, "metricsData": {}}]}, "metricsData is not a list"),
        ({"testCases": [{"success": True, "metricsData": [{"score": 1}]}]}, "test case 1 metric 1 has no metric name"),
        ({"testCases": [{"success": True, "metricsData": [{"name": "pass_rate", "score": 1}]}]}, "may not be named 'pass_rate'"),
        ({"testCases": [{"success": None}]}, "no test case was evaluated"),
        ([1, 2], "no testCases"),
    ],
)
def test_malformed_documents_are_refused(doc, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_doc(doc)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "deepeval test run is empty"),
        (b'{"testCases": [', "not valid JSON: Expecting value at line 1, column 16"),
        (b'{"testCases": []} \xff', "not UTF-8: byte 0xff at offset 18"),
        (b'{"testCases": ' + b"[" * 100_000, "nested deeper than 512 levels"),
    ],
)
def test_malformed_bytes_are_refused(data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        read_evidence("deepeval", io.BytesIO(data))


# --- the run's own totals, one model, hostile input ---------------------------------------------


def run(cases, **top):
    return {"testCases": cases, "hyperparameters": {"model": "gpt-4o-2024-08-06"}, **top}


_INPUTS = itertools.count()


def case(success, score=0.9):
    """A test case with an input of its own: the same name and input twice is one case recorded twice."""
    return {"name": "c", "input": f"q{next(_INPUTS)}", "success": success,
            "metricsData": [{"name": "Answer Relevancy", "score": score, "success": success, "threshold": 0.5}]}


def test_totals_that_agree_are_read_and_the_model_is_one_group():
    parsed = parse_doc(run([case(True), case(True), case(False, 0.1)], testPassed=2, testFailed=1))
    assert row(parsed.metrics["pass_rate"])[:4] == (2 / 3, 3, 2, 1)
    assert [(g.provider, g.model, g.raw) for g in parsed.groups] == [(None, "gpt-4o-2024-08-06", "gpt-4o-2024-08-06")]


@pytest.mark.parametrize(
    "doc, reason",
    [
        (run([case(True), case(False, 0.1)], testPassed=2, testFailed=0), "testPassed is 2 but the test cases hold 1"),
        (run([case(True), case(False, 0.1)], testPassed=1, testFailed=5), "testFailed is 5 but the test cases hold 1"),
        (run([case(True)], testPassed=-1), "testPassed is -1, not a non-negative whole number"),
        (run([case(True)], testPassed=2**64), "testPassed is 18446744073709551616, not a non-negative whole number below 2**63"),
        (run([case(True, float("inf"))]), "score is inf, not a finite number"),
        (run([case(True, float("nan"))]), "score is nan, not a finite number"),
    ],
)
def test_runs_that_disagree_with_themselves_or_hold_unusable_numbers_are_refused(doc, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_doc(doc)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b'{"testCases": [{"success": true, "metricsData": [{"name": "m", "score": 1e999, "success": true}]}]}', "score is inf"),
        (b'{"testCases": [{"success": true, "metricsData": [{"name": "m", "score": 1' + b"0" * 5000 + b', "success": true}]}]}',
         "not usable JSON: Exceeds the limit (4300 digits)"),
        (b'{"testCases": [{"success": false, "success": true}]}', "key 'success' appears twice in one object"),
        (b'{"testCases": [' + b"[" * 600 + b"]" * 600 + b"]}", "nested deeper than 512 levels"),
    ],
)
def test_hostile_bytes_are_refused(data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        read_evidence("deepeval", io.BytesIO(data))


def test_a_byte_order_mark_changes_nothing():
    data = (FIXTURES / "deepeval__pass_rate_0.667.json").read_bytes()
    assert read_evidence("deepeval", io.BytesIO(b"\xef\xbb\xbf" + data))[0] == parse("deepeval__pass_rate_0.667.json")


def test_a_file_past_the_cap_is_refused_before_it_is_parsed(monkeypatch):
    from promotion_gate.checklists.evidence import deepeval

    monkeypatch.setattr(deepeval, "MAX_BYTES", 100)
    with pytest.raises(EvidenceError, match=re.escape("deepeval test run is larger than the 0 MiB this format is read whole up to")):
        parse("deepeval__pass_rate_0.667.json")


# --- a case's success must agree with its metrics ---------------------------------------------------


def failing_metric(**extra):
    return {"name": "Faithfulness", "threshold": 0.7, "success": False, "score": 0.2, **extra}


def passing_metric(name="Answer Relevancy"):
    return {"name": name, "threshold": 0.7, "success": True, "score": 0.9}


CONTRADICTIONS = [
    ("100 cases marked success over failing metrics (the review's pass_rate 1.0)",
     run([{"name": f"c{i}", "success": True, "metricsData": [failing_metric()]} for i in range(100)], testPassed=100, testFailed=0),
     "test case 1 (c0): success is true but metric 1 (Faithfulness) has success False: a case passes only when every metric does"),
    ("one failing metric among passing ones",
     run([case(True), {"name": "x", "success": True, "metricsData": [passing_metric(), failing_metric()]}]),
     "test case 2 (x): success is true but metric 2 (Faithfulness) has success False"),
    ("a metric that errored under a passing case",
     run([{"name": "x", "success": True, "metricsData": [failing_metric(score=None, error="Evaluation LLM outputted an invalid JSON.")]}]),
     "test case 1 (x): success is true but metric 1 (Faithfulness) has success False"),
    ("an errored metric that still says success",
     run([{"name": "x", "success": True, "metricsData": [{**passing_metric(), "error": "judge timed out"}]}]),
     "test case 1 (x): success is true but metric 1 (Answer Relevancy) errored: 'judge timed out'"),
    ("a metric with no success at all under a passing case",
     run([{"name": "x", "success": True, "metricsData": [{"name": "Bias", "score": 0.0, "threshold": 0.5}]}]),
     "test case 1 (x): success is true but metric 1 (Bias) has success None"),
    ("a conversational case",
     {"conversationalTestCases": [{"name": "conv", "success": True, "metricsData": [failing_metric()]}]},
     "test case 1 (conv): success is true but metric 1 (Faithfulness) has success False"),
    ("the older metricsMetadata shape",
     {"testCases": [{"name": "old", "success": True, "metricsMetadata": [{"metric": "Answer Relevancy", "success": False, "score": 0.1}]}]},
     "test case 1 (old): success is true but metric 1 (Answer Relevancy) has success False"),
    ("60 passing cases and 40 with success null over a failed metric (the review's a7: pass_rate 1.0 n=60)",
     run([case(True) for _ in range(60)] + [{**case(None, 0.2), "metricsData": [failing_metric()]} for _ in range(40)],
         testPassed=60, testFailed=0),
     "test case 61 (c): success is None but the case has 1 scored metric: a case with metric data was evaluated"),
    ("success missing over a failed metric",
     run([case(True), {"name": "y", "metricsData": [failing_metric()]}]),
     "test case 2 (y): success is None but the case has 1 scored metric"),
    ("success null over passing metrics: deepeval sets it from the first metric",
     run([{"name": "z", "success": None, "metricsData": [passing_metric(), passing_metric("Bias")]}]),
     "test case 1 (z): success is None but the case has 2 scored metrics"),
    ("success null over an errored metric",
     run([{"name": "e", "success": None, "metricsData": [failing_metric(score=None, error="timeout")]}]),
     "test case 1 (e): success is None but the case has 1 scored metric"),
]


@pytest.mark.parametrize("case_, doc, reason", CONTRADICTIONS, ids=[c[0] for c in CONTRADICTIONS])
def test_a_case_whose_success_contradicts_its_metrics_is_refused(case_, doc, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_doc(doc)


def test_a_failed_case_with_passing_metrics_stays_failed():
    # the stricter reading of the opposite disagreement: the case does not count as passed
    parsed = parse_doc(run([case(True), {"name": "x", "success": False, "metricsData": [passing_metric()]}]))
    assert row(parsed.metrics["pass_rate"])[:4] == (0.5, 2, 1, 1)


def test_a_passing_case_without_metrics_is_read():
    assert row(parse_doc(run([{"name": "x", "success": True, "metricsData": []}])).metrics["pass_rate"])[:4] == (1.0, 1, 1, 0)


def test_a_case_without_success_or_metrics_is_still_left_out():
    parsed = parse_doc(run([case(True), {"name": "n", "success": None, "metricsData": []}, {"name": "m", "success": None}]))
    assert row(parsed.metrics["pass_rate"])[:4] == (1.0, 1, 1, 0)


# --- a test case counts once: one recorded twice is refused ---------------------------------------


def llm_case(i, success, **extra):
    metric = {"name": "Answer Relevancy", "threshold": 0.7, "success": success, "score": 0.9 if success else 0.4, "evaluationModel": "gpt-4.1"}
    return {"name": f"test_case_{i}", "input": f"q{i}", "actualOutput": "a", "success": success, "order": i, "metricsData": [metric], **extra}


REVIEW_30 = [llm_case(i, i >= 12) for i in range(30)]  # 18 of 30 pass: pass_rate 0.6

REPEATED = [
    ("the 18 passing cases appended 10 more times (the review's de_pad: FAIL read as PASS)",
     run(REVIEW_30 + [c for c in REVIEW_30 if c["success"]] * 10, testPassed=198, testFailed=12),
     "test case 31 (test_case_12) repeats test case 13: the same test case (name, input and output) may count once, and this file records it twice"),
    ("a copy given an order of its own", run(REVIEW_30 + [{**REVIEW_30[29], "order": 30}]), "test case 31 (test_case_29) repeats test case 30"),
    ("a copy with other run measurements",
     run(REVIEW_30 + [{**REVIEW_30[29], "runDuration": 1.5, "evaluationCost": 0.01, "order": 99}]), "test case 31 (test_case_29) repeats test case 30"),
    ("a copy with the other outcome", run([llm_case(0, False), llm_case(0, True)]), "test case 2 (test_case_0) repeats test case 1"),
    ("a copy whose keys are in another order",
     run([llm_case(0, True, context=["a", "b"]), dict(reversed(list(llm_case(0, True, context=["a", "b"]).items())))]),
     "test case 2 (test_case_0) repeats test case 1"),
    ("a conversational case recorded twice",
     {"conversationalTestCases": [{"name": "conv", "success": True, "turns": [{"role": "user", "content": "hi", "order": 0}],
                                   "metricsData": [passing_metric()]}] * 2},
     "test case 2 (conv) repeats test case 1"),
    ("the older metricsMetadata shape",
     {"testCases": [{"name": "old", "input": "q", "success": True, "metricsMetadata": [{"metric": "Answer Relevancy", "success": True, "score": 0.9}]}] * 2},
     "test case 2 (old) repeats test case 1"),
]


@pytest.mark.parametrize("case_, doc, reason", REPEATED, ids=[r[0] for r in REPEATED])
def test_a_test_case_recorded_twice_is_refused(case_, doc, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_doc(doc)


DISTINCT = [
    ("the review's 30 cases as written", run(REVIEW_30, testPassed=18, testFailed=12), (0.6, 30, 18, 12)),
    ("one name over two inputs (a test asserting two cases)",
     run([llm_case(0, True), {**llm_case(0, False), "input": "another question"}]), (0.5, 2, 1, 1)),
    ("one input under two names (two tests over one golden)",
     run([llm_case(0, True), {**llm_case(0, False), "name": "test_other"}]), (0.5, 2, 1, 1)),
    ("one input with two answers", run([llm_case(0, True), {**llm_case(0, False), "actualOutput": "b"}]), (0.5, 2, 1, 1)),
    ("an LLM case and a conversational case of one name",
     {"testCases": [{"name": "x", "success": True, "metricsData": []}], "conversationalTestCases": [{"name": "x", "success": False, "metricsData": []}]},
     (0.5, 2, 1, 1)),
    ("cases left out (no success, no metrics) may repeat",
     run([llm_case(0, True), {"name": "n", "success": None}, {"name": "n", "success": None}]), (1.0, 1, 1, 0)),
]


@pytest.mark.parametrize("case_, doc, expected", DISTINCT, ids=[d[0] for d in DISTINCT])
def test_distinct_test_cases_are_each_counted(case_, doc, expected):
    assert row(parse_doc(doc).metrics["pass_rate"]) == expected
