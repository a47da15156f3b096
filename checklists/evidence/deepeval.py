"""deepeval test runs: the JSON ``deepeval test run`` saves (``TestRun.save``).

Shape (deepeval/test_run/test_run.py, test_run/api.py): ``{testFile, testCases: [{name, input,
actualOutput, success, metricsData: [{name, threshold, success, score, reason,
evaluationModel, error}], runDuration, ...}], conversationalTestCases: [...], metricsScores,
testPassed, testFailed, runDuration, evaluationCost, hyperparameters, datasetAlias}``.
``.deepeval/.latest_test_run.json`` wraps it as ``{testRunData: {...}, testRunLink}``.
Older runs name the list ``metricsMetadata`` and each entry ``metric`` instead of ``name``.

Metrics: ``pass_rate`` over test cases (a case whose ``success`` is null or missing and that holds
no metric data was not evaluated and is left out, as deepeval does); per metric name ``<name>`` = the mean score (n = scores averaged)
and ``<name>/pass_rate`` = its passed / (passed + failed), where a run of the metric that errored
(no score or no success) counts as failed. The counts sit on their own rate, not on the mean,
so that wherever passed/failed are set, value = passed / (passed + failed), as checks assume.
A metric that errored every time has no mean (0 would read as best for toxicity).

Provenance model is ``hyperparameters.model`` (``log_hyperparameters(model=...)``): the system
under test. ``evaluationModel`` is the judge, not the model being promoted, so it is not used.
Self-consistency: ``testPassed`` and ``testFailed``, where the file states them, must equal the
test cases whose ``success`` is true and false. deepeval marks a case successful only when every
one of its metrics succeeded (an errored metric has success false), so a case with ``success:
true`` and a metric whose ``success`` is not true, or that carries an ``error``, contradicts
itself and the file is refused. So is a case with metric data whose ``success`` is null or
missing: deepeval's ``update_metric_data`` sets a case's success from its first metric (and false
on any failed one after), so a null survives only on a case with no metrics; dropping such a case
would take its failed metrics out of pass_rate (60 passes + 40 nulls read as 1.0 over 60), and
counting it by its metrics would guess what the file left out. The opposite disagreement (a failed case whose metrics all
passed) only lowers the pass rate, and the case stays failed. n of every metric is the number of test cases
(or metric runs) behind it. One model per run (``hyperparameters.model``; provider None: the
name alone does not say it).

A test case counts once: a case whose :data:`IDENTITY` fields (what was asked and answered, never
how the run went) equal an earlier counted case's is refused, naming both, so copies of passing
cases cannot raise pass_rate. Cases left out (no success, no metric data) are not keyed.

The document is read whole, refused past :data:`MAX_BYTES` before it is parsed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, BinaryIO

from promotion_gate.checklists.evidence._common import Mean, count, json_object, number, rate_metric, read_json, text
from promotion_gate.checklists.evidence._models import plain_group
from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError, Metric, ParsedEvidence, Provenance, build_evidence

MAX_METRIC_NAMES = 1000
MAX_BYTES = 64 << 20

IDENTITY = {
    "testCases": ("name", "input", "actualOutput", "expectedOutput", "context", "retrievalContext", "toolsCalled", "expectedTools",
                  "multimodalInput", "multimodalActualOutput", "multimodalExpectedOutput", "multimodalContext", "multimodalRetrievalContext"),
    "conversationalTestCases": ("name", "turns", "scenario", "expectedOutcome", "userDescription", "context"),
}
"""What a test case is (deepeval/test_run/api.py ``LLMApiTestCase``, ``ConversationalApiTestCase``): what
was asked and answered, never how the run went (``success``, ``metricsData``, ``runDuration``,
``evaluationCost``, ``order``, ``trace``), so a pasted copy is the same case whatever it says it scored."""


class _MetricTally:
    __slots__ = ("mean", "passed", "failed")

    def __init__(self) -> None:
        self.mean = Mean()
        self.passed = 0
        self.failed = 0

    def metrics(self, name: str) -> dict[str, Metric]:
        out = {f"{name}/{PASS_RATE}": rate_metric(self.passed, self.failed, f"{name}/{PASS_RATE}")}
        if self.mean.n:  # a metric that errored every time has no score (0 would read as best for toxicity)
            out[name] = self.mean.metric(name)
        return out


def _cases(run: dict[str, Any]) -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for key in ("testCases", "conversationalTestCases"):
        value = run.get(key, [])
        if not isinstance(value, list):
            raise EvidenceError(f"{key} is {type(value).__name__}, not a list")
        cases.extend((key, case) for case in value)
    return cases


def _identity(kind: str, case: dict[str, Any]) -> bytes:
    """A digest of the case's identity fields, in canonical JSON (keys sorted at every level)."""
    fields = {key: case.get(key) for key in IDENTITY[kind]}
    canonical = json.dumps([kind, fields], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _refuse_repeat(case: dict[str, Any], i: int, first: int) -> None:
    name = text(case.get("name"))
    where = f"test case {i}" + (f" ({name})" if name else "")
    raise EvidenceError(
        f"{where} repeats test case {first}: the same test case (name, input and output) may count once, "
        "and this file records it twice"
    )


def _add_metric_data(entry: Any, where: str, tallies: dict[str, _MetricTally]) -> None:
    if not isinstance(entry, dict):
        raise EvidenceError(f"{where} is not an object")
    name = text(entry.get("name")) or text(entry.get("metric"))
    if name is None:
        raise EvidenceError(f"{where} has no metric name")
    if name == PASS_RATE:
        raise EvidenceError(f"{where}: a metric may not be named {PASS_RATE!r}")
    if name not in tallies and len(tallies) >= MAX_METRIC_NAMES:
        raise EvidenceError(f"more than {MAX_METRIC_NAMES} distinct metric names")
    tally = tallies.setdefault(name, _MetricTally())
    score = number(entry.get("score"), f"{where} ({name}) score")
    success = entry.get("success")
    if score is not None:
        tally.mean.add(score)
    if score is not None and success is True:
        tally.passed += 1
    else:
        tally.failed += 1


def _tally(cases: list[tuple[str, Any]]) -> tuple[int, int, dict[str, _MetricTally]]:
    passed = failed = 0
    tallies: dict[str, _MetricTally] = {}
    seen: dict[bytes, int] = {}  # identity of each counted case -> its place
    for i, (kind, case) in enumerate(cases, 1):
        if not isinstance(case, dict):
            raise EvidenceError(f"test case {i} is not an object")
        success = case.get("success")
        if success is True:
            passed += 1
        elif success is False:
            failed += 1
        elif success is not None:
            raise EvidenceError(f"test case {i}: 'success' is {success!r}, not true, false or null")
        data = case.get("metricsData", case.get("metricsMetadata"))
        data = [] if data is None else data
        if not isinstance(data, list):
            raise EvidenceError(f"test case {i}: metricsData is not a list")
        if success is None and data:
            _refuse_unjudged(case, data, i)
        if success is not None or data:  # a case left out (no success, no metrics) counts nowhere
            ident = _identity(kind, case)
            if ident in seen:
                _refuse_repeat(case, i, seen[ident])
            seen[ident] = i
        for j, entry in enumerate(data, 1):
            _add_metric_data(entry, f"test case {i} metric {j}", tallies)
        if success is True:
            _check_success(case, data, i)
    return passed, failed, tallies


def _refuse_unjudged(case: dict[str, Any], data: list[Any], i: int) -> None:
    """A case with metric data but no success: deepeval sets success from the first metric it adds, so none writes it."""
    name = text(case.get("name"))
    where = f"test case {i}" + (f" ({name})" if name else "")
    plural = "" if len(data) == 1 else "s"
    raise EvidenceError(
        f"{where}: success is None but the case has {len(data)} scored metric{plural}: a case with metric data was "
        "evaluated, and leaving it out of pass_rate would drop its result"
    )


def _check_success(case: dict[str, Any], data: list[Any], i: int) -> None:
    """A case marked successful whose metrics did not all succeed contradicts itself: refused."""
    name = text(case.get("name"))
    where = f"test case {i}" + (f" ({name})" if name else "")
    for j, entry in enumerate(data, 1):
        metric = text(entry.get("name")) or text(entry.get("metric"))
        if entry.get("success") is not True:
            raise EvidenceError(
                f"{where}: success is true but metric {j} ({metric}) has success {entry.get('success')!r}: "
                "a case passes only when every metric does"
            )
        if entry.get("error") not in (None, ""):
            raise EvidenceError(f"{where}: success is true but metric {j} ({metric}) errored: {str(entry['error'])[:120]!r}")


def _check_totals(run: dict[str, Any], passed: int, failed: int) -> None:
    for key, held in (("testPassed", passed), ("testFailed", failed)):
        said = count(run.get(key), key)
        if said is not None and said != held:
            raise EvidenceError(f"{key} is {said} but the test cases hold {held}")


def parse(stream: BinaryIO) -> ParsedEvidence:
    doc = read_json(stream, "deepeval test run", cap=MAX_BYTES, allow_nan=True)
    run = doc.get("testRunData", doc) if isinstance(doc, dict) else None
    if not isinstance(run, dict) or not ("testCases" in run or "conversationalTestCases" in run):
        raise EvidenceError("no testCases: not a deepeval test run file")
    cases = _cases(run)
    if not cases:
        raise EvidenceError("the test run has no test cases")
    passed, failed, tallies = _tally(cases)
    _check_totals(run, passed, failed)
    metrics = {PASS_RATE: rate_metric(passed, failed)} if passed + failed else {}
    for name, tally in sorted(tallies.items()):
        metrics.update(tally.metrics(name))
    if not metrics:
        raise EvidenceError("no test case was evaluated: no success value and no metric data")
    hyper = json_object(run.get("hyperparameters"))
    provenance = Provenance(tool="deepeval", model=text(hyper.get("model")), dataset=text(run.get("datasetAlias")))
    return build_evidence("deepeval", provenance, [plain_group(provenance.model, metrics)])
