"""promptfoo results: the JSON of ``promptfoo eval -o results.json`` and its JSONL output.

JSON (src/util/output.ts ``createOutputData``): ``{evalId, results: {version, timestamp,
prompts, results: [EvaluateResult...], stats}, config, shareableUrl, metadata:
{promptfooVersion, evaluationCreatedAt, ...}}``. Older files are the summary itself at the top:
``{version: 2|3, timestamp, results: [...], table|prompts, stats}``.
JSONL (``-o results.jsonl``): one EvaluateResult per line, nothing else.
CSV (``-o results.csv``) is a display table (output, status and score per prompt column) with no
result ids, timestamps or totals, and is refused with a pointer to the JSON output.

An EvaluateResult carries ``success`` (bool), ``score``, ``namedScores``, ``failureReason``
(0 none, 1 assertion, 2 error) and ``provider: {id, label}`` (a bare string in old files).
Errors are failures. Results are grouped by provider id: one :class:`ModelGroup` per provider,
each with metrics from its own results only (a two-model file is never pooled).

A result counts once. Each is keyed, within its provider, on its ``id`` (promptfoo gives every
EvaluateResult its own) or, in a file without ids, on (``promptIdx``, ``testIdx``): promptfoo's
evaluator gives every prompt x provider its own promptIdx and every test, var combination and
``--repeat`` run its own testIdx, so a repeated run is never a repeated key. A key seen twice is
refused, naming it; so is a file where some results carry the key and others do not (a copy
stripped of its id), and, where results carry ids, a (``promptIdx``, ``testIdx``) seen twice (a
pasted copy given a fresh id). A file whose results carry neither (old version 2 summaries) is read
with a note that a repeat cannot be detected.

A ``--repeat`` run is not another sample: the metrics count distinct tests per provider, a test
being its promptIdx and its ``vars`` (sha256 of their canonical JSON). A test passes only if every
one of its runs passed, and its score is the mean of its runs' before the mean over tests; so 20
tests run 20 times are n=20, not 400. A result without ``vars`` beside results with them is refused;
a file whose results carry no ``vars`` counts each result as its own test, with a note.

A result with ``success: true`` and a non-zero ``failureReason`` contradicts itself and the file
is refused. promptfoo sets failureReason to 1 or 2 only together with ``success: false``, so no
file it writes holds one; counting the result as failed instead would still leave the file
disagreeing with its own ``stats`` (which count it a success) and would quietly guess which half
of the record is true. Refusal is the stricter reading: the candidate is blocked, not judged on a
pass rate lowered by a guess.

Self-consistency: ``stats`` (``successes``, ``failures``, ``errors``) must match the results:
successes = passed results, and successes + failures + errors = all results. Where ``prompts``
carry per-provider ``metrics`` (``testPassCount``, ``testFailCount``, ``testErrorCount``), each
provider's sums must match that provider's results, so a result moved from one model to another
is caught too. JSONL declares no
total, so a file cut at a line boundary cannot be told from a whole one: the record says so.

Memory: the JSON document is streamed (ijson); only one result is held at a time, with the key of
each one seen. JSONL is read one line at a time (a line is capped at 64 MiB).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, BinaryIO

from promotion_gate.checklists.evidence._common import Mean, Prefixed, count, iter_json_lines, number, rate_metric, read_exactly, text, timestamp
from promotion_gate.checklists.evidence._jsonstream import ITEM, select
from promotion_gate.checklists.evidence._models import promptfoo_group
from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError, Metric, ModelGroup, ParsedEvidence, Provenance, build_evidence

MAX_PROVIDERS = 1000
MAX_NAMED_SCORES = 1000
JSONL_NOTE = "jsonl format declares no total: truncation at a line boundary cannot be detected"
UNKEYED_NOTE = "the results carry no id and no (promptIdx, testIdx): a result recorded twice cannot be detected"
NO_VARS_NOTE = "the results carry no vars: a --repeat run of a test cannot be told from another test"
FAILURE_REASONS = {1: "assertion failed", 2: "error"}
CSV_REFUSAL = (
    "this is promptfoo's CSV output (-o results.csv): it keeps no provider ids, timestamps or totals "
    "the gate must check; export the run with `promptfoo eval -o results.json` (or results.jsonl)"
)

_RESULT_PATHS = frozenset({("results", ITEM), ("results", "results", ITEM)})
_HEADER_PATHS = {
    ("timestamp",): "timestamp",
    ("results", "timestamp"): "timestamp",
    ("metadata", "evaluationCreatedAt"): "created",
    ("metadata", "promptfooVersion"): "tool_version",
    ("stats",): "stats",
    ("results", "stats"): "stats",
    ("prompts",): "prompts",
    ("results", "prompts"): "prompts",
}
_JSON_PATHS = _RESULT_PATHS | frozenset(_HEADER_PATHS)


class _Test:
    """One distinct test case of one provider: whether every run of it passed, and its runs' score means."""

    __slots__ = ("ok", "score", "named")

    def __init__(self) -> None:
        self.ok = True
        self.score = Mean()
        self.named: dict[str, Mean] = {}


class _Tally:
    """One provider's results: pass/fail counts per result (the file's own totals count results) and
    per distinct test (what the metrics count: a ``--repeat`` run is not another sample)."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.errors = 0
        self.tests: dict[Any, _Test] = {}
        self.named_names: set[str] = set()

    def add(self, result: dict[str, Any], success: bool, test: Any, where: str) -> None:
        if success:
            self.passed += 1
        else:
            self.failed += 1
            self.errors += result.get("failureReason") == 2
        entry = self.tests.setdefault(test, _Test())
        entry.ok = entry.ok and success
        score = number(result.get("score"), f"{where}: score")
        if score is not None:
            entry.score.add(score)
        named = result.get("namedScores")
        for name, value in (named.items() if isinstance(named, dict) else ()):
            score = number(value, f"{where}: namedScores[{name!r}]")
            if score is None:
                continue
            if name not in self.named_names and len(self.named_names) >= MAX_NAMED_SCORES:
                raise EvidenceError(f"more than {MAX_NAMED_SCORES} distinct namedScores")
            self.named_names.add(name)
            entry.named.setdefault(name, Mean()).add(score)

    def metrics(self) -> dict[str, Metric]:
        """pass_rate over distinct tests (a test passes only when every run of it passed); score
        means per test first (the mean of its runs), then over the tests."""
        passed = sum(t.ok for t in self.tests.values())
        out = {PASS_RATE: rate_metric(passed, len(self.tests) - passed)}
        score = _mean_of_means(t.score for t in self.tests.values())
        if score.n:
            out["score"] = score.metric("score")
        for name in sorted(self.named_names):
            out[f"score:{name}"] = _mean_of_means(t.named.get(name) for t in self.tests.values()).metric(f"score:{name}")
        return out


def _mean_of_means(means: Any) -> Mean:
    out = Mean()
    for mean in means:
        if mean is not None and mean.n:
            out.add(mean.total / mean.n)
    return out


def _indices(result: dict[str, Any], where: str) -> tuple[int | None, int | None]:
    """(promptIdx, testIdx) of a result, each read once (None where absent)."""
    return count(result.get("promptIdx"), f"{where}: promptIdx"), count(result.get("testIdx"), f"{where}: testIdx")


def _test_key(result: dict[str, Any], prompt_idx: int | None, where: str) -> tuple[int | None, str] | None:
    """A test case, as ``--repeat`` copies it: (promptIdx, sha256 of its vars in canonical JSON); None without vars."""
    if "vars" not in result or result.get("vars") is None:
        return None
    try:
        canonical = json.dumps(result["vars"], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError) as exc:
        raise EvidenceError(f"{where}: vars cannot be read: {exc}") from None
    return (prompt_idx, hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest())


def _key(result: dict[str, Any], indices: tuple[int | None, int | None], where: str) -> tuple[str, Any] | None:
    """What tells this result from every other: ("id", id), else ("idx", (promptIdx, testIdx)), else None."""
    ident = result.get("id")
    if ident is not None:
        if text(ident) is None:
            raise EvidenceError(f"{where}: id is {ident!r}, not a non-empty string")
        return ("id", ident)
    if indices[0] is None or indices[1] is None:
        return None
    return ("idx", indices)


def _check_success(result: dict[str, Any], success: bool, where: str) -> None:
    """A success must not carry a failure reason (1 assertion, 2 error): such a result contradicts itself."""
    reason = result.get("failureReason")
    if not success or reason is None:
        return
    if isinstance(reason, (int, float)) and not isinstance(reason, bool) and reason == 0:
        return
    label = FAILURE_REASONS.get(reason) if isinstance(reason, int) and not isinstance(reason, bool) else None
    raise EvidenceError(
        f"{where}: success is true but failureReason is {reason!r}" + (f" ({label})" if label else "")
        + ": the result contradicts itself"
    )


_MISSING = {"id": "no id while other results have one: a copy stripped of its id cannot be told from a new result",
            "idx": "no promptIdx and testIdx while other results have them: a copy stripped of them cannot be told from a new result"}


class _Results:
    """Results grouped by provider id, in the order providers first appear; each result's key seen once."""

    def __init__(self) -> None:
        self.seen = 0
        self.by_provider: dict[str | None, _Tally] = {}
        self.keys: dict[str | None, set[Any]] = {}
        self.kind: str | None = None  # what the first result is keyed on: "id", "idx" or None
        self.index_pairs: dict[str | None, set[tuple[int, int]]] = {}
        self.with_vars = False  # whether the first result names its test by vars

    def add(self, result: Any, where: str) -> None:
        if not isinstance(result, dict):
            raise EvidenceError(f"{where} is {type(result).__name__}, not a result object")
        self.seen += 1
        success = result.get("success")
        if not isinstance(success, bool):
            raise EvidenceError(f"{where}: 'success' is {success!r}, not true or false")
        _check_success(result, success, where)
        provider = result.get("provider")
        ident = text(provider.get("id")) if isinstance(provider, dict) else text(provider)
        if ident not in self.by_provider and len(self.by_provider) >= MAX_PROVIDERS:
            raise EvidenceError(f"{where}: more than {MAX_PROVIDERS} distinct providers")
        indices = _indices(result, where)
        key = _key(result, indices, where)
        self._note_key(key, ident, where)
        if key is not None and key[0] == "id":
            self._note_index(indices, ident, where)
        test = self._test(result, indices[0], where)
        self.by_provider.setdefault(ident, _Tally()).add(result, success, test, where)

    def _note_index(self, indices: tuple[int | None, int | None], ident: str | None, where: str) -> None:
        """With ids, a repeated (promptIdx, testIdx) is refused too: a pasted copy given a fresh id."""
        prompt_idx, test_idx = indices
        if prompt_idx is None or test_idx is None:
            return
        pairs = self.index_pairs.setdefault(ident, set())
        if (prompt_idx, test_idx) in pairs:
            raise EvidenceError(
                f"{where}: promptIdx {prompt_idx}, testIdx {test_idx} of provider {ident} appears twice: a result may count once"
            )
        pairs.add((prompt_idx, test_idx))

    def _test(self, result: dict[str, Any], prompt_idx: int | None, where: str) -> Any:
        """The distinct test this result is a run of; results without vars are each their own test."""
        test = _test_key(result, prompt_idx, where)
        has = test is not None
        if self.seen == 1:
            self.with_vars = has
        elif has != self.with_vars:
            if not has:
                raise EvidenceError(f"{where} has no vars while other results have them: a repeat stripped of them cannot be told from a new test")
            raise EvidenceError(f"{where} has vars while result 1 has none: results that name their test unalike cannot be grouped")
        return test if has else ("result", self.seen)

    def _note_key(self, key: tuple[str, Any] | None, ident: str | None, where: str) -> None:
        """Refuse a key seen before for this provider, and a file whose results are not keyed alike."""
        kind = key[0] if key else None
        if self.seen == 1:
            self.kind = kind
        elif kind != self.kind:
            if self.kind is not None and (kind is None or self.kind == "id"):
                raise EvidenceError(f"{where} has {_MISSING[self.kind]}")
            assert kind is not None
            has = "an id" if kind == "id" else "promptIdx and testIdx"
            raise EvidenceError(f"{where} has {has} while result 1 has none: results keyed unalike cannot be told apart")
        if key is None:
            return
        keys = self.keys.setdefault(ident, set())
        if key in keys:
            named = f"result id {key[1]!r}" if kind == "id" else f"promptIdx {key[1][0]}, testIdx {key[1][1]}"
            raise EvidenceError(f"{where}: {named} of provider {ident} appears twice: a result may count once")
        keys.add(key)

    def notes(self) -> tuple[str, ...]:
        notes = (UNKEYED_NOTE,) if self.kind is None else ()
        return notes + (() if self.with_vars or not self.seen else (NO_VARS_NOTE,))

    def groups(self) -> list[ModelGroup]:
        if self.seen == 0:
            raise EvidenceError("no results: the file records no test outcome")
        return [promptfoo_group(ident, tally.metrics()) for ident, tally in self.by_provider.items()]

    def model(self) -> str | None:
        return ",".join(sorted(i for i in self.by_provider if i is not None)) or None

    def check_stats(self, stats: Any) -> None:
        """results.stats against the results: successes, and successes + failures + errors."""
        if stats is None:
            return
        if not isinstance(stats, dict):
            raise EvidenceError(f"stats is {type(stats).__name__}, not an object")
        successes = count(stats.get("successes"), "stats.successes")
        failures = count(stats.get("failures"), "stats.failures")
        errors = count(stats.get("errors"), "stats.errors") or 0
        if successes is None or failures is None:
            raise EvidenceError("stats lacks successes or failures: the file's own totals are incomplete")
        passed = sum(t.passed for t in self.by_provider.values())
        if successes != passed:
            raise EvidenceError(f"stats.successes is {successes} but the results hold {passed} passing results")
        declared = successes + failures + errors
        if declared != self.seen:
            raise EvidenceError(f"stats counts {declared} results (successes + failures + errors) but the file holds {self.seen}")


def _check_prompts(prompts: Any, results: _Results) -> None:
    """Per-provider totals of ``prompts[].metrics`` against each provider's results."""
    if not isinstance(prompts, list) or not prompts:
        return
    declared: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts, 1):
        metrics = prompt.get("metrics") if isinstance(prompt, dict) else None
        provider = text(prompt.get("provider")) if isinstance(prompt, dict) else None
        if provider is None or not isinstance(metrics, dict) or "testPassCount" not in metrics:
            return  # a prompt without its own totals: nothing to hold the results to
        where = f"prompts[{i}].metrics"
        counts = [count(metrics.get(k), f"{where}.{k}") or 0 for k in ("testPassCount", "testFailCount", "testErrorCount")]
        totals = declared.setdefault(provider, [0, 0])
        totals[0] += counts[0]
        totals[1] += sum(counts)
    for provider, (passed, total) in declared.items():
        tally = results.by_provider.get(provider)
        held = (tally.passed, tally.passed + tally.failed) if tally else (0, 0)
        if (passed, total) != held:
            raise EvidenceError(
                f"prompts say {provider} passed {passed} of {total} but its results hold {held[0]} of {held[1]}"
            )


def _refuse_csv(stream: BinaryIO) -> Prefixed:
    """The stream, after refusing promptfoo's CSV output with a pointer to the JSON output."""
    head = read_exactly(stream, 4096)
    first = head.lstrip()[:1]
    if first and first not in b"{[":
        if b"," in head.split(b"\n", 1)[0]:  # a header row of columns, not a JSON document
            raise EvidenceError(CSV_REFUSAL)
    return Prefixed(head, stream)


def parse_json(stream: BinaryIO) -> ParsedEvidence:
    """The results.json of ``promptfoo eval -o``, any summary version."""
    results = _Results()
    header: dict[str, Any] = {}
    for path, value in select(_refuse_csv(stream), _JSON_PATHS, "promptfoo results"):
        if path in _RESULT_PATHS:
            results.add(value, f"result {results.seen + 1}")
        else:
            header.setdefault(_HEADER_PATHS[path], value)
    if results.seen == 0:
        raise EvidenceError("no promptfoo results: expected results.results[] (or results[] in old files)")
    results.check_stats(header.get("stats"))
    _check_prompts(header.get("prompts"), results)
    created = timestamp(header.get("timestamp"), "timestamp") or timestamp(header.get("created"), "metadata.evaluationCreatedAt")
    provenance = Provenance(
        tool="promptfoo", tool_version=text(header.get("tool_version")), model=results.model(), created_at=created
    )
    notes = () if header.get("stats") is not None else ("the file has no stats: its results cannot be checked against its own totals",)
    return build_evidence("promptfoo", provenance, results.groups(), notes + results.notes())


def parse_jsonl(stream: BinaryIO) -> ParsedEvidence:
    """The JSONL output of ``promptfoo eval -o results.jsonl``: one result per line."""
    results = _Results()
    for lineno, value in iter_json_lines(stream, "promptfoo JSONL"):
        results.add(value, f"line {lineno}")
    if results.seen == 0:
        raise EvidenceError("no promptfoo results: the file has no result lines")
    provenance = Provenance(tool="promptfoo", model=results.model())
    return build_evidence("promptfoo-jsonl", provenance, results.groups(), (JSONL_NOTE, *results.notes()))


def parse_csv(stream: BinaryIO) -> ParsedEvidence:
    """``promptfoo eval -o results.csv``: refused, with the output to use instead."""
    raise EvidenceError(CSV_REFUSAL)
