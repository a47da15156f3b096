"""PG-COST-001 against a team in a hurry or an insider: the support-assistant example at a volume
that breaks its $5,000 monthly budget, and the evidence edits that tried to make it pass by
diluting the candidate's cost per request (results of another model, requests without usage or
with zero tokens, a cheap figure beside the real ones, a drill file, summaries of another tool).

Every row must still be judged on the candidate model's own requests that carried usage: the
same "fail, projected $84,000.00/month" as the untouched example, or "cost unknown" where the
candidate has no usage of its own, never a cheap estimate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from promotion_gate.checklists.checklist import evaluate
from promotion_gate.checklists.policy import parse_policy
from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
from tests.conftest import NOW, ROOT

SYSTEM = "support-assistant"
CANDIDATE = "anthropic:messages:claude-sonnet-4-20250514"
OTHER = "openai:chat:gpt-4o-mini-2024-07-18"
VOLUME = 100_000_000
BLOCKED = "projected $84,000.00/month (100,000,000 requests) > budget $5,000.00"
FLOOD = 20_000


def result(provider: str | None, n: int, **fields) -> dict:
    # tests of their own, as promptfoo writes them: an index past the example's 400 and their own vars
    r = {"id": f"flood-{n}", "promptIdx": 0, "testIdx": 1000 + n, "vars": {"question": f"flood question {n}"}, "success": True,
         "score": 1, "failureReason": 0} | fields
    if provider is not None:
        r["provider"] = {"id": provider}
    return r


def flood(provider: str | None, count: int = FLOOD, **fields):
    """Append ``count`` passing results of ``provider`` to the example's promptfoo file, with the
    stats and prompts[] entries that keep it self-consistent (so the parser accepts it)."""
    def edit(doc: dict) -> None:
        results = doc["results"]
        results["results"] += [result(provider, i, **fields) for i in range(count)]
        results["stats"]["successes"] += count
        if provider is not None and provider != CANDIDATE:
            results["prompts"].append({"raw": "{{question}}", "label": "main", "provider": provider,
                                       "metrics": {"score": count, "testPassCount": count, "testFailCount": 0, "testErrorCount": 0}})
        elif provider == CANDIDATE:
            results["prompts"][0]["metrics"]["testPassCount"] += count
    return edit


def strip_usage(doc: dict) -> None:
    for r in doc["results"]["results"]:
        r["response"].pop("tokenUsage", None)


def cost_on_first(cost: float):
    def edit(doc: dict) -> None:
        doc["results"]["results"][0]["cost"] = cost
    return edit


def cost_on_all(cost: float):
    def edit(doc: dict) -> None:
        for r in doc["results"]["results"]:
            r["cost"] = cost
    return edit


def both(*edits):
    def edit(doc: dict) -> None:
        for e in edits:
            e(doc)
    return edit


def promptfoo_file(provider: str, count: int = FLOOD, **fields) -> dict:
    results = [result(provider, i, **fields) for i in range(count)]
    return {"evalId": "extra", "results": {"version": 3, "timestamp": NOW.isoformat(), "results": results,
                                           "stats": {"successes": count, "failures": 0, "errors": 0},
                                           "prompts": [{"raw": "{{q}}", "label": "main", "provider": provider,
                                                        "metrics": {"testPassCount": count, "testFailCount": 0, "testErrorCount": 0}}]}}


def generic_file(model: str | None, value: float, n: int) -> dict:
    doc = {"tool": "acme-harness", "created_at": NOW.isoformat(),
           "metrics": [{"metric": "pass_rate", "value": 1.0, "n": n, "passed": n, "failed": 0},
                       {"metric": "cost_per_request_usd", "value": value, "n": n, "higher_is_better": False}]}
    return doc | ({"model": model} if model else {})


def deepeval_file(model: str, cost: float, cases: int = 50) -> dict:
    case = {"name": "c", "input": "q", "actualOutput": "a", "success": True,
            "metricsData": [{"name": "Answer Relevancy", "threshold": 0.7, "success": True, "score": 0.9, "evaluationModel": "gpt-4.1"}]}
    return {"testFile": "t.py", "testCases": [case] * cases, "testPassed": cases, "testFailed": 0,
            "evaluationCost": cost, "hyperparameters": {"model": model}}


def evaluation(fmt: str, doc: dict, name: str = "extra", path: str = "evals/extra.json"):
    """A second evaluation in the manifest, with its result file."""
    def add(folder: Path, manifest: dict) -> None:
        (folder / path).write_text(json.dumps(doc))
        manifest["evaluations"].append({"name": name, "format": fmt, "path": path, "thresholds": {"pass_rate": {"min": 0.97}}})
    return add


def drill(fmt: str, doc: dict, path: str = "evals/drill.json"):
    """The fallback drill replaced with a file of another format."""
    def add(folder: Path, manifest: dict) -> None:
        (folder / path).write_text(json.dumps(doc))
        manifest["fallback"]["drill"] = {"format": fmt, "path": path}
    return add


def cost_item(tmp_path, promptfoo_edit=None, add=None, volume=VOLUME):
    folder = tmp_path / "repo" / "ai-systems" / SYSTEM
    shutil.copytree(ROOT / "examples" / "repo" / "ai-systems" / SYSTEM, folder)
    stamp = NOW.strftime("%Y-%m-%dT%H:%M:%S.000Z").encode()
    for path in (folder / "evals").iterdir():
        path.write_bytes(path.read_bytes().replace(b"2026-11-20T09:30:00.000Z", stamp))
    if promptfoo_edit is not None:
        pf = folder / "evals" / "promptfoo.json"
        doc = json.loads(pf.read_text())
        promptfoo_edit(doc)
        pf.write_text(json.dumps(doc))
    manifest = yaml.safe_load((folder / "promotion.yaml").read_text())
    manifest["expected_monthly_requests"] = volume
    if add is not None:
        add(folder, manifest)
    (folder / "promotion.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    policy = parse_policy((ROOT / "checklists" / "policy" / "policy.yaml").read_bytes(), "policy.yaml")
    tree = WorkingTree(tmp_path / "repo")
    cl = evaluate(read_candidate(tree, SYSTEM, "0" * 40, baseline=tree), policy, NOW)
    results = {r.id: r for r in cl.results}
    return results["PG-COST-001"], results


# (promptfoo edit, extra file, outcome, words in the reason)
ROWS = {
    "the example as committed": (None, None, "fail", BLOCKED),
    # results of another model
    "another model's results without usage (the reviewer's repro)": (flood(OTHER), None, "fail", BLOCKED),
    "another model's results with one token each": (flood(OTHER, response={"tokenUsage": {"total": 1, "prompt": 1, "completion": 0}}), None, "fail", BLOCKED),
    "another model's results reporting a tiny cost": (flood(OTHER, cost=1e-9), None, "fail", BLOCKED),
    "results that name no model beside the candidate's": (flood(None, response={"tokenUsage": {"total": 1, "prompt": 1, "completion": 0}}), None, "fail", BLOCKED),
    "a second evaluation file of another model": (None, evaluation("promptfoo", promptfoo_file(OTHER, response={"tokenUsage": {"total": 1, "prompt": 1, "completion": 0}})), "fail", BLOCKED),
    # the candidate's own requests that carry nothing
    "the candidate's results without usage": (flood(CANDIDATE), None, "fail", BLOCKED),
    "the candidate's results with zero tokens": (flood(CANDIDATE, response={"tokenUsage": {"total": 0, "prompt": 0, "completion": 0}}), None, "fail", BLOCKED),
    "the candidate's results with zero tokens and a zero cost": (flood(CANDIDATE, cost=0, response={"tokenUsage": {"total": 0, "prompt": 0, "completion": 0}}), None, "fail", BLOCKED),
    "the candidate's results with a cost and no tokens": (flood(CANDIDATE, cost=1e-9), None, "fail", BLOCKED),
    "a tiny cost on one real result": (cost_on_first(1e-9), None, "fail", BLOCKED),
    "a zero cost on every real result": (cost_on_all(0), None, "fail", BLOCKED),
    "a second candidate file whose requests carry zero tokens": (None, evaluation("promptfoo", promptfoo_file(CANDIDATE, response={"tokenUsage": {"total": 0, "prompt": 0, "completion": 0}})), "fail", BLOCKED),
    # the drill, and summaries of other tools
    "a drill file of the candidate with one token per request": (None, drill("promptfoo", promptfoo_file(CANDIDATE, response={"tokenUsage": {"total": 1, "prompt": 1, "completion": 0}})), "fail", BLOCKED),
    "a generic summary of another model at a tiny cost": (None, evaluation("generic-json", generic_file("gpt-4o-mini-2024-07-18", 1e-9, 10_000_000)), "fail", BLOCKED),
    "a generic summary saying the candidate is free": (None, evaluation("generic-json", generic_file("claude-sonnet-4-20250514", 0.0, 10_000_000)), "fail", BLOCKED),
    "a generic summary of the candidate at a tiny cost": (None, evaluation("generic-json", generic_file("claude-sonnet-4-20250514", 1e-9, 10_000_000)), "fail", BLOCKED),
    "a deepeval run naming the candidate, with the judge's tiny cost": (None, evaluation("deepeval", deepeval_file("claude-sonnet-4-20250514", 1e-6)), "fail", BLOCKED),
    # no usage of the candidate's own: unknown, never cheap
    "only another model carries usage": (both(strip_usage, flood(OTHER, response={"tokenUsage": {"total": 1, "prompt": 1, "completion": 0}})), None, "warn", "cost unknown"),
    "only the drill carries usage": (strip_usage, drill("promptfoo", promptfoo_file(CANDIDATE, response={"tokenUsage": {"total": 1, "prompt": 1, "completion": 0}})), "warn", "cost unknown"),
    "only a deepeval judge's cost": (strip_usage, evaluation("deepeval", deepeval_file("claude-sonnet-4-20250514", 1e-6)), "warn", "cost unknown"),
}


@pytest.mark.parametrize("promptfoo_edit,add,outcome,reason", list(ROWS.values()), ids=list(ROWS))
def test_the_budget_is_not_diluted(tmp_path, promptfoo_edit, add, outcome, reason):
    item, _ = cost_item(tmp_path, promptfoo_edit, add)
    assert item.outcome.value == outcome and reason in item.reason, item.reason
    if outcome == "fail":
        assert item.facts["cost"]["requests"] == 400 and item.facts["cost"]["price_key"] == "anthropic/claude-sonnet-4"


# the happy paths the fix keeps: reported costs, a second real file, volumes within budget
HAPPY = {
    "within budget at the example's own volume": (None, None, 150_000, "pass", "projected $126.00/month"),
    "the candidate's reported cost on every result": (cost_on_all(0.001), None, 1_000_000, "pass", "cost per request $0.00100 (reported), projected $1,000.00/month"),
    "a second real file of the candidate": (None, evaluation("promptfoo", promptfoo_file(CANDIDATE, 100, response={"tokenUsage": {"total": 120, "prompt": 80, "completion": 40}})), 150_000, "pass", "projected $126.00/month"),
    "the candidate's generic summary with every file reporting cost": (cost_on_all(0.001), evaluation("generic-json", generic_file("claude-sonnet-4-20250514", 0.003, 400)), 1_000_000, "pass", "cost per request $0.00200 (reported)"),
}


@pytest.mark.parametrize("promptfoo_edit,add,volume,outcome,reason", list(HAPPY.values()), ids=list(HAPPY))
def test_real_cost_is_still_judged(tmp_path, promptfoo_edit, add, volume, outcome, reason):
    item, _ = cost_item(tmp_path, promptfoo_edit, add, volume)
    assert item.outcome.value == outcome and reason in item.reason, item.reason
