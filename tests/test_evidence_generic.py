"""Generic metrics file parser (JSON and CSV), strict about keys and columns.

The format is this project's own (checklists/evidence/generic.py documents it); the fixtures are
what a team's in-house harness would write.
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


def parse_json_doc(doc):
    return read_evidence("generic-json", io.BytesIO(json.dumps(doc).encode()))[0]


def parse_csv_text(text: str):
    return read_evidence("generic-csv", io.BytesIO(text.encode()))[0]


def row(m):
    return (m.value, m.n, m.passed, m.failed, m.stderr)


def test_json_fixture():
    parsed = parse("generic-json", "generic__pass_rate_0.93.json")
    assert {k: row(m) for k, m in parsed.metrics.items()} == {
        "pass_rate": (0.93, 200, 186, 14, None), "groundedness": (0.88, 200, None, None, 0.012)}
    prov = parsed.provenance
    assert (prov.tool, prov.tool_version, prov.model, prov.dataset) == ("in-house-harness", "2.1.0", "openai:gpt-4o-2024-08-06", "support-faq-v3")
    assert prov.created_at == datetime(2025, 3, 4, 10, 15, 30, tzinfo=timezone.utc)


def test_csv_fixture():
    parsed = parse("generic-csv", "generic__pass_rate_0.75.csv")
    assert {k: row(m) for k, m in parsed.metrics.items()} == {
        "pass_rate": (0.75, 40, 30, 10, None), "latency_p95_s": (1.8, 40, None, None, None)}
    assert parsed.provenance.tool == "generic"


def test_csv_with_a_bom_crlf_and_blank_rows():
    parsed = parse_csv_text("\ufeffmetric,value,n,stderr\r\nacc,0.5,10,0.1\r\n,,,\r\n")
    assert row(parsed.metrics["acc"]) == (0.5, 10, None, None, 0.1)


@pytest.mark.parametrize(
    "fmt, name, reason",
    [
        ("generic-json", "generic__bad__unknown_keys.json", "top level: unknown key 'notes'"),
        ("generic-json", "generic__bad__pass_rate_not_passed_over_total.json", "metrics[1] (pass_rate): value 0.99 is not passed / (passed + failed) = 186/200"),
        ("generic-csv", "generic__bad__unknown_column.csv", "CSV header: unknown column 'confidence'"),
        ("generic-csv", "generic__bad__nan_value.csv", "CSV line 2 (accuracy) value is nan"),
        ("generic-json", "generic__pass_rate_0.75.csv", "generic metrics JSON is not valid JSON"),
        ("generic-csv", "generic__pass_rate_0.93.json", "the CSV header lacks metric, value, n"),
    ],
)
def test_bad_files_are_refused_with_the_reason(fmt, name, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse(fmt, name)


def good(**changes):
    metric = {"metric": "pass_rate", "value": 0.5, "n": 4, "passed": 2, "failed": 2}
    return {"metrics": [{**metric, **changes}]}


@pytest.mark.parametrize(
    "doc, reason",
    [
        ({**good(), "extra": 1}, "top level: unknown key 'extra'"),
        (good(p_value=0.1, ci=2), "metrics[1]: unknown keys 'ci', 'p_value'"),
        (good(passed=None, failed=None), "pass_rate needs both"),
        (good(failed=None), "give both passed and failed"),
        (good(n=5), "n 5 is not passed + failed = 4"),
        (good(value="0.5"), "value '0.5' is not a number"),
        (good(value=None), "value None is not a number"),
        (good(n=-1), "n is -1, not a non-negative whole number"),
        (good(passed=2.5), "passed is 2.5"),
        (good(metric=""), "'metric' must be a non-empty name"),
        ({"metrics": [good()["metrics"][0], good()["metrics"][0]]}, "metric 'pass_rate' is listed twice"),
        ({"metrics": []}, "no metrics"),
        ({"metrics": {"a": 1}}, "'metrics' must be a list"),
        ({"metrics": [1]}, "metrics[1] is not an object"),
        ([], "the document is list"),
        ({**good(), "created_at": "2025-13-45"}, "created_at '2025-13-45' is not an ISO 8601"),
        ({"metrics": [{"metric": "acc", "value": 0.9, "passed": 1, "failed": 1}]}, "(acc): value 0.9 is not passed / (passed + failed) = 1/2"),
    ],
)
def test_malformed_json_documents_are_refused(doc, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_json_doc(doc)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "the file is empty"),
        ("metric,value\nacc,0.5\n", "the CSV header lacks n"),
        ("metric,value,n,n\nacc,0.5,1,1\n", "the CSV header repeats a column"),
        ("metric,value,n\nacc,0.5,10,extra\n", "CSV line 2 has more cells than the header"),
        ("metric,value,n\nacc,high,10\n", "CSV line 2: value 'high' is not a number"),
        ("metric,value,n\nacc,0.5,ten\n", "CSV line 2: n 'ten' is not a number"),
        ("metric,value,n\nacc,inf,10\n", "value is inf"),
        ("metric,value,n\nacc,0.5,10\nacc,0.6,10\n", "listed twice"),
        ('metric,value,n\n"acc,0.5,10\n', "CSV line 2 (acc,0.5,10): value None is not a number"),
        ("metric,value,n\nacc,0.5,10\n" + "x" * 200_000 + ",1,1\n", "not valid CSV: field larger than field limit"),
    ],
)
def test_malformed_csv_is_refused(text, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_csv_text(text)


def test_non_utf8_csv_names_the_offset():
    with pytest.raises(EvidenceError, match=re.escape("not UTF-8: byte 0xe9 at offset 18")):
        read_evidence("generic-csv", io.BytesIO(b"metric,value,n\nacc\xe9,0.5,1\n"))


def test_a_file_with_too_many_metrics_is_refused(monkeypatch):
    from promotion_gate.checklists.evidence import generic

    monkeypatch.setattr(generic, "MAX_METRICS", 3)
    rows = "".join(f"m{i},0.5,10\n" for i in range(4))
    with pytest.raises(EvidenceError, match="CSV line 5: more than the 3 metrics"):
        parse_csv_text("metric,value,n\n" + rows)
    doc = {"metrics": [{"metric": f"m{i}", "value": 0.5} for i in range(4)]}
    with pytest.raises(EvidenceError, match="4 metrics: more than the 3"):
        parse_json_doc(doc)


# --- rates, direction, notes, hostile numbers, size cap ----------------------------------------


@pytest.mark.parametrize(
    "doc, reason",
    [
        ({"metrics": [{"metric": "accuracy", "value": 1.2, "n": 10}]}, "metrics[1] (accuracy) is 1.2: a rate outside [0, 1]"),
        ({"metrics": [{"metric": "suite/acc", "value": -0.1}]}, "metrics[1] (suite/acc) is -0.1: a rate outside [0, 1]"),
        (good(higher_is_better="yes"), "metrics[1] (pass_rate): higher_is_better is 'yes', not true or false"),
        (good(n=2**63), "n is 9223372036854775808, not a non-negative whole number below 2**63"),
        (good(stderr=float("nan")), "JSON constant NaN is not a finite number"),
        (good(stderr=1e308 * 10), "JSON constant Infinity is not a finite number"),
    ],
)
def test_numbers_a_metrics_file_cannot_mean_are_refused(doc, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        read_evidence("generic-json", io.BytesIO(json.dumps(doc).encode()))


def test_direction_and_the_summary_note_are_carried():
    parsed = parse_json_doc({"metrics": [{"metric": "latency_p95_ms", "value": 812.0, "n": 200, "higher_is_better": False}],
                             "model": "gpt-4o-2024-08-06"})
    assert parsed.metrics["latency_p95_ms"].higher_is_better is False
    assert [(g.provider, g.model) for g in parsed.groups] == [(None, "gpt-4o-2024-08-06")]
    assert parsed.notes == ("generic metrics file: sample counts are the file's own statement, with no per-sample records to check them against",)
    assert parse_csv_text("metric,value,n\nacc,0.5,10\n").notes[1] == "csv format declares no total: truncation at a line boundary cannot be detected"


@pytest.mark.parametrize(
    "fmt, data, reason",
    [
        ("generic-json", b'{"metrics": [{"metric": "a", "value": NaN}]}', "JSON constant NaN is not a finite number"),
        ("generic-json", b'{"metrics": [{"metric": "a", "value": -Infinity}]}', "JSON constant -Infinity is not a finite number"),
        ("generic-json", b'{"metrics": [{"metric": "a", "value": 1e999}]}', "(a) value is inf, not a finite number"),
        ("generic-json", b'{"metrics": [{"metric": "a", "value": 1' + b"0" * 5000 + b"}]}", "not usable JSON: Exceeds the limit (4300 digits)"),
        ("generic-json", b'{"metrics": [{"metric": "a", "value": 0.5, "value": 0.9}]}', "key 'value' appears twice in one object"),
        ("generic-json", b'{"metrics": ' + b"[" * 600 + b"]" * 600 + b"}", "nested deeper than 512 levels"),
        ("generic-csv", b"metric,value,n\na,nan,1\n", "value is nan, not a finite number"),
        ("generic-csv", b"metric,value,n\na,1e999,1\n", "value is inf, not a finite number"),
        ("generic-csv", b"metric,value,n\na,0.5," + b"9" * 5000 + b"\n", "CSV line 2: n '" + "9" * 40 + "' is not a number"),
    ],
)
def test_hostile_numbers_are_refused(fmt, data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        read_evidence(fmt, io.BytesIO(data))


@pytest.mark.parametrize("fmt, name", [("generic-json", "generic__pass_rate_0.93.json"), ("generic-csv", "generic__pass_rate_0.75.csv")])
def test_a_byte_order_mark_changes_nothing(fmt, name):
    data = (FIXTURES / name).read_bytes()
    assert read_evidence(fmt, io.BytesIO(b"\xef\xbb\xbf" + data))[0] == parse(fmt, name)


@pytest.mark.parametrize("fmt, name, what", [("generic-json", "generic__pass_rate_0.93.json", "generic metrics JSON"),
                                             ("generic-csv", "generic__pass_rate_0.75.csv", "generic metrics CSV")])
def test_a_file_past_the_cap_is_refused_before_it_is_parsed(monkeypatch, fmt, name, what):
    from promotion_gate.checklists.evidence import generic

    monkeypatch.setattr(generic, "MAX_BYTES", 50)
    with pytest.raises(EvidenceError, match=re.escape(f"{what} is larger than the 0 MiB this format is read whole up to")):
        parse(fmt, name)
