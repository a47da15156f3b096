"""JUnit XML as pytest (``--junitxml``) and most CI tools write it.

``<testsuites>`` or a bare ``<testsuite>`` root, suites nested at any depth, ``<testcase>``
children holding ``<failure>``, ``<error>`` or ``<skipped>`` (pytest writes xfail as
``<skipped type="pytest.xfail">``). Outcomes are counted from the testcases themselves; the
``tests``/``failures`` attributes are not trusted. A testcase with a failure or an error is
failed, else skipped if it has ``<skipped>``, else passed.

Streaming: expat is fed 64 KiB at a time and no tree is built, so memory stays flat whatever the
file size (one tag with its attributes is the largest thing held). Hostile XML is refused before
it can expand: any DOCTYPE (and so any entity declaration, internal or external) is an error,
and so is nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

from datetime import datetime
from typing import BinaryIO
from xml.parsers import expat

from promotion_gate.checklists.evidence._common import rate_metric, timestamp
from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError, Metric, ParsedEvidence, Provenance

MAX_DEPTH = 100
MAX_SUITES = 1000
"""Per-suite pass rates are reported only while the file has at most this many suite names."""

_CHUNK = 1 << 16
_ROOTS = ("testsuites", "testsuite")
_PASSED, _SKIPPED, _FAILED = 0, 1, 2


class _Outcomes:
    """passed / skipped / failed counts."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0, 0, 0]


class _Reader:
    """expat handlers: counts testcase outcomes, per innermost suite, as elements stream past."""

    def __init__(self) -> None:
        self.depth = 0
        self.suites: list[str] = []
        self.case_depth = 0  # depth of the open <testcase>, 0 when none
        self.outcome = _PASSED
        self.total = _Outcomes()
        self.per_suite: dict[str, _Outcomes] | None = {}
        self.created: datetime | None = None

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise EvidenceError(f"XML is nested deeper than {MAX_DEPTH} elements")
        if self.depth == 1 and name not in _ROOTS:
            raise EvidenceError(f"the root element is <{name}>, not <testsuites> or <testsuite>: not JUnit XML")
        if name == "testsuite":
            self._open_suite(attrs)
        elif name == "testcase" and not self.case_depth:
            self.case_depth, self.outcome = self.depth, _PASSED
        elif self.case_depth and self.depth == self.case_depth + 1:
            if name in ("failure", "error"):
                self.outcome = _FAILED
            elif name == "skipped":
                self.outcome = max(self.outcome, _SKIPPED)

    def end(self, name: str) -> None:
        if name == "testcase" and self.depth == self.case_depth:
            self._record()
            self.case_depth = 0
        elif name == "testsuite":
            self.suites.pop()
        self.depth -= 1

    def _open_suite(self, attrs: dict[str, str]) -> None:
        self.suites.append(attrs.get("name", ""))
        if self.created is None and attrs.get("timestamp"):
            self.created = timestamp(attrs["timestamp"], "testsuite timestamp")

    def _record(self) -> None:
        self.total.counts[self.outcome] += 1
        if self.per_suite is None:
            return
        suite = self.suites[-1] if self.suites else ""
        if suite not in self.per_suite and len(self.per_suite) >= MAX_SUITES:
            self.per_suite = None  # too many to report each; the totals still stand
            return
        self.per_suite.setdefault(suite, _Outcomes()).counts[self.outcome] += 1


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
    size = 0
    try:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            parser.Parse(chunk, False)
        if size:
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code)
        raise EvidenceError(f"not well-formed XML: {reason} at line {exc.lineno}, column {exc.offset + 1}") from None
    return size


def _metrics(reader: _Reader) -> dict[str, Metric]:
    passed, skipped, failed = reader.total.counts
    total = passed + skipped + failed
    if total == 0:
        raise EvidenceError("no <testcase> elements: the file records no tests")
    if passed + failed == 0:
        raise EvidenceError(f"all {total} tests were skipped: no pass or fail outcome")
    out = {
        PASS_RATE: rate_metric(passed, failed),
        "tests": Metric(name="tests", value=total, n=total),
        "skipped": Metric(name="skipped", value=skipped, n=total),
    }
    for suite, outcomes in sorted((reader.per_suite or {}).items()):
        s_passed, _, s_failed = outcomes.counts
        if s_passed + s_failed:
            name = f"suite:{suite}/{PASS_RATE}"
            out[name] = rate_metric(s_passed, s_failed, name)
    return out


def parse(stream: BinaryIO) -> ParsedEvidence:
    reader = _Reader()
    if _feed(stream, _make_parser(reader)) == 0:
        raise EvidenceError("the file is empty")
    provenance = Provenance(tool="junit", created_at=reader.created)
    return ParsedEvidence(format="junit", metrics=_metrics(reader), provenance=provenance)
