"""Inspect AI logs, per sample: the records a log holds for each sample and epoch, and the check of
each scorer's stated accuracy against them (checklists/evidence/inspect_ai.py reads the log and
its ``.eval`` archive and builds the metrics; the rules are in its docstring).

A value is read as Inspect's ``value_to_float`` reads it; epochs are reduced by their mean, or held
to the range another reducer allows (:func:`reduced_range`); ``reductions``, where the log has
them, give the reduced value itself.
"""

from __future__ import annotations

import math
from typing import Any

from promotion_gate.checklists.evidence._common import json_object, text
from promotion_gate.checklists.evidence.base import EvidenceError


class Samples:
    """What the log's per-sample records say: unique sample ids per scorer, and record counts."""

    def __init__(self) -> None:
        self.records = 0  # sample x epoch records
        self.scored_records: int | None = None  # records holding scores (None: not known)
        self.by_scorer: dict[str, dict[str, None]] = {}  # scorer -> unique sample ids it scored, in record order
        self.by_reduction: dict[tuple[str, str | None], set[str]] = {}
        self.values: dict[str, dict[str, list[Any]]] = {}  # scorer -> sample id -> its value per epoch
        self.reduced: dict[tuple[str, str | None], list[Any]] = {}  # (scorer, reducer) -> one value per sample
        self.any = False

    def note_scores(self, sid: str, scores: dict[str, Any]) -> None:
        for scorer, score in scores.items():
            self.by_scorer.setdefault(scorer, {})[sid] = None
            value = score.get("value") if isinstance(score, dict) else None
            self.values.setdefault(scorer, {}).setdefault(sid, []).append(value)

    def per_sample(self, score: dict[str, Any]) -> list[tuple[float, float] | None] | None:
        """Per sample, the (lowest, highest) value its reduced score can have (None where unreadable); None when the log cannot say.

        ``reductions`` give the reduced value itself; the epochs' values give their mean under the
        mean reducer (or a single epoch), else the range :func:`reduced_range` allows."""
        key, reducer = self.reduction_of(score), text(score.get("reducer"))
        if key is not None:
            return [None if (f := value_to_float(v, score["name"])) is None else (f, f) for v in self.reduced[key]]
        epochs = self.epochs_of(score)
        if epochs is None:
            return None
        out: list[tuple[float, float] | None] = []
        for values in epochs.values():
            floats = [value_to_float(v, score["name"]) for v in values]
            out.append(None if None in floats else epoch_range(floats, reducer))  # type: ignore[arg-type]
        return out

    @staticmethod
    def _candidates(score: dict[str, Any]) -> tuple[tuple[str, str | None], ...]:
        """The keys ``reductions`` may hold this score's reduced values under, in the order tried."""
        scorer, reducer = text(score.get("scorer")) or score["name"], text(score.get("reducer"))
        return (scorer, reducer), (score["name"], reducer), (scorer, None)

    def reduction_of(self, score: dict[str, Any]) -> tuple[str, str | None] | None:
        """The key of this score's entry in ``reductions``, or None when the log has none for it."""
        return next((key for key in self._candidates(score) if key in self.reduced), None)

    def epochs_of(self, score: dict[str, Any]) -> dict[str, list[Any]] | None:
        """Sample id -> its value per epoch, for this score's scorer (None: no per-sample values)."""
        return self.values.get(text(score.get("scorer")) or score["name"], self.values.get(score["name"]))

    def n(self, score: dict[str, Any]) -> int | None:
        key = next((key for key in self._candidates(score) if key in self.by_reduction), None)
        if key is not None:
            return len(self.by_reduction[key])
        ids = self.by_scorer.get(text(score.get("scorer")) or score["name"], self.by_scorer.get(score["name"]))
        return None if ids is None else len(ids)


def read_samples(log: dict[str, Any]) -> Samples:
    out = Samples()
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
        summarised: set[tuple[str, str]] = set()
        for i, summary in enumerate(summaries, 1):
            summary = summary if isinstance(summary, dict) else {}
            key = (str(summary.get("id")), str(summary.get("epoch") if summary.get("epoch") is not None else 1))
            if key not in seen:  # a summary is of a sample the archive holds, once
                raise EvidenceError(
                    f"summaries.json entry {i}: sample {key[0][:80]!r} epoch {key[1][:20]} has no "
                    f"samples/{key[0][:80]}_epoch_{key[1][:20]}.json member in the .eval log"
                )
            if key in summarised:
                raise EvidenceError(f"summaries.json entry {i}: sample {key[0][:80]!r} epoch {key[1][:20]} appears twice")
            summarised.add(key)
            scores = summary.get("scores")
            if isinstance(scores, dict) and scores:
                out.scored_records += 1
                out.note_scores(key[0], scores)
    reductions = log.get("reductions")
    entries = reductions if isinstance(reductions, list) else []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not text(entry.get("scorer")) or not isinstance(entry.get("samples"), list):
            raise EvidenceError(f"reductions[{i}] has no scorer or samples")
        key = (entry["scorer"], text(entry.get("reducer")))
        if key in out.reduced:
            raise EvidenceError(f"reductions[{i}]: a second entry for scorer {key[0][:80]} (reducer {key[1]})")
        ids: dict[str, None] = {}
        for s in entry["samples"]:
            if isinstance(s, dict) and s.get("sample_id") is not None:
                sid = str(s["sample_id"])
                if sid in ids:
                    raise EvidenceError(f"reductions[{i}]: sample {sid[:80]!r} appears twice")
                ids[sid] = None
        out.by_reduction[key] = set(ids)
        out.reduced[key] = [s.get("value") if isinstance(s, dict) else None for s in entry["samples"]]
        out.any = True
        if out.records:
            _match_records(out, i, entry, ids, {sid for sid, _ in seen})
    return out


def _match_records(out: Samples, i: int, entry: dict[str, Any], ids: dict[str, None], record_ids: set[str]) -> None:
    """A reduction must be of the samples the log's records hold: where the records say who scored
    what (``.json`` samples, ``.eval`` summaries) the same ids as its scorer scored, each reduced
    value within what that sample's epoch values allow under its reducer; where they give only ids
    (``.eval`` member names), no id they do not hold."""
    scorer, reducer, where = entry["scorer"], text(entry.get("reducer")), f"reductions[{i}] (scorer {entry['scorer'][:80]})"
    if out.scored_records is None:
        extra = [sid for sid in ids if sid not in record_ids]
        if extra:
            raise EvidenceError(f"{where} holds {len(extra)} sample ids the log has no sample records for (e.g. {extra[0][:80]!r})")
        return
    scored = out.values.get(scorer, {})
    extra = [sid for sid in ids if sid not in scored]
    if extra:
        raise EvidenceError(f"{where} holds {len(extra)} sample ids the sample records do not score (e.g. {extra[0][:80]!r})")
    missing = [sid for sid in scored if sid not in ids]
    if missing:
        raise EvidenceError(f"{where} leaves out {len(missing)} samples the sample records score (e.g. {missing[0][:80]!r})")
    for s in entry["samples"]:
        if isinstance(s, dict) and s.get("sample_id") is not None:
            epochs = scored[str(s["sample_id"])]
            if not _reduces_to(s.get("value"), epochs, scorer, reducer):
                by = f" (reduced by {reducer or 'mean'})" if len(epochs) > 1 else ""
                raise EvidenceError(
                    f"{where}: sample {str(s['sample_id'])[:80]!r} is reduced to {repr(s.get('value'))[:80]} "
                    f"but its sample records give {repr(epochs)[:200]}{by}"
                )


def _reduces_to(value: Any, epochs: list[Any], scorer: str, reducer: str | None) -> bool:
    """Whether ``value`` is a value the epochs' values can reduce to under ``reducer`` (a dict value key
    by key); a value either side cannot read (NaN, null, a list) is not held against the log."""
    keys = list(value) if isinstance(value, dict) and all(isinstance(v, dict) for v in epochs) else [scorer]
    for key in keys:
        reduced, floats = value_to_float(value, key), [value_to_float(v, key) for v in epochs]
        if reduced is None or not floats or None in floats:
            continue
        low, high = epoch_range(floats, reducer)  # type: ignore[arg-type]
        if not low - ACCURACY_TOLERANCE <= reduced <= high + ACCURACY_TOLERANCE:
            return False
    return True


# --- the stated accuracy against the per-sample scores -------------------------------------

ACCURACY_TOLERANCE = 1e-6
"""Inspect writes the accuracy as the float it computed; only summation order can move it."""
_LETTER_VALUES = {"C": 1.0, "P": 0.5, "I": 0.0, "N": 0.0}
_VALUE_RULE = "value_to_float: C 1, P 0.5, I and N 0, numbers as they are"


def value_to_float(value: Any, name: str) -> float | None:
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


def reduced_range(floats: list[float], reducer: str | None) -> tuple[float, float]:
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


def epoch_range(floats: list[float], reducer: str | None) -> tuple[float, float]:
    """The (lowest, highest) value one sample's epoch values reduce to: their mean under the mean
    reducer (Inspect's default) or a single epoch, else :func:`reduced_range`."""
    if len(floats) == 1 or reducer in (None, "mean"):
        mean = sum(floats) / len(floats)
        return mean, mean
    return reduced_range(floats, reducer)


def check_accuracy(score: dict[str, Any], key: str, value: float, samples: Samples) -> None:
    """The stated accuracy must lie within what the per-sample values allow (unreadable ones anywhere in [0, 1]).

    Under the mean reducer (or one epoch) that is their mean; under another reducer without
    ``reductions``, between the mean of each sample's lowest and the mean of each sample's highest
    reduced value (:func:`reduced_range`)."""
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


def _epochs(samples: Samples, score: dict[str, Any]) -> bool:
    """Whether this scorer's values were reduced over epochs here (not read from ``reductions``)."""
    if samples.reduction_of(score) is not None:
        return False
    epochs = samples.epochs_of(score)
    return epochs is not None and any(len(v) > 1 for v in epochs.values())
