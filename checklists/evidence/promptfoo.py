"""promptfoo results: the JSON of ``promptfoo eval -o results.json`` and its JSONL output.

JSON (src/util/output.ts ``createOutputData``): ``{evalId, results: {version, timestamp,
prompts, results: [EvaluateResult...], stats}, config, shareableUrl, metadata:
{promptfooVersion, evaluationCreatedAt, ...}}``. Older files are the summary itself at the top:
``{version: 2|3, timestamp, results: [...], table|prompts, stats}``.
JSONL (``-o results.jsonl``): one EvaluateResult per line, nothing else.

An EvaluateResult carries ``success`` (bool), ``score``, ``namedScores``, ``failureReason``
(0 none, 1 assertion, 2 error) and ``provider: {id, label}``. Errors are failures.

Memory: the JSON document is streamed (ijson); only one result is held at a time. JSONL is read
one line at a time (a line is capped at 64 MiB).
"""

from __future__ import annotations

from typing import Any, BinaryIO

from promotion_gate.checklists.evidence._common import Mean, iter_json_lines, number, rate_metric, text, timestamp
from promotion_gate.checklists.evidence._jsonstream import ITEM, select
from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError, Metric, ParsedEvidence, Provenance

MAX_PROVIDERS = 1000
MAX_NAMED_SCORES = 1000

_RESULT_PATHS = frozenset({("results", ITEM), ("results", "results", ITEM)})
_HEADER_PATHS = {
    ("timestamp",): "timestamp",
    ("results", "timestamp"): "timestamp",
    ("metadata", "evaluationCreatedAt"): "created",
    ("metadata", "promptfooVersion"): "tool_version",
}
_JSON_PATHS = _RESULT_PATHS | frozenset(_HEADER_PATHS)


class _Tally:
    """Pass/fail counts, score means and providers over a stream of EvaluateResults."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.seen = 0
        self.score = Mean()
        self.named: dict[str, Mean] = {}
        self.providers: set[str] = set()

    def add(self, result: Any, where: str) -> None:
        if not isinstance(result, dict):
            raise EvidenceError(f"{where} is {type(result).__name__}, not a result object")
        self.seen += 1
        success = result.get("success")
        if not isinstance(success, bool):
            raise EvidenceError(f"{where}: 'success' is {success!r}, not true or false")
        if success:
            self.passed += 1
        else:
            self.failed += 1
        score = number(result.get("score"), f"{where}: score")
        if score is not None:
            self.score.add(score)
        self._add_named(result.get("namedScores"), where)
        self._add_provider(result.get("provider"), where)

    def _add_named(self, named: Any, where: str) -> None:
        if not isinstance(named, dict):
            return
        for name, value in named.items():
            score = number(value, f"{where}: namedScores[{name!r}]")
            if score is None:
                continue
            if name not in self.named and len(self.named) >= MAX_NAMED_SCORES:
                raise EvidenceError(f"more than {MAX_NAMED_SCORES} distinct namedScores")
            self.named.setdefault(name, Mean()).add(score)

    def _add_provider(self, provider: Any, where: str) -> None:
        ident = text(provider.get("id")) if isinstance(provider, dict) else text(provider)
        if ident is None or ident in self.providers:
            return
        if len(self.providers) >= MAX_PROVIDERS:
            raise EvidenceError(f"{where}: more than {MAX_PROVIDERS} distinct providers")
        self.providers.add(ident)

    def metrics(self) -> dict[str, Metric]:
        if self.seen == 0:
            raise EvidenceError("no results: the file records no test outcome")
        out = {PASS_RATE: rate_metric(self.passed, self.failed)}
        if self.score.n:
            out["score"] = self.score.metric("score")
        for name in sorted(self.named):
            out[f"score:{name}"] = self.named[name].metric(f"score:{name}")
        return out

    def model(self) -> str | None:
        return ",".join(sorted(self.providers)) or None


def parse_json(stream: BinaryIO) -> ParsedEvidence:
    """The results.json of ``promptfoo eval -o``, any summary version."""
    tally = _Tally()
    header: dict[str, Any] = {}
    for path, value in select(stream, _JSON_PATHS, "promptfoo results"):
        if path in _RESULT_PATHS:
            tally.add(value, f"result {tally.seen + 1}")
        else:
            header.setdefault(_HEADER_PATHS[path], value)
    if tally.seen == 0:
        raise EvidenceError("no promptfoo results: expected results.results[] (or results[] in old files)")
    created = timestamp(header.get("timestamp"), "timestamp") or timestamp(header.get("created"), "metadata.evaluationCreatedAt")
    provenance = Provenance(
        tool="promptfoo", tool_version=text(header.get("tool_version")), model=tally.model(), created_at=created
    )
    return ParsedEvidence(format="promptfoo", metrics=tally.metrics(), provenance=provenance)


def parse_jsonl(stream: BinaryIO) -> ParsedEvidence:
    """The JSONL output of ``promptfoo eval -o results.jsonl``: one result per line."""
    tally = _Tally()
    for lineno, value in iter_json_lines(stream, "promptfoo JSONL"):
        tally.add(value, f"line {lineno}")
    if tally.seen == 0:
        raise EvidenceError("no promptfoo results: the file has no result lines")
    provenance = Provenance(tool="promptfoo", model=tally.model())
    return ParsedEvidence(format="promptfoo-jsonl", metrics=tally.metrics(), provenance=provenance)
