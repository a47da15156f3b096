"""OpenAI Evals: the JSONL record log ``oaieval`` writes (evals/record.py ``LocalRecorder``).

Line 1 is ``{"spec": RunSpec}`` (evals/base.py: completion_fns or model_name, eval_name,
base_eval, split, run_config, created_by, run_id, created_at = str(utcnow())). Then event lines
``{run_id, event_id, sample_id, type, data, created_by, created_at}`` with type match (data.correct
is a bool), sampling, metrics, error, ...; and ``{"final_report": {...}}``, which may come before
the last events (events are flushed at exit).

Metrics: ``pass_rate`` from the match events (n = unique samples: a sample with two match events
is refused, and so is a match event without a ``sample_id``, null, empty or not a scalar: oaieval's
``record_match`` always records under the current sample, and an unkeyed event could be pasted any
number of times), and every finite number in the final report under its own key (a final-report key
named pass_rate is left to the computed one). Final-report numbers have no per-sample records of
their own (n None), except ``accuracy`` when match events back it.

Self-consistency: every event (a line with a ``type``) carries the spec's ``run_id``, which
LocalRecorder stamps on each; an event of another run (or none) is refused, naming its run id (a
spec without a run_id: every event must carry the first event's). A run that finished wrote a
final report, so a log without one is refused (the run did not finish, or the file was cut). Where
the report states ``accuracy`` and the log holds match events, the two must agree; that also
catches a log cut at a line boundary after the report. A report without an accuracy declares no total: the record says so. The log names its
completion functions, not the provider behind them: one group, provider None. Read one line at
a time.
"""

from __future__ import annotations

from datetime import timezone
from typing import Any, BinaryIO

from promotion_gate.checklists.evidence._common import iter_json_lines, json_object, number, rate, rate_metric, text, timestamp
from promotion_gate.checklists.evidence._models import plain_group
from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError, Metric, ParsedEvidence, Provenance, build_evidence

NO_TOTAL_NOTE = "oaieval final_report states no accuracy: match events lost at a line boundary cannot be detected"
MAX_SAMPLE_IDS = 10_000_000


def _provenance(spec: Any) -> Provenance:
    if not isinstance(spec, dict):
        raise EvidenceError("line 1: 'spec' is not an object")
    fns = spec.get("completion_fns")
    names = json_object(spec.get("model_names"))
    models = fns if isinstance(fns, list) else names.get("completions")
    model = ",".join(m for m in models if isinstance(m, str)) if isinstance(models, list) else None
    created = timestamp(spec.get("created_at"), "spec.created_at")
    if created is not None and created.tzinfo is None:  # written from datetime.utcnow()
        created = created.replace(tzinfo=timezone.utc)
    return Provenance(
        tool="openai-evals",
        model=model or text(spec.get("model_name")),
        dataset=text(spec.get("eval_name")) or text(spec.get("base_eval")),
        created_at=created,
    )


def _report_metrics(report: Any, lineno: int) -> dict[str, Metric]:
    if not isinstance(report, dict):
        raise EvidenceError(f"line {lineno}: final_report is not an object")
    out = {}
    for key, raw in report.items():
        value = number(raw, f"final_report {key}")
        if value is not None and key != PASS_RATE:
            out[key] = Metric(name=key, value=value)
    return out


def _match(event: dict[str, Any], lineno: int) -> bool:
    data = event.get("data")
    correct = data.get("correct") if isinstance(data, dict) else None
    if not isinstance(correct, bool):
        raise EvidenceError(f"line {lineno}: match event without a true/false data.correct")
    return correct


class _Run:
    """The run every event must belong to: the spec's ``run_id`` (oaieval's recorder stamps it on
    every event), else the first event's. An event of another run is another run's result."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.run_id: Any = spec.get("run_id")
        self.source = "the spec's run_id" if "run_id" in spec else None

    def check(self, event: dict[str, Any], lineno: int) -> None:
        run_id = event.get("run_id")
        if self.source is None:
            self.run_id, self.source = run_id, "the first event's run_id"
        elif run_id != self.run_id:
            shown = str(run_id)[:80] if isinstance(run_id, str) else run_id
            raise EvidenceError(
                f"line {lineno}: event {str(event.get('event_id'))[:40]} belongs to run {shown!r}, not this log's run "
                f"{str(self.run_id)[:80]!r} ({self.source})"
            )


class _Matches:
    """Match events, one per unique sample id."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.samples: set[str] = set()

    def add(self, event: dict[str, Any], lineno: int) -> None:
        sample = event.get("sample_id")
        if isinstance(sample, (bool, dict, list)) or sample is None or (isinstance(sample, str) and not sample.strip()):
            raise EvidenceError(
                f"line {lineno}: match event {str(event.get('event_id'))[:40]} has no sample_id: oaieval records every match "
                "under its sample, and one without cannot be told from a copy"
            )
        key = str(sample)
        if key in self.samples:
            raise EvidenceError(f"line {lineno}: sample {key[:80]!r} has a second match event; a sample counts once")
        if len(self.samples) >= MAX_SAMPLE_IDS:
            raise EvidenceError(f"more than {MAX_SAMPLE_IDS} samples")
        self.samples.add(key)
        if _match(event, lineno):
            self.passed += 1
        else:
            self.failed += 1

    @property
    def n(self) -> int:
        return self.passed + self.failed


def _checked_accuracy(report: dict[str, Metric], matches: _Matches) -> dict[str, Metric]:
    """The report's accuracy, in [0, 1], equal to the match events' rate where there are events."""
    accuracy = report.get("accuracy")
    if accuracy is None:
        return report
    rate(accuracy.value, "final_report accuracy")
    if not matches.n:
        return report
    computed = matches.passed / matches.n
    if abs(accuracy.value - computed) > 1e-9:
        raise EvidenceError(
            f"final_report accuracy is {accuracy.value!r} but the match events give {matches.passed}/{matches.n} = {computed:.6g}"
        )
    return {**report, "accuracy": accuracy.model_copy(update={"n": matches.n, "passed": matches.passed, "failed": matches.failed})}


def parse(stream: BinaryIO) -> ParsedEvidence:
    lines = iter_json_lines(stream, "oaieval log", allow_nan=True)
    first = next(lines, None)
    if first is None:
        raise EvidenceError("the file is empty")
    if not isinstance(first[1], dict) or "spec" not in first[1]:
        raise EvidenceError(f"line {first[0]} is not the run spec: not an oaieval record log")
    provenance = _provenance(first[1]["spec"])
    run = _Run(first[1]["spec"])
    matches = _Matches()
    report: dict[str, Metric] | None = None
    for lineno, record in lines:
        if not isinstance(record, dict):
            raise EvidenceError(f"line {lineno} is not an object")
        if "type" in record:
            run.check(record, lineno)
        if "final_report" in record:
            if report is not None:
                raise EvidenceError(f"line {lineno}: a second final_report")
            report = _report_metrics(record["final_report"], lineno)
        elif record.get("type") == "match":
            matches.add(record, lineno)
        elif "type" not in record:
            raise EvidenceError(f"line {lineno} is neither an event nor the final report")
    if report is None:
        raise EvidenceError("no final_report: the run did not finish, or the file was cut")
    report = _checked_accuracy(report, matches)
    if not matches.n and not report:
        raise EvidenceError("no match events and no number in the final report: the run recorded no results")
    metrics = {PASS_RATE: rate_metric(matches.passed, matches.failed)} if matches.n else {}
    metrics.update(report)
    notes = () if "accuracy" in report else (NO_TOTAL_NOTE,)
    return build_evidence("openai-evals", provenance, [plain_group(provenance.model, metrics)], notes)
