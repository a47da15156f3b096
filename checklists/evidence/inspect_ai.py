"""Inspect AI eval logs: the ``.json`` log and the zipped ``.eval`` log.

Log (inspect_ai/log/_log.py ``EvalLog``): ``version`` (1 or 2), ``status`` (started, success,
cancelled, error), ``eval: {task, model, created, dataset: {name, samples}, packages}``,
``results: {total_samples, completed_samples, scores: [{name, scorer, reducer, scored_samples,
metrics: {accuracy: {name, value}, stderr: {...}}}]}``, then ``samples``. Version 1 logs hold
one scorer as ``results: {scorer: {name}, metrics: {...}}``.

``.eval`` (log/_recorders/eval.py): a zip with ``header.json`` (the log without samples) once
the eval finished, ``_journal/start.json`` while it runs, ``samples/*.json``, ``reductions.json``.
Early versions had ``start.json`` + ``results.json`` at the root. Members are deflate or (since
2026) zstd compressed.

Results are ``results.scores`` (version 2), ``results.scorers`` (the same entries under the
older name) or ``results.scorer`` + ``results.metrics`` (version 1, one scorer).

Only a log with status "success" is evidence. Metrics are ``<score name>/<metric>`` with the
scorer's stderr. n is the number of unique sample ids the scorer scored, counted from the log's
per-sample records: ``reductions`` (one reduced score per sample id, whatever the epochs), else
the ``samples`` (``.json``) by id, or the ``samples/<id>_epoch_<n>.json`` member names
(``.eval``, with ``summaries.json`` saying which scorer scored which). A log without per-sample
records gives n None. An accuracy is a rate (outside [0, 1]
is an error) and gets passed/failed over n; the first scorer with an accuracy and an n gives
``pass_rate``. A NaN metric is an error naming it.

Self-consistency: a scorer's ``scored_samples`` must equal the unique samples it scored;
``completed_samples`` must equal the sample records holding scores (``.json``; in ``.eval``, at
most the sample members); no more sample records than ``total_samples``, no ``scored_samples``
above it, and without sample records no more samples in ``reductions`` than it; an (id, epoch)
pair appears once. Where sample records are present, ``reductions`` must match them and
``summaries.json`` must be of the sample members (``inspect_samples._match_records``), so n never
exceeds the records. A scorer's stated ``accuracy`` must be the mean of its per-sample values, read
as Inspect's ``value_to_float`` reads them (C 1, P 0.5, I and N 0, numbers as they are): from
``reductions`` (one reduced value per sample), else the samples (``.json``) or ``summaries.json``
(``.eval``), epochs reduced by their mean; a value that cannot be read (NaN, null) may lie
anywhere in [0, 1], so the accuracy must lie in the range the rest allows. Epochs reduced by
another reducer with no ``reductions`` (max, median, mode, pass_at_k, at_least_k, a custom one)
still bound it: between the mean of each sample's lowest and of each sample's highest epoch value
(threshold and unknown reducers widened to 0 and 1, see ``inspect_samples.reduced_range``); outside is
refused. A log without values is not checked. One model
per log: ``eval.model`` (``provider/model``).

Memory: a ``.json`` log is parsed whole, so it is refused past :data:`MAX_JSON_BYTES` (Inspect
writes NaN, which no streaming JSON parser here accepts; ``.eval``, Inspect's default, has no such
limit). A ``.eval`` log is copied to a SpooledTemporaryFile (zipfile needs to seek; it spills to
a temporary file past 32 MiB) and only the header and ``reductions.json`` are decompressed, each
capped at :data:`MAX_MEMBER_BYTES`, with a compression-ratio limit. zipfile holds the central
directory in memory at about ten times its size, so the directory is capped at
:data:`MAX_DIRECTORY_BYTES` (some 450k members).
"""

from __future__ import annotations

import re
import shutil
import struct
import sys
import tempfile
from typing import IO, Any, BinaryIO

from promotion_gate.checklists.evidence._common import (
    Prefixed, accuracy_counts, count, json_object, number, parse_json, rate, rate_metric, read_capped, read_exactly, text, timestamp,
)
from promotion_gate.checklists.evidence._models import slash_group
from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError, Metric, ParsedEvidence, Provenance, build_evidence
from promotion_gate.checklists.evidence.inspect_samples import Samples, check_accuracy, read_samples

if sys.version_info >= (3, 14):
    import zipfile
else:  # zstd members need the backport of Python 3.14's zipfile
    from backports.zstd import zipfile

KNOWN_VERSIONS = (1, 2)
MAX_MEMBER_BYTES = 64 << 20
MAX_TOTAL_BYTES = 256 << 20
MAX_RATIO = 500
MAX_DIRECTORY_BYTES = 32 << 20
SPOOL_BYTES = 32 << 20
MAX_JSON_BYTES = 64 << 20
JSON_HINT = "; write the log as .eval (Inspect's default format; `inspect log convert --to eval`)"
NO_SAMPLES_NOTE = "the log holds no per-sample records (no samples, no reductions): no metric carries a sample count"

_ZIP_MAGIC = b"PK\x03\x04"


# --- the .eval zip --------------------------------------------------------------------------


def _directory_size(spool: IO[bytes]) -> int | None:
    """Size of the zip's central directory from its end record (zip64 aware); None if absent."""
    spool.seek(0, 2)
    end = spool.tell()
    spool.seek(max(0, end - (1 << 16) - 22))
    tail = spool.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    size = struct.unpack_from("<I", tail, at + 12)[0]
    locator = tail.rfind(b"PK\x06\x07", 0, at)
    if size == 0xFFFFFFFF and locator >= 0 and len(tail) >= locator + 20:
        spool.seek(struct.unpack_from("<Q", tail, locator + 8)[0])
        record = spool.read(56)
        if len(record) == 56 and record.startswith(b"PK\x06\x06"):
            size = struct.unpack_from("<Q", record, 40)[0]
    return size


class _Budget:
    """Bytes decompressed so far, against the total cap."""

    def __init__(self) -> None:
        self.used = 0

    def take(self, n: int, name: str) -> None:
        self.used += n
        if self.used > MAX_TOTAL_BYTES:
            raise EvidenceError(f"{name}: more than {MAX_TOTAL_BYTES >> 20} MiB decompressed from the .eval log")


def _member(archive: Any, name: str, budget: _Budget) -> Any:
    info = archive.getinfo(name)
    if info.file_size > MAX_MEMBER_BYTES:
        raise EvidenceError(f"{name} in the .eval log is {info.file_size} bytes, over the {MAX_MEMBER_BYTES >> 20} MiB cap")
    with archive.open(info) as member:
        data = member.read(MAX_MEMBER_BYTES + 1)
    if len(data) > MAX_MEMBER_BYTES:
        raise EvidenceError(f"{name} in the .eval log decompresses past the {MAX_MEMBER_BYTES >> 20} MiB cap")
    if len(data) > (1 << 20) and len(data) > MAX_RATIO * max(info.compress_size, 1):
        raise EvidenceError(f"{name} in the .eval log expands more than {MAX_RATIO}:1 (a zip bomb?)")
    budget.take(len(data), name)
    return parse_json(data, f"{name} in the .eval log", allow_nan=True)


_SAMPLE_MEMBER = re.compile(r"samples/(.+)_epoch_(\d+)\.json")


def _log_from_archive(archive: Any) -> Any:
    names = archive.namelist()
    budget = _Budget()
    log = _header_from_archive(archive, set(names), budget)
    if isinstance(log, dict):
        log["_sample_members"] = [(m.group(1), m.group(2)) for name in names if (m := _SAMPLE_MEMBER.fullmatch(name))]
        if "reductions.json" in names and "reductions" not in log:
            log["reductions"] = _member(archive, "reductions.json", budget)
        summaries = next((n for n in ("summaries.json", "summary.json") if n in names), None)
        if summaries is not None:
            log["_summaries"] = _member(archive, summaries, budget)
    return log


def _header_from_archive(archive: Any, names: set[str], budget: _Budget) -> Any:
    if "header.json" in names:
        return _member(archive, "header.json", budget)
    if {"start.json", "results.json"} <= names:  # the first .eval layout
        start, results = _member(archive, "start.json", budget), _member(archive, "results.json", budget)
        if not isinstance(start, dict) or not isinstance(results, dict):
            raise EvidenceError("start.json and results.json in the .eval log must be objects")
        return {**start, **results}
    if "_journal/start.json" in names:
        raise EvidenceError("the .eval log has no header.json: the eval has not finished (still running or interrupted)")
    raise EvidenceError("the zip has no header.json: not an Inspect .eval log")


def _read_eval_zip(head: bytes, stream: BinaryIO) -> Any:
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        spool.write(head)
        shutil.copyfileobj(stream, spool, 1 << 20)
        directory = _directory_size(spool)
        if directory is not None and directory > MAX_DIRECTORY_BYTES:
            raise EvidenceError(f"the .eval zip directory is {directory} bytes, over the {MAX_DIRECTORY_BYTES >> 20} MiB cap")
        spool.seek(0)
        try:
            with zipfile.ZipFile(spool) as archive:
                return _log_from_archive(archive)
        except EvidenceError:
            raise
        except NotImplementedError as exc:
            raise EvidenceError(f"the .eval zip uses an unsupported feature: {exc}") from None
        except Exception as exc:  # BadZipFile, a CRC mismatch, zlib or zstd data errors
            raise EvidenceError(f"not a readable .eval zip: {type(exc).__name__}: {exc}") from None


# --- the log --------------------------------------------------------------------------------


def _scores(results: dict[str, Any]) -> list[Any]:
    if "scorer" in results and "scores" not in results:  # version 1: one scorer
        scorer = results["scorer"] if isinstance(results["scorer"], dict) else {}
        return [{"name": scorer.get("name"), "scorer": scorer.get("name"), "metrics": results.get("metrics")}]
    scores = results.get("scores", results.get("scorers"))  # "scorers": the older name of the list
    if isinstance(scores, dict):  # keyed by name
        scores = [{"name": name, **entry} if isinstance(entry, dict) else entry for name, entry in scores.items()]
    if not isinstance(scores, list):
        raise EvidenceError("results.scores is missing: the log has no scores")
    return scores


def _score_metrics(score: Any, samples: Samples, seen: set[str], total: int | None) -> list[Metric]:
    if not isinstance(score, dict) or not text(score.get("name")) or not isinstance(score.get("metrics"), dict):
        raise EvidenceError(f"a results.scores entry has no name or metrics: {str(score)[:80]}")
    key = score["name"] if score["name"] not in seen else f"{score['name']}[{score.get('reducer')}]"
    seen.add(key)
    scored = count(score.get("scored_samples"), f"{key}.scored_samples")
    n = samples.n(score)
    if scored is not None and n is not None and scored != n:
        raise EvidenceError(f"scorer {key}: scored_samples is {scored} but the per-sample records hold {n} scored samples")
    if scored is not None and total is not None and scored > total:
        raise EvidenceError(f"scorer {key}: scored_samples {scored} is more than results.total_samples {total}")
    if n is not None and total is not None and n > total and not samples.records:  # with records, n <= records <= total
        raise EvidenceError(f"scorer {key}: {n} samples in reductions but results.total_samples is {total}")
    values = {}
    for name, metric in score["metrics"].items():
        raw = metric.get("value") if isinstance(metric, dict) else None
        value = number(raw, f"scorer {key} metric {name}")
        if value is None:
            raise EvidenceError(f"scorer {key} metric {name} has no numeric value ({raw!r})")
        if name == "accuracy":
            rate(value, f"scorer {key} metric accuracy")
            check_accuracy(score, key, value, samples)
        values[name] = value
    stderr = values.get("stderr")
    out = []
    for name, value in values.items():
        extra = accuracy_counts(value, n) if name == "accuracy" else {}
        out.append(Metric(name=f"{key}/{name}", value=value, n=n, stderr=None if name == "stderr" else stderr, **extra))
    return out


def _check_totals(results: dict[str, Any], samples: Samples) -> None:
    total = count(results.get("total_samples"), "results.total_samples")
    completed = count(results.get("completed_samples"), "results.completed_samples")
    if completed is not None and total is not None and completed > total:
        raise EvidenceError(f"results.completed_samples {completed} is more than total_samples {total}")
    if not samples.records:
        return
    if total is not None and samples.records > total:
        raise EvidenceError(f"the log holds {samples.records} sample records but results.total_samples is {total}")
    if completed is None:
        return
    if samples.scored_records is not None and completed != samples.scored_records:
        raise EvidenceError(f"results.completed_samples is {completed} but {samples.scored_records} sample records hold scores")
    if completed > samples.records:
        raise EvidenceError(f"results.completed_samples is {completed} but the log holds {samples.records} sample records")


def _metrics(log: dict[str, Any], samples: Samples) -> dict[str, Metric]:
    results = log.get("results")
    if not isinstance(results, dict):
        raise EvidenceError("the log has no results")
    _check_totals(results, samples)
    metrics: dict[str, Metric] = {}
    seen: set[str] = set()
    total = count(results.get("total_samples"), "results.total_samples")
    for score in _scores(results):
        for metric in _score_metrics(score, samples, seen, total):
            metrics[metric.name] = metric
            if metric.name.endswith("/accuracy") and PASS_RATE not in metrics and metric.passed is not None:
                metrics[PASS_RATE] = rate_metric(metric.passed, metric.failed)
    if not metrics:
        raise EvidenceError("the log has no scores")
    return metrics


def _check_status(log: Any) -> None:
    if not isinstance(log, dict) or not isinstance(log.get("eval"), dict):
        raise EvidenceError("no 'eval' object: not an Inspect eval log")
    version = log.get("version")
    if version not in KNOWN_VERSIONS:
        raise EvidenceError(f"log version {version!r} is not one this parser knows ({KNOWN_VERSIONS})")
    status = log.get("status")
    if status != "success":
        error = log.get("error")
        message = text(error.get("message")) if isinstance(error, dict) else None
        raise EvidenceError(f"the eval's status is {status!r}, not 'success'" + (f": {message[:200]}" if message else ""))


def _provenance(spec: dict[str, Any]) -> Provenance:
    dataset = json_object(spec.get("dataset"))
    packages = json_object(spec.get("packages"))
    return Provenance(
        tool="inspect_ai",
        tool_version=text(packages.get("inspect_ai")),
        model=text(spec.get("model")),
        dataset=text(dataset.get("name")) or text(spec.get("task")),
        created_at=timestamp(spec.get("created"), "eval.created"),
    )


def parse(stream: BinaryIO) -> ParsedEvidence:
    head = read_exactly(stream, len(_ZIP_MAGIC))
    if head == _ZIP_MAGIC:
        log = _read_eval_zip(head, stream)
    else:
        data = read_capped(Prefixed(head, stream), MAX_JSON_BYTES, "Inspect .json log", JSON_HINT)
        log = parse_json(data, "Inspect log", allow_nan=True)
        if isinstance(log, dict):  # what only a .eval zip's member list may say
            for private in ("_sample_members", "_summaries"):
                log.pop(private, None)
    _check_status(log)
    samples = read_samples(log)
    metrics = _metrics(log, samples)
    group = slash_group(text(log["eval"].get("model")), metrics)
    notes = () if samples.any else (NO_SAMPLES_NOTE,)
    return build_evidence("inspect", _provenance(log["eval"]), [group], notes)
