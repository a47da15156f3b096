"""OpenAI Evals: the JSONL record log ``oaieval`` writes (evals/record.py ``LocalRecorder``).

Line 1 is ``{"spec": RunSpec}`` (evals/base.py: completion_fns or model_name, eval_name,
base_eval, split, run_config, created_by, run_id, created_at = str(utcnow())). Then event lines
``{run_id, event_id, sample_id, type, data, created_by, created_at}`` with type match (data.correct
is a bool), sampling, metrics, error, ...; and ``{"final_report": {...}}``, which may come before
the last events (events are flushed at exit).

Metrics: ``pass_rate`` from the match events, and every finite number in the final report under
its own key (a final-report key named pass_rate is left to the computed one). Read one line at a
time.
"""

from __future__ import annotations

from datetime import timezone
from typing import Any, BinaryIO

from promotion_gate.checklists.evidence._common import iter_json_lines, number, rate_metric, text, timestamp
from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError, Metric, ParsedEvidence, Provenance


def _provenance(spec: Any) -> Provenance:
    if not isinstance(spec, dict):
        raise EvidenceError("line 1: 'spec' is not an object")
    fns = spec.get("completion_fns")
    names = spec.get("model_names") if isinstance(spec.get("model_names"), dict) else {}
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


def parse(stream: BinaryIO) -> ParsedEvidence:
    lines = iter_json_lines(stream, "oaieval log", allow_nan=True)
    first = next(lines, None)
    if first is None:
        raise EvidenceError("the file is empty")
    if not isinstance(first[1], dict) or "spec" not in first[1]:
        raise EvidenceError(f"line {first[0]} is not the run spec: not an oaieval record log")
    provenance = _provenance(first[1]["spec"])
    passed = failed = 0
    report: dict[str, Metric] = {}
    for lineno, record in lines:
        if not isinstance(record, dict):
            raise EvidenceError(f"line {lineno} is not an object")
        if "final_report" in record:
            report.update(_report_metrics(record["final_report"], lineno))
        elif record.get("type") == "match":
            if _match(record, lineno):
                passed += 1
            else:
                failed += 1
        elif "type" not in record:
            raise EvidenceError(f"line {lineno} is neither an event nor the final report")
    if passed + failed == 0 and not report:
        raise EvidenceError("no match events and no final report: the run recorded no results")
    metrics = {PASS_RATE: rate_metric(passed, failed)} if passed + failed else {}
    metrics.update(report)
    return ParsedEvidence(format="openai-evals", metrics=metrics, provenance=provenance)
