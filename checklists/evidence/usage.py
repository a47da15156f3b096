"""Token usage and cost carried by evidence files: what one evaluated request cost.

Read from the same bytes as the metrics (the shell opens the file a second time at the same
commit), so the parsers stay about judgment and this module about spend. Shapes:

- promptfoo (JSON and JSONL): each EvaluateResult's ``cost`` (USD) and
  ``response.tokenUsage: {total, prompt, completion, cached}``; one result is one request.
- Inspect (``.json`` and the ``header.json`` of an ``.eval``): ``stats.model_usage: {model:
  {input_tokens, output_tokens, total_tokens, input_tokens_cache_read, ..., total_cost}}``;
  requests are ``results.completed_samples`` (else ``total_samples``).
- DeepEval: ``evaluationCost`` (USD, where the run records it) over the test cases. It is what
  deepeval's metrics spent on their judge (``evaluationModel``), not what the system under test
  cost, so it is read but attributed to no model (``by_model`` stays empty).
- generic JSON: a metric ``cost_per_request_usd`` (its ``n`` is the request count), of the file's
  ``model``.

``by_model`` keys are the model ids exactly as the format's parser reads them (the ``raw`` of its
:class:`ModelGroup`), :data:`UNNAMED` for results that name none, so the cost items can take the
candidate's own usage with the same selection as the evaluation items (checklists/cost.py). Per
model it counts the requests that carried usage: a token (``requests_with_tokens``), a cost above
zero (``requests_with_cost``), either (``requests_with_usage``). A request without tokens and
without a positive cost is evidence of nothing spent, and is never averaged in.

Files read whole are read with the cap of their format's parser, after the byte-order mark the
parser also ignores. :func:`extract_usage` returns None for a format or a file that carries no
usage. A negative, non-finite or non-numeric cost or token count is an :class:`EvidenceError`:
spend is evidence, so bad spend figures are unusable input, never "free".
"""

import math
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.evidence._common import Prefixed, iter_json_lines, json_object, parse_json, read_capped, read_json, skip_bom, text
from promotion_gate.checklists.evidence._jsonstream import ITEM, select
from promotion_gate.checklists.evidence.base import EvidenceError

MAX_MODELS = 1000
UNNAMED = "unknown"
"""The ``by_model`` key of results that name no model."""


class ModelUsage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(default=0, ge=0, description="every request of the model, with usage or not")
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    requests_with_usage: int = Field(default=0, ge=0, description="requests that used a token or report a cost above zero")
    requests_with_tokens: int = Field(default=0, ge=0, description="requests that used at least one token")
    requests_with_cost: int = Field(default=0, ge=0, description="requests that report a cost above zero")


class Usage(BaseModel):
    """Requests evaluated, tokens spent and (where the tool says) what they cost, in USD."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(ge=0)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cost_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="reported by the tool")
    by_model: dict[str, ModelUsage] = Field(default_factory=dict)
    source: str = Field(description="which field of the file the figures came from")


def _amount(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_decimal(value):
        raise EvidenceError(f"{where} is {value!r}, not a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise EvidenceError(f"{where} is {value!r}: a cost must be a finite number >= 0")
    return number


def _tokens(value: Any, where: str) -> int:
    if value is None:
        return 0
    number = _amount(value, where)
    assert number is not None  # _amount returns None only for None, handled above
    if number != int(number):
        raise EvidenceError(f"{where} is {value!r}, not a whole number of tokens")
    return int(number)


def _is_decimal(value: Any) -> bool:
    return type(value).__name__ == "Decimal"  # ijson yields Decimal for non-integral numbers


class _Totals:
    def __init__(self) -> None:
        self.requests = self.input = self.output = 0
        self.cost: float | None = None
        self.models: dict[str, dict[str, Any]] = {}

    def add(self, model: str | None, requests: int, inp: int, out: int, cost: float | None) -> None:
        """``requests`` requests of ``model`` that spent ``inp`` + ``out`` tokens and ``cost`` between them."""
        self.requests += requests
        self.input += inp
        self.output += out
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost
        key = model or UNNAMED
        if key not in self.models and len(self.models) >= MAX_MODELS:
            raise EvidenceError(f"usage names more than {MAX_MODELS} models")
        m = self.models.setdefault(key, {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": None,
                                         "requests_with_usage": 0, "requests_with_tokens": 0, "requests_with_cost": 0})
        m["requests"] += requests
        m["input_tokens"] += inp
        m["output_tokens"] += out
        if cost is not None:
            m["cost_usd"] = (m["cost_usd"] or 0.0) + cost
        tokens, paid = inp + out > 0, bool(cost)  # a zero cost or zero tokens: nothing spent, no usage
        m["requests_with_tokens"] += requests if tokens else 0
        m["requests_with_cost"] += requests if paid else 0
        m["requests_with_usage"] += requests if tokens or paid else 0

    def usage(self, source: str) -> Usage | None:
        if self.requests == 0 and self.input == 0 and self.output == 0 and self.cost is None:
            return None
        by_model = {k: ModelUsage(**v) for k, v in sorted(self.models.items())}
        return Usage(requests=self.requests, input_tokens=self.input, output_tokens=self.output,
                     cost_usd=self.cost, by_model=by_model, source=source)


def _promptfoo_result(totals: _Totals, result: Any, where: str) -> bool:
    """Add one EvaluateResult; True when it carried any usage."""
    if not isinstance(result, dict):
        return False
    cost = _amount(result.get("cost"), f"{where}: cost")
    response = json_object(result.get("response"))
    usage = json_object(response.get("tokenUsage"))
    prompt, completion = _tokens(usage.get("prompt"), f"{where}: tokenUsage.prompt"), _tokens(usage.get("completion"), f"{where}: tokenUsage.completion")
    total = _tokens(usage.get("total"), f"{where}: tokenUsage.total")
    if total and not (prompt or completion):  # only a total: count it as input (priced as the cheaper side is a guess; input is the usual bulk)
        prompt = total
    provider = result.get("provider")
    model = text(provider.get("id")) if isinstance(provider, dict) else text(provider)  # as the parser groups it
    totals.add(model, 1, prompt, completion, cost)
    return cost is not None or bool(usage)


_PROMPTFOO_PATHS = frozenset({("results", ITEM), ("results", "results", ITEM)})


def _promptfoo_json(stream: BinaryIO) -> Usage | None:
    totals, carried = _Totals(), False
    for n, (_, result) in enumerate(select(stream, _PROMPTFOO_PATHS, "promptfoo results"), start=1):
        carried |= _promptfoo_result(totals, result, f"result {n}")
    return totals.usage("promptfoo results[].cost, response.tokenUsage") if carried else None


def _promptfoo_jsonl(stream: BinaryIO) -> Usage | None:
    totals, carried = _Totals(), False
    for lineno, result in iter_json_lines(stream, "promptfoo JSONL"):
        carried |= _promptfoo_result(totals, result, f"line {lineno}")
    return totals.usage("promptfoo cost, response.tokenUsage") if carried else None


def _inspect_log(stream: BinaryIO) -> Any:
    from promotion_gate.checklists.evidence import inspect_ai

    magic = b"PK\x03\x04"
    head = b""
    while len(head) < len(magic) and (chunk := stream.read(len(magic) - len(head))):
        head += chunk
    if head == magic:  # the .eval zip: its header.json, read with the parser's own caps
        return inspect_ai._read_eval_zip(head, stream)
    data = read_capped(Prefixed(head, stream), inspect_ai.MAX_JSON_BYTES, "Inspect .json log", inspect_ai.JSON_HINT)
    return parse_json(data, "Inspect log", allow_nan=True)


def _inspect(stream: BinaryIO) -> Usage | None:
    log = _inspect_log(stream)
    if not isinstance(log, dict):
        return None
    stats = json_object(log.get("stats"))
    model_usage = stats.get("model_usage")
    if not isinstance(model_usage, dict) or not model_usage:
        return None
    results = json_object(log.get("results"))
    requests = _tokens(results.get("completed_samples", results.get("total_samples")), "results.completed_samples")
    totals = _Totals()
    for model, mu in sorted(model_usage.items()):
        if not isinstance(mu, dict):
            raise EvidenceError(f"stats.model_usage[{model!r}] is not an object")
        where = f"stats.model_usage[{model!r}]"
        inp = _tokens(mu.get("input_tokens"), f"{where}.input_tokens")
        inp += _tokens(mu.get("input_tokens_cache_read"), f"{where}.input_tokens_cache_read")
        inp += _tokens(mu.get("input_tokens_cache_write"), f"{where}.input_tokens_cache_write")
        out = _tokens(mu.get("output_tokens"), f"{where}.output_tokens") + _tokens(mu.get("reasoning_tokens"), f"{where}.reasoning_tokens")
        totals.add(str(model), requests, inp, out, _amount(mu.get("total_cost"), f"{where}.total_cost"))
    totals.requests = requests  # every model served the same samples: the file's requests are counted once
    return totals.usage("Inspect stats.model_usage")


def _deepeval(stream: BinaryIO) -> Usage | None:
    from promotion_gate.checklists.evidence import deepeval

    doc = read_json(stream, "deepeval test run", cap=deepeval.MAX_BYTES, allow_nan=True)
    run = doc.get("testRunData", doc) if isinstance(doc, dict) else None
    if not isinstance(run, dict) or run.get("evaluationCost") is None:
        return None
    cost = _amount(run.get("evaluationCost"), "evaluationCost")
    cases = [c for key in ("testCases", "conversationalTestCases") for c in (run.get(key) or []) if isinstance(c, dict)]
    # the judge's spend (deepeval's metrics), not the system under test's: the file's figure, no model's own
    return Usage(requests=len(cases), input_tokens=0, output_tokens=0, cost_usd=cost,
                 source="DeepEval evaluationCost (the judge's cost, no model's own)")


def _generic(stream: BinaryIO) -> Usage | None:
    from promotion_gate.checklists.evidence import generic

    doc = read_json(stream, "generic metrics JSON", cap=generic.MAX_BYTES)
    metrics = doc.get("metrics") if isinstance(doc, dict) else None
    for m in metrics if isinstance(metrics, list) else []:
        if isinstance(m, dict) and m.get("metric") == "cost_per_request_usd":
            per_request = _amount(m.get("value"), "metric cost_per_request_usd: value")
            n = _tokens(m.get("n"), "metric cost_per_request_usd: n") or 1
            totals = _Totals()
            totals.add(text(doc.get("model")), n, 0, 0, (per_request or 0.0) * n)  # the model as the parser reads it
            return totals.usage("generic metric cost_per_request_usd")
    return None


EXTRACTORS = {
    "promptfoo": _promptfoo_json,
    "promptfoo-jsonl": _promptfoo_jsonl,
    "inspect": _inspect,
    "deepeval": _deepeval,
    "generic-json": _generic,
}


def extract_usage(fmt: str, stream: BinaryIO) -> Usage | None:
    """The usage a file of format ``fmt`` carries, or None; raises EvidenceError for bad figures."""
    extractor = EXTRACTORS.get(fmt)
    if extractor is None:
        return None
    try:
        return extractor(skip_bom(stream))  # a leading byte-order mark, as every parser ignores it
    except EvidenceError:
        raise
    except Exception as exc:  # the boundary: bad input never escapes as anything else
        raise EvidenceError(f"could not read usage from {fmt}: {type(exc).__name__}: {exc}") from exc
