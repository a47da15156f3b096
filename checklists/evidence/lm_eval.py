"""lm-evaluation-harness ``results_<date>.json`` (``lm_eval --output_path``).

Shape (lm_eval/evaluator.py, loggers/evaluation_tracker.py): ``results: {task: {"acc,none": x,
"acc_stderr,none": s, "alias": ...}}``, ``groups`` (same shape, group aggregates),
``n-samples: {task: {original, effective}}``, ``config: {model, model_args}``, ``versions``,
``date`` (Unix time), ``lm_eval_version`` or ``git_hash``, ``model_name``. Files from 0.3 have
no filter suffix (``"acc"``, ``"acc_stderr"``) and no n-samples.

Metric ``<task>/<metric>`` (the ``,none`` filter is dropped; any other filter stays:
``<task>/<metric>,<filter>``), with its stderr and n = effective samples. Accuracy-like metrics
(acc, acc_norm, exact_match) also get passed/failed = round(value * n). A NaN value is an error
that names the metric. The document is read whole (it is small).
"""

from __future__ import annotations

from typing import Any, BinaryIO

from promotion_gate.checklists.evidence._common import accuracy_counts, count, number, read_json, text, timestamp
from promotion_gate.checklists.evidence.base import EvidenceError, Metric, ParsedEvidence, Provenance

ACCURACY_LIKE = frozenset({"acc", "acc_norm", "exact_match"})
MAX_METRICS = 100_000
_STDERR = "_stderr"


def _split(key: str) -> tuple[str, str | None]:
    metric, _, flt = key.partition(",")
    return metric, (flt or None)


def _metric_name(task: str, metric: str, flt: str | None) -> str:
    return f"{task}/{metric}" if flt in (None, "none") else f"{task}/{metric},{flt}"


def _stderr_of(values: dict[str, Any], metric: str, flt: str | None, where: str) -> float | None:
    key = f"{metric}{_STDERR}" + (f",{flt}" if flt else "")
    return number(values.get(key), f"{where} {key}")  # "N/A" is not a number: None


def _task_metrics(task: str, values: Any, n: int | None, out: dict[str, Metric]) -> None:
    if not isinstance(values, dict):
        raise EvidenceError(f"results[{task!r}] is {type(values).__name__}, not an object")
    where = f"results[{task!r}]"
    for key, raw in values.items():
        metric, flt = _split(key)
        if metric.endswith(_STDERR):
            continue
        value = number(raw, f"{where} {key}")
        if value is None:  # alias, names, "N/A"
            continue
        name = _metric_name(task, metric, flt)
        if len(out) >= MAX_METRICS:
            raise EvidenceError(f"more than {MAX_METRICS} metrics in 'results'")
        extra = accuracy_counts(value, n) if metric in ACCURACY_LIKE else {}
        stderr = _stderr_of(values, metric, flt, where)
        out.setdefault(name, Metric(name=name, value=value, n=n, stderr=stderr, **extra))


def _effective_samples(doc: dict[str, Any]) -> dict[str, int]:
    samples = doc.get("n-samples")
    if not isinstance(samples, dict):
        return {}
    out = {}
    for task, counts in samples.items():
        if isinstance(counts, dict) and counts.get("effective") is not None:
            out[task] = count(counts["effective"], f"n-samples[{task!r}].effective")
    return out


def _model(doc: dict[str, Any]) -> str | None:
    if name := text(doc.get("model_name")):
        return name
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    args = config.get("model_args")
    if isinstance(args, str):
        args = dict(part.partition("=")[::2] for part in args.split(",") if "=" in part)
    if isinstance(args, dict):
        for key in ("pretrained", "model", "model_name", "engine"):
            if name := text(args.get(key)):
                return name
    return text(config.get("model"))


def parse(stream: BinaryIO) -> ParsedEvidence:
    doc = read_json(stream, "lm-eval results", allow_nan=True)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise EvidenceError("no 'results' object of tasks: not an lm-evaluation-harness results file")
    samples = _effective_samples(doc)
    metrics: dict[str, Metric] = {}
    groups = doc.get("groups") if isinstance(doc.get("groups"), dict) else {}
    for task, values in [*doc["results"].items(), *groups.items()]:
        _task_metrics(task, values, samples.get(task), metrics)
    if not metrics:
        raise EvidenceError("no numeric metric in 'results': the run recorded no scores")
    provenance = Provenance(
        tool="lm-evaluation-harness",
        tool_version=text(doc.get("lm_eval_version")) or text(doc.get("git_hash")),
        model=_model(doc),
        dataset=",".join(sorted(doc["results"])) or None,
        created_at=timestamp(doc.get("date"), "date"),
    )
    return ParsedEvidence(format="lm-eval", metrics=metrics, provenance=provenance)
