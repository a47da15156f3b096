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


def match(correct):
    return {"run_id": "r", "event_id": 0, "sample_id": "s", "type": "match", "data": {"correct": correct}, "created_at": "x"}


def test_metrics_and_provenance_of_the_fixture():
    parsed = parse("openai_evals__match_pass_rate_0.75.jsonl")
    assert {k: row(m) for k, m in parsed.metrics.items()} == {
        "pass_rate": (0.75, 4, 3, 1), "accuracy": (0.75, None, None, None), "boostrap_std": (0.2165, None, None, None)}
    prov = parsed.provenance
    assert (prov.tool, prov.model, prov.dataset) == ("openai-evals", "gpt-4o-2024-08-06", "refusal-check.dev.v0")
    assert prov.created_at == datetime(2025, 3, 4, 10, 15, 30, 123456, tzinfo=timezone.utc)


def test_older_specs_name_the_model_in_model_name():
    parsed = parse_lines(SPEC, match(True), match(False))
    assert parsed.provenance.model == "gpt-3.5-turbo"
    assert row(parsed.metrics["pass_rate"]) == (0.5, 2, 1, 1)


def test_a_final_report_alone_is_enough_and_non_numbers_in_it_are_skipped():
    parsed = parse_lines(SPEC, {"final_report": {"f1_score": 0.8, "per_class": {"a": 1}, "pass_rate": 1.0}})
    assert {k: row(m) for k, m in parsed.metrics.items()} == {"f1_score": (0.8, None, None, None)}


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
        ((SPEC,), "no match events and no final report"),
        ((SPEC, match(True), {"final_report": {"accuracy": float("nan")}}), "final_report accuracy is nan"),
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
