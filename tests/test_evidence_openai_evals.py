"""OpenAI Evals record-log parser.

Fixture shapes: openai/evals evals/record.py (LocalRecorder writes {"spec": RunSpec} first, then
Event lines {run_id, event_id, sample_id, type, data, created_by, created_at} where a match
event's data.correct is a bool, and {"final_report": ...}, which can land before the last events
because events are flushed at exit) and evals/base.py (RunSpec: completion_fns / model_name,
eval_name, base_eval, split, run_config, created_by, run_id, created_at = str(utcnow())).
"""

import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from promotion_gate.checklists.evidence import read_evidence
from promotion_gate.checklists.evidence.base import EvidenceError

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
SPEC = {"spec": {"model_name": "gpt-3.5-turbo", "eval_name": "test-match.s1.simple-v0", "run_id": "r", "created_at": "2023-03-15 20:10:47.338542"}}


def parse(name: str):
    with (FIXTURES / name).open("rb") as f:
        return read_evidence("openai-evals", f)[0]


def parse_lines(*lines):
    data = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines).encode()
    return read_evidence("openai-evals", io.BytesIO(data))[0]


def row(m):
    return (m.value, m.n, m.passed, m.failed)


def match(correct, sample="s"):
    return {"run_id": "r", "event_id": 0, "sample_id": sample, "type": "match", "data": {"correct": correct}, "created_at": "x"}


def report(**numbers):
    return {"final_report": numbers}


def test_metrics_and_provenance_of_the_fixture():
    parsed = parse("openai_evals__match_pass_rate_0.75.jsonl")
    assert {k: row(m) for k, m in parsed.metrics.items()} == {
        "pass_rate": (0.75, 4, 3, 1), "accuracy": (0.75, 4, 3, 1), "boostrap_std": (0.2165, None, None, None)}
    assert [(g.provider, g.model, g.raw) for g in parsed.groups] == [(None, "gpt-4o-2024-08-06", "gpt-4o-2024-08-06")]
    assert parsed.notes == ()
    prov = parsed.provenance
    assert (prov.tool, prov.model, prov.dataset) == ("openai-evals", "gpt-4o-2024-08-06", "refusal-check.dev.v0")
    assert prov.created_at == datetime(2025, 3, 4, 10, 15, 30, 123456, tzinfo=timezone.utc)


def test_older_specs_name_the_model_in_model_name():
    parsed = parse_lines(SPEC, match(True, "a"), match(False, "b"), report(accuracy=0.5))
    assert parsed.provenance.model == "gpt-3.5-turbo"
    assert row(parsed.metrics["pass_rate"]) == (0.5, 2, 1, 1)


def test_a_final_report_alone_is_enough_and_non_numbers_in_it_are_skipped():
    parsed = parse_lines(SPEC, {"final_report": {"f1_score": 0.8, "per_class": {"a": 1}, "pass_rate": 1.0}})
    assert {k: row(m) for k, m in parsed.metrics.items()} == {"f1_score": (0.8, None, None, None)}
    assert parsed.notes == ("oaieval final_report states no accuracy: match events lost at a line boundary cannot be detected",)


def test_accuracy_with_only_a_final_report_has_no_n():
    parsed = parse_lines(SPEC, report(accuracy=0.9))
    assert {k: row(m) for k, m in parsed.metrics.items()} == {"accuracy": (0.9, None, None, None)}


@pytest.mark.parametrize(
    "name, reason",
    [
        ("openai_evals__bad__no_spec.jsonl", "line 1 is not the run spec"),
        ("openai_evals__bad__match_without_bool.jsonl", "line 3: match event without a true/false data.correct"),
        ("promptfoo__jsonl_with_error_pass_rate_0.5.jsonl", "line 1 is not the run spec"),
        ("junit__bare_testsuite_pass_rate_0.5.xml", "oaieval log line 1 is not valid JSON"),
    ],
)
def test_bad_files_are_refused_with_the_reason(name, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse(name)


@pytest.mark.parametrize(
    "lines, reason",
    [
        ((), "the file is empty"),
        ((SPEC,), "no final_report: the run did not finish, or the file was cut"),
        ((SPEC, match(True), match(False, "t")), "no final_report: the run did not finish, or the file was cut"),
        ((SPEC, report(per_class={"a": 1})), "no match events and no number in the final report"),
        ((SPEC, match(True), {"final_report": {"accuracy": float("nan")}}), "final_report accuracy is nan"),
        ((SPEC, match(True), '{"final_report": {"accuracy": Infinity}}'), "final_report accuracy is inf"),
        ((SPEC, match(True), '{"final_report": {"accuracy": 1e999}}'), "final_report accuracy is inf"),
        ((SPEC, match(True), '{"final_report": {"accuracy": 1' + "0" * 5000 + "}}"), "not usable JSON: Exceeds the limit (4300 digits)"),
        ((SPEC, match(True), '{"final_report": ' + "[" * 600 + "]" * 600 + "}"), "line 3 is nested deeper than 512 levels"),
        ((SPEC, match(True), '{"final_report": {"accuracy": 1.0, "accuracy": 0.5}}'), "key 'accuracy' appears twice in one object"),
        ((SPEC, report(accuracy=1.5)), "final_report accuracy is 1.5: a rate outside [0, 1]"),
        ((SPEC, match(True, "a"), match(True, "b"), match(False, "c"), report(accuracy=1.0)),
         "final_report accuracy is 1.0 but the match events give 2/3 = 0.666667"),
        ((SPEC, match(True, "a"), match(True, "a"), report(accuracy=1.0)), "line 3: sample 'a' has a second match event"),
        ((SPEC, report(accuracy=0.5), report(accuracy=0.5)), "line 3: a second final_report"),
        ((SPEC, match(True, "a"), {k: v for k, v in match(True).items() if k != "sample_id"}, report(accuracy=1.0)),
         "line 3: match event 0 has no sample_id: oaieval records every match under its sample, and one without cannot be told from a copy"),
        ((SPEC, match(True, "a"), match(True, None), report(accuracy=1.0)), "line 3: match event 0 has no sample_id"),
        ((SPEC, match(True, "a"), match(True, ""), report(accuracy=1.0)), "line 3: match event 0 has no sample_id"),
        ((SPEC, match(True, "a"), match(True, ["a"]), report(accuracy=1.0)), "line 3: match event 0 has no sample_id"),
        # the review's h9-4: another run's events spliced in under this run's spec
        ((SPEC, match(True, "a"), {**match(True, "b"), "run_id": "RUN-B-gpt-4o"}, report(accuracy=1.0)),
         "line 3: event 0 belongs to run 'RUN-B-gpt-4o', not this log's run 'r' (the spec's run_id)"),
        ((SPEC, {"run_id": "other", "event_id": 0, "sample_id": "a", "type": "sampling", "data": {}}, match(True, "a"), report(accuracy=1.0)),
         "line 2: event 0 belongs to run 'other', not this log's run 'r'"),
        ((SPEC, {k: v for k, v in match(True, "a").items() if k != "run_id"}, report(accuracy=1.0)),
         "line 2: event 0 belongs to run None, not this log's run 'r'"),
        (({"spec": {k: v for k, v in SPEC["spec"].items() if k != "run_id"}}, match(True, "a"), {**match(True, "b"), "run_id": "q"}, report(accuracy=1.0)),
         "line 3: event 0 belongs to run 'q', not this log's run 'r' (the first event's run_id)"),
        ((SPEC, [1]), "line 2 is not an object"),
        ((SPEC, {"hello": 1}), "line 2 is neither an event nor the final report"),
        ((SPEC, {"final_report": 0.5}), "line 2: final_report is not an object"),
        (({"spec": "x"},), "line 1: 'spec' is not an object"),
        ((SPEC, '{"type": "match", "data": {"correct": tr'), "line 2 is not valid JSON: Expecting value at line 2"),
        (({"spec": {"created_at": "the ides of march"}}, match(True)), "spec.created_at 'the ides of march'"),
    ],
)
def test_malformed_logs_are_refused(lines, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_lines(*lines)


def test_a_log_cut_after_the_report_loses_events_and_is_caught():
    lines = [SPEC, match(True, "a"), report(accuracy=0.5), match(False, "b")]  # events flushed after the report
    assert row(parse_lines(*lines).metrics["pass_rate"]) == (0.5, 2, 1, 1)
    with pytest.raises(EvidenceError, match=re.escape("final_report accuracy is 0.5 but the match events give 1/1 = 1")):
        parse_lines(*lines[:3])  # cut at a line boundary


def test_a_byte_order_mark_changes_nothing():
    data = (FIXTURES / "openai_evals__match_pass_rate_0.75.jsonl").read_bytes()
    plain = read_evidence("openai-evals", io.BytesIO(data))[0]
    assert read_evidence("openai-evals", io.BytesIO(b"\xef\xbb\xbf" + data))[0] == plain


def test_300_unkeyed_correct_events_beside_100_keyed_are_refused():
    # the review's a12: 100 events (70 correct) + 300 correct events without sample_id read as 0.925 n=400
    events = [{**match(i < 70, f"e.dev.{i}"), "event_id": i} for i in range(100)]
    events += [{k: v for k, v in {**match(True), "event_id": 1000 + k}.items() if k != "sample_id"} for k in range(300)]
    with pytest.raises(EvidenceError, match=re.escape("line 102: match event 1000 has no sample_id")):
        parse_lines(SPEC, *events, report(accuracy=370 / 400))
