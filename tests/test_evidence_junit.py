"""JUnit XML parser: outcomes counted from testcases, hostile XML refused.

Fixture shapes: pytest's own writer (src/_pytest/junitxml.py: <testsuites name="pytest tests">,
<testsuite name="pytest" errors failures skipped tests time timestamp hostname>, <testcase
classname name time>, <failure message>, <error message>, <skipped type="pytest.xfail">); the bare
<testsuite> root and nested suites many CI tools write; billion-laughs and XXE payloads.
"""

import io
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from promotion_gate.checklists.evidence import read_evidence
from promotion_gate.checklists.evidence.base import EvidenceError

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"


def parse(name: str):
    with (FIXTURES / name).open("rb") as f:
        return read_evidence("junit", f)[0]


def parse_bytes(data: bytes):
    return read_evidence("junit", io.BytesIO(data))[0]


def row(m):
    return (m.value, m.n, m.passed, m.failed)


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "junit__pytest_with_xfail.xml",
            {"pass_rate": (0.6, 5, 3, 2), "tests": (7, 7, None, None), "skipped": (2, 7, None, None),
             "suite:pytest/pass_rate": (0.6, 5, 3, 2)},
        ),
        (
            "junit__bare_testsuite_attributes_lie.xml",
            {"pass_rate": (0.5, 4, 2, 2), "tests": (4, 4, None, None), "skipped": (0, 4, None, None),
             "suite:eval-suite/pass_rate": (0.5, 4, 2, 2)},
        ),
        (
            "junit__nested_suites.xml",
            {"pass_rate": (4 / 6, 6, 4, 2), "tests": (7, 7, None, None), "skipped": (1, 7, None, None),
             "suite:safety/pass_rate": (1.0, 1, 1, 0), "suite:safety.jailbreak/pass_rate": (2 / 3, 3, 2, 1),
             "suite:quality/pass_rate": (0.5, 2, 1, 1)},
        ),
    ],
)
def test_metrics_per_fixture(name, expected):
    parsed = parse(name)
    assert {k: row(m) for k, m in parsed.metrics.items()} == expected
    assert parsed.format == "junit" and parsed.provenance.tool == "junit"


def test_created_at_is_the_first_suite_timestamp():
    assert parse("junit__pytest_with_xfail.xml").provenance.created_at == datetime(2025, 3, 4, 10, 15, 30, 123456, tzinfo=timezone.utc)
    assert parse("junit__nested_suites.xml").provenance.created_at == datetime(2025, 3, 1, 8, 0)
    assert parse("junit__bare_testsuite_attributes_lie.xml").provenance.created_at is None


@pytest.mark.parametrize(
    "name, reason",
    [
        ("junit__bad__billion_laughs.xml", "DOCTYPE"),
        ("junit__bad__external_entity.xml", "DOCTYPE"),
        ("junit__bad__truncated.xml", "not well-formed XML: unclosed token at line 1"),
        ("junit__bad__html_not_junit.xml", "root element is <html>"),
        ("junit__bad__all_skipped.xml", "all 2 tests were skipped"),
        ("junit__bad__no_testcases.xml", "no <testcase> elements"),
        ("promptfoo__v3_pass_rate_0.75.json", "not well-formed XML: not well-formed (invalid token) at line 1, column 1"),
    ],
)
def test_bad_files_are_refused_with_the_reason(name, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse(name)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "the file is empty"),
        (b"<testsuite>" * 200 + b"</testsuite>" * 200, "nested deeper than 100"),
        (b'<testsuite><testcase name="\xff"/></testsuite>', "not well-formed XML: not well-formed (invalid token) at line 1, column 28"),
        (b'<testsuite><testcase/></testsuite><extra/>', "junk after document element"),
        (b'<?xml version="1.0" encoding="x-unknown"?><testsuite/>', "unknown encoding"),
        (b'<testsuite><testcase name="&undefined;"/></testsuite>', "undefined entity"),
    ],
)
def test_malformed_bytes_are_refused(data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(data)


def test_a_failure_outweighs_a_skip_in_the_same_testcase():
    doc = b'<testsuite><testcase><skipped/><error/></testcase><testcase/></testsuite>'
    assert row(parse_bytes(doc).metrics["pass_rate"]) == (0.5, 2, 1, 1)


def test_utf16_files_parse():
    doc = '<?xml version="1.0" encoding="UTF-16"?><testsuite><testcase name="é"/></testsuite>'.encode("utf-16")
    assert row(parse_bytes(doc).metrics["pass_rate"]) == (1.0, 1, 1, 0)


def test_a_bad_timestamp_is_named():
    with pytest.raises(EvidenceError, match="testsuite timestamp 'yesterday' is not an ISO 8601"):
        parse_bytes(b'<testsuite timestamp="yesterday"><testcase/></testsuite>')


def test_too_many_suites_drop_per_suite_rates_but_keep_totals():
    suites = b"".join(b'<testsuite name="s%d"><testcase/></testsuite>' % i for i in range(1001))
    metrics = parse_bytes(b"<testsuites>" + suites + b"</testsuites>").metrics
    assert set(metrics) == {"pass_rate", "tests", "skipped"}
    assert row(metrics["pass_rate"]) == (1.0, 1001, 1001, 0)
