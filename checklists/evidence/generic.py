"""A generic metrics file, for tools without a parser of their own. Strict: unknown keys or
columns are errors that name them.

JSON::

    {"metrics": [{"metric": "accuracy", "value": 0.93, "n": 200, "passed": 186, "failed": 14}],
     "model": "...", "dataset": "...", "tool": "...", "tool_version": "...", "created_at": "..."}

CSV: a header ``metric,value,n`` with optional ``passed``, ``failed`` and ``stderr`` columns.

Each metric needs a finite ``value``; ``n``, ``passed``, ``failed`` are whole numbers. Where a
metric gives passed and failed (it must give both or neither; ``pass_rate`` must give both), its
value must be passed / (passed + failed) to three decimals and its n, if given, passed + failed.
Names are unique, and there are at most :data:`MAX_METRICS`. A metric named as a rate
(pass_rate, accuracy, acc, acc_norm, exact_match) must lie in [0, 1]. ``higher_is_better``
(JSON only) states the metric's direction. n is whatever the file says: a generic file is a
summary, so its counts are the writer's word (the record carries a note saying so). The file
names at most one model (``model``; provider None, as a bare name does not say it). The file is
read whole, refused past :data:`MAX_BYTES` before it is parsed.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any, BinaryIO

from promotion_gate.checklists.evidence._common import count, decode_utf8, is_rate_name, number, rate, read_capped, read_json, text, timestamp
from promotion_gate.checklists.evidence._models import plain_group
from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError, Metric, ParsedEvidence, Provenance, build_evidence

TOP_KEYS = frozenset({"metrics", "model", "dataset", "tool", "tool_version", "created_at"})
METRIC_KEYS = frozenset({"metric", "value", "n", "passed", "failed", "stderr", "higher_is_better"})
CSV_COLUMNS = METRIC_KEYS - {"higher_is_better"}
MAX_BYTES = 16 << 20
SUMMARY_NOTE = "generic metrics file: sample counts are the file's own statement, with no per-sample records to check them against"
CSV_NOTE = "csv format declares no total: truncation at a line boundary cannot be detected"
REQUIRED_COLUMNS = ("metric", "value", "n")
ROUNDING = 5e-4
MAX_METRICS = 10_000
"""Each metric is kept and shown; a file with more is not a summary of an evaluation."""


def _unknown(keys: Any, allowed: frozenset[str], where: str, noun: str = "key") -> None:
    extra = sorted(set(keys) - allowed)
    if extra:
        named = ", ".join(map(repr, extra))
        plural = "" if len(extra) == 1 else "s"
        raise EvidenceError(f"{where}: unknown {noun}{plural} {named}; allowed: {', '.join(sorted(allowed))}")


def _check_counts(m: Metric, where: str) -> None:
    """Where passed and failed are given, value is passed / (passed + failed) (to 3 decimals)."""
    if m.passed is None or m.failed is None:
        if m.name == PASS_RATE or m.passed is not None or m.failed is not None:
            raise EvidenceError(f"{where} ({m.name}): give both passed and failed, or neither (pass_rate needs both)")
        return
    total = m.passed + m.failed
    if total == 0 or not math.isclose(m.value, m.passed / total, abs_tol=ROUNDING):
        raise EvidenceError(f"{where} ({m.name}): value {m.value} is not passed / (passed + failed) = {m.passed}/{total}")
    if m.n is not None and m.n != total:
        raise EvidenceError(f"{where} ({m.name}): n {m.n} is not passed + failed = {total}")


def _metric(fields: dict[str, Any], where: str) -> Metric:
    name = text(fields.get("metric"))
    if name is None:
        raise EvidenceError(f"{where}: 'metric' must be a non-empty name")
    value = number(fields.get("value"), f"{where} ({name}) value")
    if value is None:
        raise EvidenceError(f"{where} ({name}): value {fields.get('value')!r} is not a number")
    if is_rate_name(name):
        rate(value, f"{where} ({name})")
    stderr = fields.get("stderr")
    better = fields.get("higher_is_better")
    if better is not None and not isinstance(better, bool):
        raise EvidenceError(f"{where} ({name}): higher_is_better is {better!r}, not true or false")
    metric = Metric(
        name=name,
        value=value,
        n=count(fields.get("n"), f"{where} ({name}) n"),
        passed=count(fields.get("passed"), f"{where} ({name}) passed"),
        failed=count(fields.get("failed"), f"{where} ({name}) failed"),
        stderr=None if stderr is None else number(stderr, f"{where} ({name}) stderr"),
        higher_is_better=better,
    )
    _check_counts(metric, where)
    return metric


def _collect(metrics: list[Metric]) -> dict[str, Metric]:
    if not metrics:
        raise EvidenceError("no metrics: the file lists none")
    if len(metrics) > MAX_METRICS:
        raise EvidenceError(f"{len(metrics)} metrics: more than the {MAX_METRICS} a metrics file may list")
    out: dict[str, Metric] = {}
    for m in metrics:
        if m.name in out:
            raise EvidenceError(f"metric {m.name!r} is listed twice")
        out[m.name] = m
    return out


def parse_json(stream: BinaryIO) -> ParsedEvidence:
    doc = read_json(stream, "generic metrics JSON", cap=MAX_BYTES)
    if not isinstance(doc, dict):
        raise EvidenceError(f"the document is {type(doc).__name__}, not an object with 'metrics'")
    _unknown(doc, TOP_KEYS, "top level")
    entries = doc.get("metrics")
    if not isinstance(entries, list):
        raise EvidenceError("'metrics' must be a list of {metric, value, n, ...}")
    if len(entries) > MAX_METRICS:
        raise EvidenceError(f"{len(entries)} metrics: more than the {MAX_METRICS} a metrics file may list")
    metrics = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise EvidenceError(f"metrics[{i}] is not an object")
        _unknown(entry, METRIC_KEYS, f"metrics[{i}]")
        metrics.append(_metric(entry, f"metrics[{i}]"))
    provenance = Provenance(
        tool=text(doc.get("tool")) or "generic",
        tool_version=text(doc.get("tool_version")),
        model=text(doc.get("model")),
        dataset=text(doc.get("dataset")),
        created_at=timestamp(doc.get("created_at"), "created_at"),
    )
    return build_evidence("generic-json", provenance, [plain_group(provenance.model, _collect(metrics))], (SUMMARY_NOTE,))


def _cell(raw: str | None, column: str, where: str) -> Any:
    """A CSV cell as JSON would have it: empty is None, numbers are int or float."""
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if column == "metric":
        return raw
    try:
        return int(raw) if column in ("n", "passed", "failed") else float(raw)
    except ValueError:
        raise EvidenceError(f"{where}: {column} {raw[:40]!r} is not a number") from None


def _rows(text_: str) -> list[Metric]:
    reader = csv.DictReader(io.StringIO(text_, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise EvidenceError(f"the CSV header lacks {', '.join(missing)}: it must start metric,value,n")
    _unknown(header, CSV_COLUMNS, "CSV header", "column")
    if len(set(header)) != len(header):
        raise EvidenceError("the CSV header repeats a column")
    metrics: list[Metric] = []
    for row in reader:
        where = f"CSV line {reader.line_num}"
        if None in row:
            raise EvidenceError(f"{where} has more cells than the header")
        cells = {column: _cell(raw, column, where) for column, raw in row.items()}
        if all(v is None for v in cells.values()):
            continue
        if len(metrics) == MAX_METRICS:
            raise EvidenceError(f"{where}: more than the {MAX_METRICS} metrics a metrics file may list")
        metrics.append(_metric(cells, where))
    return metrics


def parse_csv(stream: BinaryIO) -> ParsedEvidence:
    source = decode_utf8(read_capped(stream, MAX_BYTES, "generic metrics CSV"), "generic metrics CSV")
    if not source.strip():
        raise EvidenceError("the file is empty")
    try:
        metrics = _rows(source)
    except csv.Error as exc:
        raise EvidenceError(f"not valid CSV: {exc}") from None
    return build_evidence("generic-csv", Provenance(tool="generic"), [plain_group(None, _collect(metrics))], (SUMMARY_NOTE, CSV_NOTE))
