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
most the sample members); no more sample records than ``total_samples``; an (id, epoch) pair
appears once. A scorer's stated ``accuracy`` must be the mean of its per-sample values, read
as Inspect's ``value_to_float`` reads them (C 1, P 0.5, I and N 0, numbers as they are): from
``reductions`` (one reduced value per sample), else the samples (``.json``) or ``summaries.json``
(``.eval``), epochs reduced by their mean; a value that cannot be read (NaN, null) may lie
anywhere in [0, 1], so the accuracy must lie in the range the rest allows. Epochs reduced by
another reducer with no ``reductions`` (max, median, mode, pass_at_k, at_least_k, a custom one)
still bound it: between the mean of each sample's lowest and of each sample's highest epoch value
(threshold and unknown reducers widened to 0 and 1, see :func:`_reduced_range`); outside is
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

import math
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


# --- the per-sample records ----------------------------------------------------------------


class _Samples:
    """What the log's per-sample records say: unique sample ids per scorer, and record counts."""

    def __init__(self) -> None:
        self.records = 0  # sample x epoch records
        self.scored_records: int | None = None  # records holding scores (None: not known)
        self.by_scorer: dict[str, set[str]] = {}  # scorer -> unique sample ids it scored
        self.by_reduction: dict[tuple[str, str | None], set[str]] = {}
        self.values: dict[str, dict[str, list[Any]]] = {}  # scorer -> sample id -> its value per epoch
        self.reduced: dict[tuple[str, str | None], list[Any]] = {}  # (scorer, reducer) -> one value per sample
        self.any = False

    def note_scores(self, sid: str, scores: dict[str, Any]) -> None:
        for scorer, score in scores.items():
            self.by_scorer.setdefault(scorer, set()).add(sid)
            value = score.get("value") if isinstance(score, dict) else None
            self.values.setdefault(scorer, {}).setdefault(sid, []).append(value)

    def per_sample(self, score: dict[str, Any]) -> list[tuple[float, float] | None] | None:
        """Per sample, the (lowest, highest) value its reduced score can have (None where unreadable); None when the log cannot say.

        ``reductions`` give the reduced value itself; the epochs' values give their mean under the
        mean reducer (or a single epoch), else the range :func:`_reduced_range` allows."""
        scorer = text(score.get("scorer")) or score["name"]
        reducer = text(score.get("reducer"))
        for key in ((scorer, reducer), (score["name"], reducer), (scorer, None)):
            if key in self.reduced:
                return [None if (f := _value_to_float(v, score["name"])) is None else (f, f) for v in self.reduced[key]]
        epochs = self.values.get(scorer, self.values.get(score["name"]))
        if epochs is None:
            return None
        out: list[tuple[float, float] | None] = []
        for values in epochs.values():
            floats = [_value_to_float(v, score["name"]) for v in values]
            if None in floats:
                out.append(None)
            elif len(floats) == 1 or reducer in (None, "mean"):
                mean = sum(floats) / len(floats)  # type: ignore[arg-type]
                out.append((mean, mean))
            else:
                out.append(_reduced_range(floats, reducer))  # type: ignore[arg-type]
        return out

    def n(self, score: dict[str, Any]) -> int | None:
        scorer = text(score.get("scorer")) or score["name"]
        reducer = text(score.get("reducer"))
        for key in ((scorer, reducer), (score["name"], reducer), (scorer, None)):
            if key in self.by_reduction:
                return len(self.by_reduction[key])
        ids = self.by_scorer.get(scorer, self.by_scorer.get(score["name"]))
        return None if ids is None else len(ids)


def _read_samples(log: dict[str, Any]) -> _Samples:
    out = _Samples()
    seen: set[tuple[str, str]] = set()

    def record(sample_id: Any, epoch: Any, where: str) -> str:
        if sample_id is None or isinstance(sample_id, (bool, dict, list)):
            raise EvidenceError(f"{where} has no usable id")
        key = (str(sample_id), str(epoch if epoch is not None else 1))
        if key in seen:
            raise EvidenceError(f"{where}: sample {key[0]!r} epoch {key[1]} appears twice")
        seen.add(key)
        out.records += 1
        out.any = True
        return key[0]

    results = json_object(log.get("results"))
    v1 = json_object(results.get("scorer"))
    samples = log.get("samples")
    if isinstance(samples, list) and samples:
        out.scored_records = 0
        for i, sample in enumerate(samples, 1):
            if not isinstance(sample, dict):
                raise EvidenceError(f"samples[{i}] is not an object")
            sid = record(sample.get("id"), sample.get("epoch"), f"samples[{i}]")
            scores = sample.get("scores")
            if scores is None and isinstance(sample.get("score"), dict) and text(v1.get("name")):
                scores = {v1["name"]: sample["score"]}  # version 1: one score per sample
            if isinstance(scores, dict) and scores:
                out.scored_records += 1
                out.note_scores(sid, scores)
    for sid, epoch in log.get("_sample_members", ()):
        record(sid, epoch, f"samples/{sid}_epoch_{epoch}.json")
    summaries = log.get("_summaries")
    if isinstance(summaries, list) and out.records:  # the .eval's per-sample summaries: who scored what
        out.scored_records = 0
        for _i, summary in enumerate(summaries, 1):
            scores = summary.get("scores") if isinstance(summary, dict) else None
            if isinstance(scores, dict) and scores:
                out.scored_records += 1
                out.note_scores(str(summary.get("id")), scores)
    reductions = log.get("reductions")
    for i, entry in enumerate(reductions if isinstance(reductions, list) else (), 1):
        if not isinstance(entry, dict) or not text(entry.get("scorer")) or not isinstance(entry.get("samples"), list):
            raise EvidenceError(f"reductions[{i}] has no scorer or samples")
        ids = {str(s.get("sample_id")) for s in entry["samples"] if isinstance(s, dict) and s.get("sample_id") is not None}
        out.by_reduction[(entry["scorer"], text(entry.get("reducer")))] = ids
        out.reduced[(entry["scorer"], text(entry.get("reducer")))] = [
            s.get("value") if isinstance(s, dict) else None for s in entry["samples"]
        ]
        out.any = True
    return out


# --- the stated accuracy against the per-sample scores -------------------------------------

ACCURACY_TOLERANCE = 1e-6
"""Inspect writes the accuracy as the float it computed; only summation order can move it."""
_LETTER_VALUES = {"C": 1.0, "P": 0.5, "I": 0.0, "N": 0.0}
_VALUE_RULE = "value_to_float: C 1, P 0.5, I and N 0, numbers as they are"


def _value_to_float(value: Any, name: str) -> float | None:
    """A per-sample score value as Inspect's ``value_to_float`` reads it, None where it cannot be known.

    Inspect: a number or bool is itself; C 1, P 0.5, I and N 0; "yes"/"true" 1 and "no"/"false" 0
    (any case); a numeric string its number; anything else 0 (with a warning). A dict value (a
    scorer scoring several keys) is read at the score's name. NaN, null, a list, or a dict without
    the name: not known (Inspect's own accuracy over a NaN is NaN, refused elsewhere)."""
    if isinstance(value, dict):
        value = value.get(name)
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    if value in _LETTER_VALUES:
        return _LETTER_VALUES[value]
    lowered = value.lower()
    if lowered in ("yes", "true"):
        return 1.0
    if lowered in ("no", "false"):
        return 0.0
    try:
        number_ = float(lowered)
    except ValueError:
        return 0.0
    return number_ if math.isfinite(number_) else None


ORDER_REDUCERS = frozenset({"mean", "median", "mode", "max", "min"})
"""Inspect reducers that pick or average the epochs' own values: the result lies within them."""


def _reduced_range(floats: list[float], reducer: str | None) -> tuple[float, float]:
    """The lowest and highest value epochs ``floats`` can reduce to under ``reducer``.

    mean, median, mode and max (min too) stay within [lowest, highest] epoch value. Inspect's
    threshold reducers (``at_least_<k>``, ``pass_at_<k>``: the share of epochs at or above a
    threshold) give 0 or 1 or a probability between, so their range is that one widened to 0 where
    not every epoch reached 1 and to 1 where some epoch is above 0; an unknown (custom) reducer is
    held to the same. Over pass/fail scores (C/I, 1/0) both are exactly [lowest, highest]."""
    low, high = min(floats), max(floats)
    if reducer in ORDER_REDUCERS:
        return low, high
    return (min(low, 0.0 if low < 1.0 else 1.0), max(high, 1.0 if high > 0.0 else 0.0))


def _check_accuracy(score: dict[str, Any], key: str, value: float, samples: _Samples) -> None:
    """The stated accuracy must lie within what the per-sample values allow (unreadable ones anywhere in [0, 1]).

    Under the mean reducer (or one epoch) that is their mean; under another reducer without
    ``reductions``, between the mean of each sample's lowest and the mean of each sample's highest
    reduced value (:func:`_reduced_range`)."""
    ranges = samples.per_sample(score)
    if not ranges:
        return
    known = [r for r in ranges if r is not None]
    unknown = len(ranges) - len(known)
    if not known:
        return  # nothing readable: no bound tighter than the rate check
    low = sum(r[0] for r in known) / len(ranges)
    high = (sum(r[1] for r in known) + unknown) / len(ranges)
    if low - ACCURACY_TOLERANCE <= value <= high + ACCURACY_TOLERANCE:
        return
    reducer = text(score.get("reducer"))
    reduced = f" (epochs reduced by {reducer})" if reducer not in (None, "mean") and _epochs(samples, score) else ""
    if abs(high - low) <= ACCURACY_TOLERANCE:
        held = f"{low:.6g}"
    elif unknown:
        held = f"between {low:.6g} and {high:.6g} ({unknown} of them not readable)"
    else:
        held = f"between {low:.6g} and {high:.6g}"
    raise EvidenceError(f"scorer {key}: accuracy is {value!r} but its {len(ranges)} per-sample scores{reduced} give {held} ({_VALUE_RULE})")


def _epochs(samples: _Samples, score: dict[str, Any]) -> bool:
    """Whether this scorer's values were reduced over epochs here (not read from ``reductions``)."""
    scorer = text(score.get("scorer")) or score["name"]
    reducer = text(score.get("reducer"))
    if any(key in samples.reduced for key in ((scorer, reducer), (score["name"], reducer), (scorer, None))):
        return False
    epochs = samples.values.get(scorer, samples.values.get(score["name"]))
    return epochs is not None and any(len(v) > 1 for v in epochs.values())


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


def _score_metrics(score: Any, samples: _Samples, seen: set[str]) -> list[Metric]:
    if not isinstance(score, dict) or not text(score.get("name")) or not isinstance(score.get("metrics"), dict):
        raise EvidenceError(f"a results.scores entry has no name or metrics: {str(score)[:80]}")
    key = score["name"] if score["name"] not in seen else f"{score['name']}[{score.get('reducer')}]"
    seen.add(key)
    scored = count(score.get("scored_samples"), f"{key}.scored_samples")
    n = samples.n(score)
    if scored is not None and n is not None and scored != n:
        raise EvidenceError(f"scorer {key}: scored_samples is {scored} but the per-sample records hold {n} scored samples")
    values = {}
    for name, metric in score["metrics"].items():
        raw = metric.get("value") if isinstance(metric, dict) else None
        value = number(raw, f"scorer {key} metric {name}")
        if value is None:
            raise EvidenceError(f"scorer {key} metric {name} has no numeric value ({raw!r})")
        if name == "accuracy":
            rate(value, f"scorer {key} metric accuracy")
            _check_accuracy(score, key, value, samples)
        values[name] = value
    stderr = values.get("stderr")
    out = []
    for name, value in values.items():
        extra = accuracy_counts(value, n) if name == "accuracy" else {}
        out.append(Metric(name=f"{key}/{name}", value=value, n=n, stderr=None if name == "stderr" else stderr, **extra))
    return out


def _check_totals(results: dict[str, Any], samples: _Samples) -> None:
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


def _metrics(log: dict[str, Any], samples: _Samples) -> dict[str, Metric]:
    results = log.get("results")
    if not isinstance(results, dict):
        raise EvidenceError("the log has no results")
    _check_totals(results, samples)
    metrics: dict[str, Metric] = {}
    seen: set[str] = set()
    for score in _scores(results):
        for metric in _score_metrics(score, samples, seen):
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
    samples = _read_samples(log)
    metrics = _metrics(log, samples)
    group = slash_group(text(log["eval"].get("model")), metrics)
    notes = () if samples.any else (NO_SAMPLES_NOTE,)
    return build_evidence("inspect", _provenance(log["eval"]), [group], notes)
