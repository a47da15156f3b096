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
            {"pass_rate": (0.6, 5, 3, 2), "tests": (7, 5, None, None), "skipped": (2, 5, None, None),
             "suite:pytest/pass_rate": (0.6, 5, 3, 2)},
        ),
        (
            "junit__bare_testsuite_pass_rate_0.5.xml",
            {"pass_rate": (0.5, 4, 2, 2), "tests": (4, 4, None, None), "skipped": (0, 4, None, None),
             "suite:eval-suite/pass_rate": (0.5, 4, 2, 2)},
        ),
        (
            "junit__nested_suites.xml",
            {"pass_rate": (4 / 6, 6, 4, 2), "tests": (7, 6, None, None), "skipped": (1, 6, None, None),
             "suite:safety/pass_rate": (1.0, 1, 1, 0), "suite:safety.jailbreak/pass_rate": (2 / 3, 3, 2, 1),
             "suite:quality/pass_rate": (0.5, 2, 1, 1)},
        ),
    ],
)
def test_metrics_per_fixture(name, expected):
    parsed = parse(name)
    assert {k: row(m) for k, m in parsed.metrics.items()} == expected
    assert parsed.format == "junit" and parsed.provenance.tool == "junit"
    assert [(g.provider, g.model, g.raw) for g in parsed.groups] == [(None, None, None)]
    assert parsed.groups[0].metrics == parsed.metrics
    assert parsed.notes == FIXTURE_NOTES.get(name, ())


NESTED_UNDATED = "1 of 3 suite elements holding testcases states no timestamp (nor does a suite around it): the file's date cannot be told"
FIXTURE_NOTES = {"junit__nested_suites.xml": (NESTED_UNDATED,)}


def test_created_at_is_the_suite_timestamp_and_none_where_some_results_are_undated():
    assert parse("junit__pytest_with_xfail.xml").provenance.created_at == datetime(2025, 3, 4, 10, 15, 30, 123456, tzinfo=timezone.utc)
    assert parse("junit__nested_suites.xml").provenance.created_at is None  # "quality" states no timestamp
    assert parse("junit__bare_testsuite_pass_rate_0.5.xml").provenance.created_at is None


@pytest.mark.parametrize(
    "name, reason",
    [
        ("junit__bad__attributes_lie.xml", '<testsuite name="eval-suite"> says tests=10 but holds 4 such testcases'),
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
        (b'<testsuite><testcase name="t"/></testsuite><extra/>', "junk after document element"),
        (b'<?xml version="1.0" encoding="x-unknown"?><testsuite/>', "unknown encoding"),
        (b'<testsuite><testcase name="&undefined;"/></testsuite>', "undefined entity"),
    ],
)
def test_malformed_bytes_are_refused(data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(data)


def test_a_failure_outweighs_a_skip_in_the_same_testcase():
    doc = b'<testsuite><testcase name="a"><skipped/><error/></testcase><testcase name="b"/></testsuite>'
    assert row(parse_bytes(doc).metrics["pass_rate"]) == (0.5, 2, 1, 1)


def test_utf16_files_parse():
    doc = '<?xml version="1.0" encoding="UTF-16"?><testsuite><testcase name="é"/></testsuite>'.encode("utf-16")
    assert row(parse_bytes(doc).metrics["pass_rate"]) == (1.0, 1, 1, 0)


def test_a_bad_timestamp_is_named():
    with pytest.raises(EvidenceError, match="testsuite timestamp 'yesterday' is not an ISO 8601"):
        parse_bytes(b'<testsuite timestamp="yesterday"><testcase name="t"/></testsuite>')


def test_too_many_suites_drop_per_suite_rates_but_keep_totals():
    suites = b"".join(b'<testsuite name="s%d"><testcase name="t"/></testsuite>' % i for i in range(1001))
    metrics = parse_bytes(b"<testsuites>" + suites + b"</testsuites>").metrics
    assert set(metrics) == {"pass_rate", "tests", "skipped"}  # nothing else
    assert row(metrics["pass_rate"]) == (1.0, 1001, 1001, 0)


# --- n counts evaluated tests only; the file's own totals; one tag past the cap ------------------


def cases(passed=0, failed=0, skipped=0, errors=0) -> str:
    out = [f'<testcase classname="c" name="p{i}"/>' for i in range(passed)]
    out += [f'<testcase classname="c" name="f{i}"><failure/></testcase>' for i in range(failed)]
    out += [f'<testcase classname="c" name="e{i}"><error/></testcase>' for i in range(errors)]
    out += [f'<testcase classname="c" name="s{i}"><skipped/></testcase>' for i in range(skipped)]
    return "".join(out)


def test_one_pass_and_199_skipped_is_n_1_for_every_metric():
    doc = f'<testsuite name="s" tests="200" failures="0" errors="0" skipped="199">{cases(passed=1, skipped=199)}</testsuite>'
    metrics = parse_bytes(doc.encode()).metrics
    assert {k: row(m) for k, m in metrics.items()} == {
        "pass_rate": (1.0, 1, 1, 0), "tests": (200, 1, None, None), "skipped": (199, 1, None, None),
        "suite:s/pass_rate": (1.0, 1, 1, 0),
    }
    assert max(m.n for m in metrics.values()) == 1


GOOD_SUITE = cases(passed=3, failed=1, errors=1, skipped=2)  # tests=7 failures=1 errors=1 skipped=2


@pytest.mark.parametrize(
    "doc, reason",
    [
        (f'<testsuite name="s" tests="8">{GOOD_SUITE}</testsuite>', '<testsuite name="s"> says tests=8 but holds 7 such testcases'),
        (f'<testsuite name="s" tests="6">{GOOD_SUITE}</testsuite>', '<testsuite name="s"> says tests=6 but holds 7 such testcases'),
        (f'<testsuite name="s" failures="0">{GOOD_SUITE}</testsuite>', '<testsuite name="s"> says failures=0 but holds 1 such testcases'),
        (f'<testsuite name="s" errors="0">{GOOD_SUITE}</testsuite>', '<testsuite name="s"> says errors=0 but holds 1 such testcases'),
        (f'<testsuite name="s" skipped="0">{GOOD_SUITE}</testsuite>', '<testsuite name="s"> says skipped=0 but holds 2 such testcases'),
        (f'<testsuites tests="99"><testsuite name="s" tests="7">{GOOD_SUITE}</testsuite></testsuites>', "<testsuites> says tests=99 but holds 7 such testcases"),
        (f'<testsuites tests="14"><testsuite name="a" tests="7">{GOOD_SUITE}</testsuite><testsuite name="b" tests="6">{GOOD_SUITE}</testsuite></testsuites>',
         '<testsuite name="b"> says tests=6 but holds 7 such testcases'),
        (f'<testsuite name="outer" tests="8"><testsuite name="inner" tests="7">{GOOD_SUITE}</testsuite></testsuite>',
         '<testsuite name="outer"> says tests=8 but holds 7 such testcases'),
        (f'<testsuite name="s" tests="NaN">{GOOD_SUITE}</testsuite>', "<testsuite name='s'> tests='NaN' is not a whole number of tests"),
        (f'<testsuite name="s" tests="inf">{GOOD_SUITE}</testsuite>', "<testsuite name='s'> tests='inf' is not a whole number of tests"),
        (f'<testsuite name="s" tests="1e999">{GOOD_SUITE}</testsuite>', "<testsuite name='s'> tests='1e999' is not a whole number of tests"),
        (f'<testsuite name="s" tests="7.0">{GOOD_SUITE}</testsuite>', "<testsuite name='s'> tests='7.0' is not a whole number of tests"),
        (f'<testsuite name="s" tests="-1">{GOOD_SUITE}</testsuite>', "<testsuite name='s'> tests='-1' is not a whole number of tests"),
        (f'<testsuite name="s" tests="{"9" * 5000}">{GOOD_SUITE}</testsuite>', "is not a whole number of tests"),
        ('<testsuite name="s"><testcase classname="c" name="t"/><testcase classname="c" name="t"/></testsuite>',
         "a testcase appears twice in suite 's': one result may count once"),
    ],
)
def test_totals_that_disagree_with_the_testcases_are_refused(doc, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(doc.encode())


def test_totals_that_agree_nested_and_at_the_root_are_read():
    doc = (f'<testsuites tests="14" failures="2" errors="2" skipped="4"><testsuite name="a" tests="7" failures="1" errors="1" skipped="2">'
           f'{GOOD_SUITE}</testsuite><testsuite name="b" tests="7">{GOOD_SUITE}</testsuite></testsuites>')
    assert row(parse_bytes(doc.encode()).metrics["pass_rate"]) == (0.6, 10, 6, 4)


def test_the_same_test_name_in_two_suites_is_two_tests():
    doc = '<testsuites><testsuite name="a"><testcase name="t"/></testsuite><testsuite name="b"><testcase name="t"/></testsuite></testsuites>'
    assert row(parse_bytes(doc.encode()).metrics["pass_rate"]) == (1.0, 2, 2, 0)


def test_a_byte_order_mark_changes_nothing():
    data = (FIXTURES / "junit__pytest_with_xfail.xml").read_bytes()
    assert parse_bytes(b"\xef\xbb\xbf" + data) == parse_bytes(data)


def test_a_long_attribute_is_read_and_one_past_the_cap_is_refused(monkeypatch):
    from promotion_gate.checklists.evidence import junit

    doc = b'<testsuite><testcase name="t"><failure message="' + b"x" * 300_000 + b'"/></testcase><testcase name="u"/></testsuite>'
    assert row(parse_bytes(doc).metrics["pass_rate"]) == (0.5, 2, 1, 1)
    monkeypatch.setattr(junit, "MAX_TOKEN_BYTES", 200_000)
    with pytest.raises(EvidenceError, match=re.escape("one XML token (a tag with its attributes) is longer than 0 MiB")):
        parse_bytes(doc)


def test_long_text_is_not_a_long_token(monkeypatch):
    from promotion_gate.checklists.evidence import junit

    monkeypatch.setattr(junit, "MAX_TOKEN_BYTES", 200_000)
    doc = b'<testsuite><testcase name="t"><failure>' + b"traceback line\n" * 100_000 + b"</failure></testcase></testsuite>"
    assert row(parse_bytes(doc).metrics["pass_rate"]) == (0.0, 1, 0, 1)


# --- a testcase counts once: one without a name cannot be told from its copies ------------------

NAMELESS = [
    ("300 copies of a nameless testcase (the review's 300 passes)",
     "<testsuite name=\"s\">" + '<testcase classname="t.test_x"/>' * 300 + "</testsuite>",
     "a <testcase> in suite 's' has no name: JUnit requires one, and a nameless testcase cannot be told from its copies"),
    ("one nameless testcase among named ones",
     '<testsuite name="s"><testcase classname="c" name="a"/><testcase classname="c"><failure/></testcase></testsuite>',
     "a <testcase> in suite 's' has no name"),
    ("an empty name", '<testsuite name="s"><testcase classname="c" name=""/></testsuite>', "a <testcase> in suite 's' has no name"),
    ("a blank name", '<testsuite name="s"><testcase classname="c" name="  "/></testsuite>', "a <testcase> in suite 's' has no name"),
    ("a nameless testcase straight under <testsuites>", '<testsuites><testcase classname="c"/></testsuites>',
     "a <testcase> in suite '' has no name"),
    ("copies told apart only by file and line", "<testsuite name=\"s\">" + "".join(
        f'<testcase classname="c" file="t.py" line="{i}"/>' for i in range(3)) + "</testsuite>", "has no name"),
]


@pytest.mark.parametrize("case, doc, reason", NAMELESS, ids=[n[0] for n in NAMELESS])
def test_a_testcase_without_a_name_is_refused(case, doc, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(doc.encode())


def test_the_same_name_under_two_classnames_is_two_tests():
    doc = '<testsuite name="s"><testcase classname="a" name="t"/><testcase classname="b" name="t"/><testcase name="t"/></testsuite>'
    assert row(parse_bytes(doc.encode()).metrics["pass_rate"]) == (1.0, 3, 3, 0)


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "examples/repo").rglob("*.xml")))
def test_every_example_drill_parses(path):
    assert parse_bytes(path.read_bytes()).metrics["pass_rate"].n >= 1


# --- a test counts once across the file: (suite name, classname, name) ---------------------------


def suite(name: str, body: str, stamp: str | None = None, declare: bool = False) -> str:
    dated = f' timestamp="{stamp}"' if stamp else ""
    if declare:
        n = body.count("<testcase ")
        failed, skipped = body.count("<failure"), body.count("<skipped")
        dated += f' tests="{n}" failures="{failed}" errors="0" skipped="{skipped}"'
    return f'<testsuite name="{name}"{dated}>{body}</testsuite>'


def drill(passed: int, failed: int) -> str:
    body = [f'<testcase classname="drill" name="t{i:03}"><failure message="fallback did not engage"/></testcase>' for i in range(failed)]
    return "".join(body + [f'<testcase classname="drill" name="t{i:03}"/>' for i in range(failed, failed + passed)])


PASSING_80 = "".join(f'<testcase classname="drill" name="t{i:03}"/>' for i in range(20, 100))

REPEATS = [
    ("80 passing cases pasted into ten more suites of the same name (the review's drill: FAIL read as PASS)",
     suite("drill", drill(80, 20), declare=True) + suite("drill", PASSING_80, declare=True) * 10,
     {"pass_rate": (0.8, 100, 80, 20), "tests": (100, 100, None, None), "skipped": (0, 100, None, None),
      "suite:drill/pass_rate": (0.8, 100, 80, 20)}),
    ("a test that passed in one run and failed in another failed",
     suite("s", '<testcase classname="c" name="t"/>') + suite("s", '<testcase classname="c" name="t"><failure/></testcase>'),
     {"pass_rate": (0.0, 1, 0, 1), "tests": (1, 1, None, None), "skipped": (0, 1, None, None), "suite:s/pass_rate": (0.0, 1, 0, 1)}),
    ("a failure seen first is not undone by a later pass",
     suite("s", '<testcase classname="c" name="t"><error/></testcase>') + suite("s", '<testcase classname="c" name="t"/>') * 3,
     {"pass_rate": (0.0, 1, 0, 1), "tests": (1, 1, None, None), "skipped": (0, 1, None, None), "suite:s/pass_rate": (0.0, 1, 0, 1)}),
    ("a test skipped in one run and passed in another passed, once",
     suite("s", '<testcase classname="c" name="t"><skipped/></testcase>') + suite("s", '<testcase classname="c" name="t"/>'),
     {"pass_rate": (1.0, 1, 1, 0), "tests": (1, 1, None, None), "skipped": (0, 1, None, None), "suite:s/pass_rate": (1.0, 1, 1, 0)}),
    ("a test skipped in every run is one skipped test",
     suite("s", '<testcase classname="c" name="t"><skipped/></testcase><testcase classname="c" name="u"/>') * 2,
     {"pass_rate": (1.0, 1, 1, 0), "tests": (2, 1, None, None), "skipped": (1, 1, None, None), "suite:s/pass_rate": (1.0, 1, 1, 0)}),
    ("the same classname and name in suites of other names are other tests",
     suite("a", '<testcase classname="c" name="t"/>') + suite("b", '<testcase classname="c" name="t"><failure/></testcase>'),
     {"pass_rate": (0.5, 2, 1, 1), "tests": (2, 2, None, None), "skipped": (0, 2, None, None),
      "suite:a/pass_rate": (1.0, 1, 1, 0), "suite:b/pass_rate": (0.0, 1, 0, 1)}),
    ("the copies nested one level deeper under a suite of the same innermost name",
     suite("drill", drill(80, 20)) + suite("outer", suite("drill", PASSING_80)),
     {"pass_rate": (0.8, 100, 80, 20), "tests": (100, 100, None, None), "skipped": (0, 100, None, None),
      "suite:drill/pass_rate": (0.8, 100, 80, 20)}),
]


@pytest.mark.parametrize("case, body, expected", REPEATS, ids=[r[0] for r in REPEATS])
def test_a_test_recorded_in_several_suite_elements_counts_once(case, body, expected):
    metrics = parse_bytes(f"<testsuites>{body}</testsuites>".encode()).metrics
    assert {k: row(m) for k, m in metrics.items()} == expected


def test_too_many_distinct_tests_are_refused(monkeypatch):
    from promotion_gate.checklists.evidence import junit

    monkeypatch.setattr(junit, "MAX_TESTS", 3)
    twice = f"<testsuites>{suite('s', cases(passed=3)) * 2}</testsuites>"
    assert row(parse_bytes(twice.encode()).metrics["pass_rate"]) == (1.0, 3, 3, 0)  # repeats are not new tests
    with pytest.raises(EvidenceError, match=re.escape("more than 3 distinct tests (suite, classname, name)")):
        parse_bytes(suite("s", cases(passed=4)).encode())


# --- the file was produced when its oldest results were -------------------------------------------

UTC = timezone.utc
DATES = [
    ("a one-test fresh suite in front of a stale one (the review's stale_fresh: stale read as fresh)",
     suite("smoke", '<testcase name="t0"/>', "2026-11-24T09:00:00+00:00") + suite("drill", cases(passed=200), "2026-08-01T09:30:00+00:00"),
     datetime(2026, 8, 1, 9, 30, tzinfo=UTC), ()),
    ("the stale suite first",
     suite("drill", cases(passed=2), "2026-08-01T09:30:00+00:00") + suite("smoke", '<testcase name="t0"/>', "2026-11-24T09:00:00+00:00"),
     datetime(2026, 8, 1, 9, 30, tzinfo=UTC), ()),
    ("an undated suite beside a dated one: the file's date cannot be told",
     suite("smoke", '<testcase name="t0"/>', "2026-11-24T09:00:00+00:00") + suite("drill", cases(passed=200)),
     None, ("1 of 2 suite elements holding testcases states no timestamp (nor does a suite around it): the file's date cannot be told",)),
    ("suites without their own timestamp inside a dated <testsuites> take its date",
     '<testsuites timestamp="2026-11-01T00:00:00+00:00">' + suite("a", '<testcase name="t"/>') + suite("b", '<testcase name="t"/>') + "</testsuites>",
     datetime(2026, 11, 1, tzinfo=UTC), ()),
    ("a naive timestamp is read as UTC when compared with an offset one",
     suite("a", '<testcase name="t"/>', "2026-11-20T09:00:00") + suite("b", '<testcase name="t"/>', "2026-11-20T10:00:00+02:00"),
     datetime(2026, 11, 20, 8, 0, tzinfo=UTC), ()),
    ("an empty dated suite says nothing about the results",
     suite("old", "", "2020-01-01T00:00:00+00:00") + suite("a", '<testcase name="t"/>', "2026-11-20T09:00:00+00:00"),
     datetime(2026, 11, 20, 9, 0, tzinfo=UTC), ()),
]


@pytest.mark.parametrize("case, body, created, notes", DATES, ids=[d[0] for d in DATES])
def test_the_oldest_suite_timestamp_dates_the_file(case, body, created, notes):
    parsed = parse_bytes(f"<testsuites>{body}</testsuites>".encode())
    assert (parsed.provenance.created_at, parsed.notes) == (created, notes)
