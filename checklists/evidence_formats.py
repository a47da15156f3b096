"""The evidence formats a manifest may name, each with what writes it: the one list the manifest
schema, `policy show` and docs/evidence.md draw on. Pure data, no parser imported (so the
schema and the manifest model cost nothing extra to load)."""

from __future__ import annotations

FORMATS: dict[str, str] = {
    "junit": "JUnit XML, as `pytest --junitxml=results.xml` (or any JUnit reporter) writes it; pass_rate over executed tests",
    "promptfoo": "promptfoo's JSON export, `promptfoo eval -o results.json`; per-result success, split by provider",
    "promptfoo-jsonl": "promptfoo's JSONL export, `promptfoo eval -o results.jsonl`; one result per line",
    "promptfoo-csv": "promptfoo's CSV export, `promptfoo eval -o results.csv` (prefer -o results.json: it carries the provider)",
    "lm-eval": "EleutherAI lm-evaluation-harness results JSON, `lm_eval ... --output_path out/ --log_samples`",
    "inspect": "an Inspect AI log, `inspect eval task.py --model provider/model` (.eval or .json under ./logs)",
    "deepeval": "a DeepEval test run JSON, `deepeval test run test_x.py` (the saved test run)",
    "openai-evals": "an OpenAI evals record, `oaieval <model> <eval> --record_path record.jsonl`",
    "generic-json": "the gate's own JSON: {metrics: [{metric, value, n, passed, failed, stderr}], model, created_at, ...}",
    "generic-csv": "the gate's own CSV: columns metric,value,n,passed,failed[,stderr]",
}


def format_json_schema() -> dict:
    """JSON Schema for a manifest's `format` field: every format, each with its description."""
    return {"oneOf": [{"const": name, "description": text} for name, text in FORMATS.items()]}
