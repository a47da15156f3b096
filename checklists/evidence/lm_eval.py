"""lm-evaluation-harness ``results_<date>.json`` (``lm_eval --output_path``).

Shape (lm_eval/evaluator.py, loggers/evaluation_tracker.py): ``results: {task: {"acc,none": x,
"acc_stderr,none": s, "alias": ...}}``, ``groups`` (same shape, group aggregates),
``higher_is_better: {task: {metric: bool}}``, ``configs: {task: {metric_list: [{metric,
higher_is_better}]}}``, ``n-samples: {task: {original, effective}}``, ``config: {model,
model_args}``, ``versions``, ``date`` (Unix time), ``lm_eval_version`` or ``git_hash``,
``model_name``. Files from 0.3 have no filter suffix (``"acc"``, ``"acc_stderr"``) and no
n-samples.

Metric ``<task>/<metric>`` (the ``,none`` filter is dropped; any other filter stays:
``<task>/<metric>,<filter>``), with its stderr, the tool's own direction (``higher_is_better``;
the two places that state it must agree) and n = the task's effective samples. A group's
aggregate has no samples of its own in the file: its n is None. Accuracy-like metrics (acc,
acc_norm, exact_match) are rates: outside [0, 1] is an error; they also get passed/failed =
round(value * n). A NaN value is an error that names the metric.

Self-consistency: n-samples ``effective`` may not exceed ``original``. Two keys that give one
metric (``acc`` and ``acc,none``; a group's aggregate in ``results`` and again in ``groups``, as
lm-eval 0.4 writes it) must hold the same value, else the file is refused naming both. ``model_name``
must be the model ``model_args`` names, as lm-eval derives it (the text after the first of ``peft=``,
``delta=``, ``pretrained=``, ``model=``, ``path=``, ``engine=``; a dict's ``pretrained``/``model``/...
key); with no ``model_args`` naming a model it stands alone. The per-sample logs
(``--log_samples``) are separate files, so the counts cannot be checked against records here.

One model per file: ``model_name``, else ``model_args``, else ``config.model``. ``config.model``
says the harness backend (``openai-chat-completions``, ``anthropic-chat``, ``hf``, ...),
``model_args`` the model; the provider is read only from the
OpenAI and Anthropic backends, the version only from an explicit ``revision``.

The document is read whole, refused past :data:`MAX_BYTES` (results files are a few hundred KB).
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from promotion_gate.checklists.evidence._common import accuracy_counts, count, is_rate_name, json_object, number, rate, read_json, text, timestamp
from promotion_gate.checklists.evidence.base import EvidenceError, Metric, ModelGroup, ParsedEvidence, Provenance, build_evidence

ACCURACY_LIKE = frozenset({"acc", "acc_norm", "exact_match"})
MAX_METRICS = 100_000
MAX_BYTES = 32 << 20
NO_SAMPLES_NOTE = "lm-eval file has no n-samples (lm-eval 0.3 or older): no metric carries a sample count"
_STDERR = "_stderr"
_PROVIDERS = (("openai", "openai"), ("anthropic", "anthropic"))


def _split(key: str) -> tuple[str, str | None]:
    metric, _, flt = key.partition(",")
    return metric, (flt or None)


def _metric_name(task: str, metric: str, flt: str | None) -> str:
    return f"{task}/{metric}" if flt in (None, "none") else f"{task}/{metric},{flt}"


def _stderr_of(values: dict[str, Any], metric: str, flt: str | None, where: str) -> float | None:
    key = f"{metric}{_STDERR}" + (f",{flt}" if flt else "")
    return number(values.get(key), f"{where} {key}")  # "N/A" is not a number: None


def _directions(doc: dict[str, Any]) -> dict[tuple[str, str], bool]:
    """(task, metric) -> higher_is_better, from both places the file states it; they must agree."""
    out: dict[tuple[str, str], bool] = {}

    def put(task: str, metric: str, value: Any, where: str) -> None:
        if not isinstance(value, bool):
            return
        if out.get((task, metric), value) != value:
            raise EvidenceError(f"{where}: higher_is_better of {task}/{metric} contradicts the file's other statement of it")
        out[(task, metric)] = value

    block = doc.get("higher_is_better")
    for task, metrics in (block.items() if isinstance(block, dict) else ()):
        for metric, value in (metrics.items() if isinstance(metrics, dict) else ()):
            put(task, metric, value, "higher_is_better")
    configs = doc.get("configs")
    for task, config in (configs.items() if isinstance(configs, dict) else ()):
        entries = config.get("metric_list") if isinstance(config, dict) else None
        for entry in (entries if isinstance(entries, list) else ()):
            if isinstance(entry, dict) and isinstance(entry.get("metric"), str):
                put(task, entry["metric"], entry.get("higher_is_better"), f"configs[{task!r}].metric_list")
    return out


def _task_metrics(
    section: str, task: str, values: Any, n: int | None, directions: dict[tuple[str, str], bool],
    out: dict[str, Metric], sources: dict[str, str],
) -> None:
    """The metrics of one task into ``out``; ``sources`` says which key gave each. Two keys giving
    one metric (``acc`` and ``acc,none``; a group in ``results`` and in ``groups``) must agree."""
    where = f"{section}[{task!r}]"
    if not isinstance(values, dict):
        raise EvidenceError(f"{where} is {type(values).__name__}, not an object")
    for key, raw in values.items():
        metric, flt = _split(key)
        if metric.endswith(_STDERR):
            continue
        value = number(raw, f"{where} {key}")
        if value is None:  # alias, names, "N/A"
            continue
        name = _metric_name(task, metric, flt)
        if name in out:
            if out[name].value != value:
                raise EvidenceError(
                    f"{sources[name]} and {where} {key!r} both give {name}, with different values ({out[name].value!r} and {value!r})"
                )
            continue
        if len(out) >= MAX_METRICS:
            raise EvidenceError(f"more than {MAX_METRICS} metrics in 'results'")
        if metric in ACCURACY_LIKE or is_rate_name(name):
            rate(value, name)
        extra = accuracy_counts(value, n) if metric in ACCURACY_LIKE else {}
        stderr = _stderr_of(values, metric, flt, where)
        better = directions.get((task, metric))
        out[name] = Metric(name=name, value=value, n=n, stderr=stderr, higher_is_better=better, **extra)
        sources[name] = f"{where} {key!r}"


def _effective_samples(doc: dict[str, Any]) -> dict[str, int]:
    samples = doc.get("n-samples")
    if not isinstance(samples, dict):
        return {}
    out = {}
    for task, counts in samples.items():
        if not isinstance(counts, dict) or counts.get("effective") is None:
            continue
        effective = count(counts["effective"], f"n-samples[{task!r}].effective")
        original = count(counts.get("original"), f"n-samples[{task!r}].original")
        if original is not None and effective > original:
            raise EvidenceError(f"n-samples[{task!r}]: effective {effective} is more than original {original}")
        out[task] = effective
    return out


def _args(config: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    args = config.get("model_args")
    if isinstance(args, str):
        return dict(part.partition("=")[::2] for part in args.split(",") if "=" in part), text(args)
    if isinstance(args, dict):
        return args, json.dumps(args, sort_keys=True, default=str)[:1000]
    return {}, None


_NAME_PREFIXES = ("peft=", "delta=", "pretrained=", "model=", "path=", "engine=")
"""The order lm-eval reads ``model_name`` out of a ``model_args`` string in (GeneralConfigTracker._get_model_name)."""


def _lm_eval_model_name(args: str) -> str | None:
    """``model_name`` as lm-eval derives it from a ``model_args`` string: the text after the first of
    :data:`_NAME_PREFIXES` found anywhere in it, up to the next comma."""
    prefix = next((p for p in _NAME_PREFIXES if p in args), None)
    return None if prefix is None else text(args.split(prefix, 1)[1].split(",", 1)[0])


def _group(doc: dict[str, Any], metrics: dict[str, Metric]) -> ModelGroup:
    config = json_object(doc.get("config"))
    args, raw = _args(config)
    from_args = next((name for key in ("pretrained", "model", "model_name", "engine") if (name := text(args.get(key)))), None)
    named = text(doc.get("model_name"))
    raw_args = config.get("model_args")
    expected = (_lm_eval_model_name(raw_args) if isinstance(raw_args, str) else None) or from_args
    if named is not None and expected is not None and named != expected:
        raise EvidenceError(f"model_name {named[:120]!r} is not the model config.model_args names ({expected[:120]!r})")
    model = named or from_args or text(config.get("model"))
    backend = text(config.get("model")) or ""
    provider = next((p for prefix, p in _PROVIDERS if backend.startswith(prefix)), None)
    version = text(args.get("revision"))
    return ModelGroup(provider=provider if model else None, model=model, version=version, raw=raw or model, metrics=metrics)


def parse(stream: BinaryIO) -> ParsedEvidence:
    doc = read_json(stream, "lm-eval results", cap=MAX_BYTES, allow_nan=True)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise EvidenceError("no 'results' object of tasks: not an lm-evaluation-harness results file")
    samples = _effective_samples(doc)
    directions = _directions(doc)
    metrics: dict[str, Metric] = {}
    sources: dict[str, str] = {}
    groups = json_object(doc.get("groups"))
    for task, values in doc["results"].items():
        _task_metrics("results", task, values, samples.get(task), directions, metrics, sources)
    for task, values in groups.items():
        _task_metrics("groups", task, values, None, directions, metrics, sources)
    if not metrics:
        raise EvidenceError("no numeric metric in 'results': the run recorded no scores")
    group = _group(doc, metrics)
    provenance = Provenance(
        tool="lm-evaluation-harness",
        tool_version=text(doc.get("lm_eval_version")) or text(doc.get("git_hash")),
        model=group.model,
        dataset=",".join(sorted(doc["results"])) or None,
        created_at=timestamp(doc.get("date"), "date"),
    )
    notes = () if samples else (NO_SAMPLES_NOTE,)
    return build_evidence("lm-eval", provenance, [group], notes)
