"""promptfoo parsers: results.json (streamed) and results.jsonl.

Fixture shapes: promptfoo/promptfoo src/util/output.ts (createOutputData: {evalId, results:
EvaluateSummaryV3, config, shareableUrl, metadata{promptfooVersion, evaluationCreatedAt}};
JSONL = one EvaluateResult per line via JSON.stringify), src/types/index.ts (EvaluateResult:
success, score, namedScores, failureReason 0/1/2, provider{id,label}, gradingResult;
EvaluateSummaryV2/V3), and a real results.json excerpt in a public eval snapshot.
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


def parse(fmt: str, name: str):
    with (FIXTURES / name).open("rb") as f:
        return read_evidence(fmt, f)[0]


def parse_bytes(fmt: str, data: bytes):
    return read_evidence(fmt, io.BytesIO(data))[0]


def row(m):
    return (m.value, m.n, m.passed, m.failed)


@pytest.mark.parametrize(
    "fmt, name, expected",
    [
        ("promptfoo", "promptfoo__v3_pass_rate_0.75.json",
         {"pass_rate": (0.75, 4, 3, 1), "score": (0.75, 4, None, None),
          "score:accuracy": (0.75, 4, None, None), "score:tone": (0.65, 4, None, None)}),
        ("promptfoo", "promptfoo__v2_summary_at_top_pass_rate_0.5.json",
         {"pass_rate": (0.5, 2, 1, 1), "score": (0.625, 2, None, None)}),
        ("promptfoo-jsonl", "promptfoo__jsonl_with_error_pass_rate_0.5.jsonl",
         {"pass_rate": (0.5, 4, 2, 2), "score": (0.375, 4, None, None), "score:accuracy": (0.5, 3, None, None)}),
    ],
)
def test_metrics_per_fixture(fmt, name, expected):
    parsed = parse(fmt, name)
    assert {k: row(m) for k, m in parsed.metrics.items()} == {k: pytest.approx(v) for k, v in expected.items()}
    assert parsed.format == fmt


def test_provenance_of_the_v3_file():
    prov = parse("promptfoo", "promptfoo__v3_pass_rate_0.75.json").provenance
    assert prov.tool == "promptfoo"
    assert prov.tool_version == "0.107.4"  # metadata.promptfooVersion, not the summary schema version 3
    assert prov.model == "anthropic:messages:claude-3-5-sonnet-20241022,openai:gpt-4o-2024-08-06"
    assert prov.created_at == datetime(2025, 3, 4, 10, 20, 11, 482000, tzinfo=timezone.utc)


def test_provenance_of_old_and_jsonl_files():
    old = parse("promptfoo", "promptfoo__v2_summary_at_top_pass_rate_0.5.json").provenance
    assert (old.model, old.tool_version) == ("openai:gpt-3.5-turbo", None)
    assert old.created_at == datetime(2024, 2, 11, 16, 3, 12, 113000, tzinfo=timezone.utc)
    lines = parse("promptfoo-jsonl", "promptfoo__jsonl_with_error_pass_rate_0.5.jsonl").provenance
    assert (lines.model, lines.created_at) == ("openai:gpt-4o-2024-08-06", None)


@pytest.mark.parametrize(
    "fmt, name, reason",
    [
        ("promptfoo", "promptfoo__bad__no_results.json", "no promptfoo results"),
        ("promptfoo", "promptfoo__bad__result_without_success.json", "result 3: 'success' is None"),
        ("promptfoo", "junit__pytest_with_xfail.xml", "not valid JSON: lexical error: invalid char in json text"),
        ("promptfoo", "lm_eval__v0.4_hellaswag_acc_0.6.json", "no promptfoo results"),
        ("promptfoo", "promptfoo__jsonl_with_error_pass_rate_0.5.jsonl", "not valid JSON: parse error: trailing garbage"),
        ("promptfoo-jsonl", "promptfoo__v3_pass_rate_0.75.json", "line 1 is not valid JSON"),
        ("promptfoo-jsonl", "openai_evals__match_pass_rate_0.75.jsonl", "line 1: 'success' is None"),
    ],
)
def test_bad_files_are_refused_with_the_reason(fmt, name, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse(fmt, name)


@pytest.mark.parametrize(
    "fmt, data, reason",
    [
        ("promptfoo", b"", "premature EOF"),
        ("promptfoo", b'{"results": {"results": [{"success": true, "score": NaN}]}}', "NaN and Infinity are not JSON numbers"),
        ("promptfoo", b'{"results": [{"success": true}, ' + b"[" * 600 + b"]" * 600 + b"]}", "nested deeper than 512"),
        ("promptfoo", b'{"results": [{"success": true, "score": 1e999}]}', "numeric (floating point) overflow"),
        ("promptfoo", b'{"results": [{"success": true, "x": "\xff"}]}', "not valid JSON: lexical error: invalid bytes in UTF8 string"),
        ("promptfoo", b'{"results": [7]}', "result 1 is int, not a result object"),
        ("promptfoo", b'[1, 2, 3]', "no promptfoo results"),
        ("promptfoo-jsonl", b"", "no promptfoo results: the file has no result lines"),
        ("promptfoo-jsonl", b"\n\n  \n", "no promptfoo results"),
        ("promptfoo-jsonl", b'{"success": true}\n{"success": tru', "line 2 is not valid JSON: Expecting value at line 2, column 13"),
        ("promptfoo-jsonl", b'{"success": true, "score": NaN}\n', "line 1: JSON constant NaN is not a finite number"),
        ("promptfoo-jsonl", b'{"success": true}\n{"a": "\xc3\x28"}\n', "line 2 is not UTF-8: byte 0xc3 at offset 7"),
        ("promptfoo-jsonl", b"[" * 100_000 + b"\n", "line 1 is nested too deeply"),
        ("promptfoo-jsonl", b'{"success": 1}\n', "line 1: 'success' is 1, not true or false"),
    ],
)
def test_malformed_bytes_are_refused(fmt, data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(fmt, data)


def test_errors_count_as_failures_and_named_scores_average_where_present():
    lines = [
        {"success": True, "score": 1, "namedScores": {"f": 1.0}, "provider": {"id": "p:b"}},
        {"success": False, "score": 0, "failureReason": 2, "error": "timeout", "provider": "p:a"},
        {"success": False, "score": 0.5, "namedScores": {"f": 0.0, "label": "x"}, "provider": {"id": "p:b"}},
    ]
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    parsed = parse_bytes("promptfoo-jsonl", data)
    assert row(parsed.metrics["pass_rate"]) == (1 / 3, 3, 1, 2)
    assert row(parsed.metrics["score:f"]) == (0.5, 2, None, None)
    assert parsed.provenance.model == "p:a,p:b"


def test_a_long_jsonl_line_is_refused_without_reading_it_whole(monkeypatch):
    from promotion_gate.checklists.evidence import _common

    monkeypatch.setattr(_common, "MAX_LINE_BYTES", 100)
    with pytest.raises(EvidenceError, match="line 2 is longer than"):
        parse_bytes("promptfoo-jsonl", b'{"success": true}\n' + b" " * 500 + b"\n")


def test_json_streams_many_results_with_one_held_at_a_time():
    results = ",".join('{"success": %s, "score": %d, "provider": {"id": "openai:gpt-4o"}}' % (("true", 1) if i % 4 else ("false", 0)) for i in range(20_000))
    data = ('{"evalId": "e", "results": {"version": 3, "timestamp": "2025-01-01T00:00:00Z", "results": [%s]}}' % results).encode()
    assert row(parse_bytes("promptfoo", data).metrics["pass_rate"]) == (0.75, 20_000, 15_000, 5_000)
