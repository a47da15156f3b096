"""JUnit XML as pytest (``--junitxml``) and most CI tools write it.

``<testsuites>`` or a bare ``<testsuite>`` root, suites nested at any depth, ``<testcase>``
children holding ``<failure>``, ``<error>`` or ``<skipped>`` (pytest writes xfail as
``<skipped type="pytest.xfail">``). Outcomes are counted from the testcases themselves. A
testcase with a failure or an error is failed, else skipped if it has ``<skipped>``, else passed.
Skipped tests are no sample: every metric's n is passed + failed. A testcase without a ``name``
(missing, empty or blank) is refused: JUnit's schema requires the attribute, and a nameless
testcase could not be told from a copy of itself. A testcase named twice in the
same ``<testsuite>`` element (same classname and name) is refused: one run writes each test once.

A test counts once across the file. A test is (innermost suite name, classname, name); the same
test in several suite elements of one name (a merged CI matrix, a re-run, a pasted copy) is one
test: failed if any record failed, else passed if any passed, else skipped (as promptfoo's
``--repeat`` runs are judged). The suites' declared totals still count records. A 16-byte digest
of each distinct test is kept (with the names of the open suite element): under 200 bytes a test,
refused past :data:`MAX_TESTS`.

Date: the file was produced when its oldest results were. Each suite element holding testcases is
dated by its own ``timestamp`` or the nearest enclosing suite's; created_at is the oldest (a naive
time compared as UTC). Where some are dated and some are not, the undated results could be older
than any stated date: created_at is None, with a note.

Self-consistency: wherever a ``<testsuite>`` or ``<testsuites>`` states ``tests``, ``failures``,
``errors`` or ``skipped``, the number must equal the testcases it holds (nested suites included)
with that outcome; a file whose attributes disagree with its testcases is refused. JUnit names
no model: the file is one group with provider and model None.

Streaming: expat is fed the file in chunks and no tree is built. A chunk
is 64 KiB, or as large as the token expat is still holding (its ``CurrentByteIndex`` stops while
one long attribute streams past), so the re-scans of a long token add up to linear time rather
than the quadratic of fixed 64 KiB chunks. One tag over :data:`MAX_TOKEN_BYTES` is refused. Hostile XML is refused before it can expand: any
DOCTYPE (and so any entity declaration, internal or external) is an error, and so is nesting
deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import BinaryIO
from xml.parsers import expat

from promotion_gate.checklists.evidence._common import rate_metric, timestamp
from promotion_gate.checklists.evidence.base import (
    MAX_COUNT, PASS_RATE, EvidenceError, Metric, ModelGroup, ParsedEvidence, Provenance, build_evidence,
)

MAX_DEPTH = 100
MAX_SUITES = 1000
"""Per-suite pass rates are reported only while the file has at most this many suite names."""
MAX_TESTS = 2_000_000
"""A file with more distinct tests than this is refused: a 16-byte digest of each test's identity is
kept to count a test recorded in several suite elements once (under 200 bytes a test)."""
MAX_TOKEN_BYTES = 8 << 20
"""One tag (with its attributes) longer than this is refused: expat 2.5, which this Python bundles,
handles a single attribute in time that grows about fourfold per doubling past a few MB (0.6 s
at 32 MB, 2.4 s at 64 MB even when fed in one call), so a longer tag would make the parse
superlinear in the file. Below the cap the time per byte is flat."""

_CHUNK = 1 << 16
_ROOTS = ("testsuites", "testsuite")
_PASSED, _SKIPPED, _FAILED = 0, 1, 2
_DECLARED = ("tests", "failures", "errors", "skipped")


_FAILURE, _ERROR, _SKIP = 1, 2, 4
_FLAG = {"failure": _FAILURE, "error": _ERROR, "skipped": _SKIP}


class _Suite:
    """An open suite: its name, what it declares, what its testcases (nested ones too) hold, and
    the (classname, name) of its own testcases, so one testcase cannot be counted twice."""

    __slots__ = ("name", "tag", "declared", "held", "cases", "stamp", "own_cases")

    def __init__(self, name: str, tag: str, attrs: dict[str, str], stamp: datetime | None) -> None:
        self.name = name
        self.tag = tag
        self.declared = [(i, key, _declared(attrs, key, tag, name)) for i, key in enumerate(_DECLARED) if key in attrs]
        self.held = [0, 0, 0, 0]  # tests, failures, errors, skipped
        self.cases: set[tuple[str, str]] = set()
        self.stamp = stamp  # its own timestamp, else the nearest enclosing suite's
        self.own_cases = 0

    def check(self) -> None:
        for i, key, said in self.declared:
            if said != self.held[i]:
                named = f' name="{self.name}"' if self.name else ""
                raise EvidenceError(f"<{self.tag}{named}> says {key}={said} but holds {self.held[i]} such testcases")


def _declared(attrs: dict[str, str], key: str, tag: str, name: str) -> int:
    raw = attrs[key].strip()
    try:
        value = int(raw) if len(raw) <= 20 else None
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_COUNT:
        raise EvidenceError(f"<{tag} name={name[:60]!r}> {key}={raw[:40]!r} is not a whole number of tests")
    return value


def _utc(stamp: datetime) -> datetime:
    """For comparing only: a time without an offset is read as UTC, as the freshness check reads it."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def _combined(old: int | None, outcome: int) -> int:
    """A test recorded more than once: failed if any record failed, else passed if any passed, else skipped."""
    if old is None:
        return outcome
    if _FAILED in (old, outcome):
        return _FAILED
    return _PASSED if _PASSED in (old, outcome) else _SKIPPED


class _Reader:
    """expat handlers: counts the outcomes of distinct tests, per innermost suite, as elements stream past."""

    def __init__(self) -> None:
        self.depth = 0
        self.suites: list[_Suite] = []
        self.inner: list[str] = []  # names of the open <testsuite> elements
        self.case_depth = 0  # depth of the open <testcase>, 0 when none
        self.case_key = b""  # digest of the open testcase's (suite name, classname, name)
        self.flags = 0
        self.total = [0, 0, 0]
        self.per_suite: dict[str, list[int]] | None = {}
        self.outcomes: dict[bytes, int] = {}  # each distinct test's outcome over all its records
        self.created: datetime | None = None  # the oldest date of a suite element holding testcases
        self.dated_suites = 0
        self.undated_suites = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise EvidenceError(f"XML is nested deeper than {MAX_DEPTH} elements")
        if self.case_depth:
            if self.depth == self.case_depth + 1:
                self.flags |= _FLAG.get(name, 0)
        elif name == "testcase":
            self.case_depth, self.flags = self.depth, 0
            self._note_case(attrs)
        elif name in _ROOTS:
            self._open_suite(name, attrs)
        elif self.depth == 1:
            raise EvidenceError(f"the root element is <{name}>, not <testsuites> or <testsuite>: not JUnit XML")

    def end(self, name: str) -> None:
        if self.case_depth:
            if self.depth == self.case_depth:
                self._record()
                self.case_depth = 0
        elif name in _ROOTS:
            suite = self.suites.pop()
            suite.check()
            self._date(suite)
            if suite.tag == "testsuite":
                self.inner.pop()
            if self.suites:
                parent = self.suites[-1].held
                for i, held in enumerate(suite.held):
                    parent[i] += held
        self.depth -= 1

    def _open_suite(self, tag: str, attrs: dict[str, str]) -> None:
        stamp = timestamp(attrs["timestamp"], "testsuite timestamp") if attrs.get("timestamp") else None
        if stamp is None and self.suites:
            stamp = self.suites[-1].stamp
        self.suites.append(_Suite(attrs.get("name", ""), tag, attrs, stamp))
        if tag == "testsuite":
            self.inner.append(attrs.get("name", ""))

    def _date(self, suite: _Suite) -> None:
        """The file was produced no later than its oldest results: a suite element holding testcases
        dates them by its own timestamp, else by the nearest enclosing one's."""
        if not suite.own_cases:
            return
        if suite.stamp is None:
            self.undated_suites += 1
            return
        self.dated_suites += 1
        if self.created is None or _utc(suite.stamp) < _utc(self.created):
            self.created = suite.stamp

    def _note_case(self, attrs: dict[str, str]) -> None:
        where = self.inner[-1] if self.inner else ""
        name = attrs.get("name", "")
        if not name.strip():
            raise EvidenceError(
                f"a <testcase> in suite {where!r} has no name: JUnit requires one, and a nameless testcase cannot be told from its copies"
            )
        suite = self.suites[-1]  # a testcase is never the root, so some suite is open
        suite.own_cases += 1
        key = (attrs.get("classname", ""), name)
        if key in suite.cases:
            raise EvidenceError(f"a testcase appears twice in suite {where!r}: one result may count once")
        suite.cases.add(key)
        # lengths first, so no two (suite, classname, name) spell the same string
        spelled = f"{len(where)}:{len(key[0])}:{where}{key[0]}{name}".encode("utf-8", "surrogatepass")
        self.case_key = hashlib.blake2b(spelled, digest_size=16).digest()

    def _record(self) -> None:
        """Count the testcase in its suite's totals (the file's own, which count records) and as a run
        of its test: a test recorded in several suite elements of one name counts once."""
        flags = self.flags
        outcome = _FAILED if flags & (_FAILURE | _ERROR) else _SKIPPED if flags & _SKIP else _PASSED
        if self.suites:
            held = self.suites[-1].held
            held[0] += 1
            held[1] += flags & _FAILURE and 1
            held[2] += flags & _ERROR and 1
            held[3] += flags & _SKIP and 1
        old = self.outcomes.get(self.case_key)
        if old is None and len(self.outcomes) >= MAX_TESTS:
            raise EvidenceError(f"more than {MAX_TESTS} distinct tests (suite, classname, name): too many to count each once")
        new = self.outcomes[self.case_key] = _combined(old, outcome)
        if new == old:
            return
        self._move(self.total, old, new)
        if self.per_suite is None:
            return
        suite = self.inner[-1] if self.inner else ""
        counts = self.per_suite.get(suite)
        if counts is None:
            if len(self.per_suite) >= MAX_SUITES:
                self.per_suite = None  # too many to report each; the totals still stand
                return
            counts = self.per_suite[suite] = [0, 0, 0]
        self._move(counts, old, new)

    @staticmethod
    def _move(counts: list[int], old: int | None, new: int) -> None:
        if old is not None:
            counts[old] -= 1
        counts[new] += 1


def _refuse(what: str):
    def handler(*_args: object) -> None:
        raise EvidenceError(f"the XML has {what}; JUnit files never do, and it is refused (entity expansion)")

    return handler


def _make_parser(reader: _Reader) -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse("a DOCTYPE")
    parser.EntityDeclHandler = _refuse("an entity declaration")
    parser.ExternalEntityRefHandler = _refuse("an external entity")
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    return parser


def _feed(stream: BinaryIO, parser: expat.XMLParserType) -> int:
    """Feed the stream; each chunk is as large as the token expat still holds, at least 64 KiB."""
    size, want = 0, _CHUNK
    try:
        while chunk := stream.read(want):
            size += len(chunk)
            parser.Parse(chunk, False)
            pending = size - max(parser.CurrentByteIndex, 0)
            if pending > MAX_TOKEN_BYTES:
                raise EvidenceError(f"one XML token (a tag with its attributes) is longer than {MAX_TOKEN_BYTES >> 20} MiB")
            want = max(_CHUNK, min(pending, MAX_TOKEN_BYTES + 1 - pending))
        if size:
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code)
        raise EvidenceError(f"not well-formed XML: {reason} at line {exc.lineno}, column {exc.offset + 1}") from None
    return size


def _metrics(reader: _Reader) -> dict[str, Metric]:
    passed, skipped, failed = reader.total
    total = passed + skipped + failed
    if total == 0:
        raise EvidenceError("no <testcase> elements: the file records no tests")
    if passed + failed == 0:
        raise EvidenceError(f"all {total} tests were skipped: no pass or fail outcome")
    evaluated = passed + failed
    out = {
        PASS_RATE: rate_metric(passed, failed),
        "tests": Metric(name="tests", value=total, n=evaluated),
        "skipped": Metric(name="skipped", value=skipped, n=evaluated),
    }
    for suite, (s_passed, _, s_failed) in sorted((reader.per_suite or {}).items()):
        if s_passed + s_failed:
            name = f"suite:{suite}/{PASS_RATE}"
            out[name] = rate_metric(s_passed, s_failed, name)
    return out


def parse(stream: BinaryIO) -> ParsedEvidence:
    reader = _Reader()
    if _feed(stream, _make_parser(reader)) == 0:
        raise EvidenceError("the file is empty")
    metrics = _metrics(reader)
    created = reader.created
    notes: tuple[str, ...] = ()
    if reader.undated_suites and reader.dated_suites:
        created = None  # the undated results may be older than every stated date
        notes = (undated_note(reader.undated_suites, reader.undated_suites + reader.dated_suites),)
    provenance = Provenance(tool="junit", created_at=created)
    return build_evidence("junit", provenance, [ModelGroup(metrics=metrics)], notes)


def undated_note(undated: int, holding: int) -> str:
    verb = "states" if undated == 1 else "state"
    return (f"{undated} of {holding} suite elements holding testcases {verb} no timestamp (nor does a suite around it): "
            "the file's date cannot be told")
