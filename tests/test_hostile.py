"""Hostile cases (issue 9): a team in a hurry, a careless operator or an insider trying to get a
system past the gate. Each case is named by the outcome it expects (tier__outcome__what) and
asserts the `check` exit code and the EXACT sets of failing (blocking) and inconclusive item ids.

Fixtures are built in tmp_path from the bundled example repository: one change per case to the
manifest, the evidence (written in the tools' real shapes) or the policy.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path, PurePosixPath
from typing import Callable

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promotion_gate.checklists.candidate import LockedEvidence, ProductionLock
from promotion_gate.checklists.checklist import Checklist, evaluate
from promotion_gate.checklists.decision import PromotionRequest, Verdict, decide
from promotion_gate.checklists.policy import PolicyError, parse_policy
from promotion_gate.checklists.provenance import select_candidate
from promotion_gate.checklists.results import Outcome
from promotion_gate.checklists.signoff import Action, Click, RefusedClick, Signoff, judge, tally
from promotion_gate.checklists.waivers import requests_of
from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
from promotion_gate.config.policy_source import load_policy
from tests.conftest import NOW, ROOT

EXAMPLES = ROOT / "examples" / "repo"
POLICY_TEXT = (ROOT / "checklists" / "policy" / "policy.yaml").read_text()
POLICY = load_policy()
STAMP = "2026-11-20T09:30:00.000Z"
LOW, HIGH = "helpdesk-summarizer", "support-assistant"
CANDIDATE_LOW = "openai:chat:gpt-4o-mini-2024-07-18"
CANDIDATE_HIGH = "anthropic:messages:claude-sonnet-4-20250514"
OTHER_FAMILIES = ("PG-COST-", "PG-RECERT-")  # other rooms' items, asserted in their own tests


# --- building fixtures --------------------------------------------------------------------------


class Tree:
    """A copy of the example repository; helpers to change one thing in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(EXAMPLES / "ai-systems", root / "ai-systems")
        self.policy_text = POLICY_TEXT

    def folder(self, system: str) -> Path:
        return self.root / "ai-systems" / system

    def manifest(self, system: str) -> dict:
        return yaml.safe_load((self.folder(system) / "promotion.yaml").read_text())

    def write_manifest(self, system: str, doc: dict) -> None:
        (self.folder(system) / "promotion.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))

    def edit(self, system: str, change: Callable[[dict], None]) -> None:
        doc = self.manifest(system)
        change(doc)
        self.write_manifest(system, doc)

    def write(self, system: str, rel: str, text: str) -> None:
        path = self.folder(system) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def policy(self, change: Callable[[dict], None]) -> None:
        doc = yaml.safe_load(self.policy_text)
        change(doc)
        self.policy_text = yaml.safe_dump(doc, sort_keys=False)


def promptfoo(*groups: tuple[str | None, int, int], stamp: str | None = STAMP) -> str:
    """promptfoo's `-o results.json` (results.version 3), one block of results per provider id."""
    results, i = [], 0
    for provider, n, failures in groups:
        for k in range(n):
            ok = k >= failures
            result = {"id": f"r{i}", "promptIdx": 0, "testIdx": k, "prompt": {"raw": f"case {k}", "label": "main"},
                      "vars": {"q": str(k)}, "response": {"output": "x"}, "success": ok, "score": 1.0 if ok else 0.0,
                      "namedScores": {}, "latencyMs": 500, "gradingResult": {"pass": ok, "score": 1.0 if ok else 0.0, "reason": "r"},
                      "failureReason": 0 if ok else 1, "testCase": {"vars": {"q": str(k)}}, "metadata": {}}
            if provider is not None:
                result["provider"] = {"id": provider, "label": ""}
            results.append(result)
            i += 1
    passed = sum(1 for r in results if r["success"])
    body = {"version": 3, "results": results, "prompts": [],
            "stats": {"successes": passed, "failures": len(results) - passed, "errors": 0}}
    meta = {"promptfooVersion": "0.112.5"}
    if stamp:
        body["timestamp"] = stamp
        meta["evaluationCreatedAt"] = stamp
    return json.dumps({"evalId": "eval-x", "results": body, "config": {}, "metadata": meta})


def junit(n: int, failures: int = 0, skipped: int = 0, stamp: str | None = "2026-11-20T09:30:00.000000+00:00") -> str:
    cases = []
    for i in range(n):
        body = "<failure message=\"wrong\">assert False</failure>" if i < failures else (
            "<skipped message=\"quota\">skipped</skipped>" if i < failures + skipped else "")
        cases.append(f'<testcase classname="evals.t" name="test_{i:03d}" time="0.1">{body}</testcase>')
    when = f' timestamp="{stamp}"' if stamp else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0" '
            f'failures="{failures}" skipped="{skipped}" tests="{n}" time="1.0"{when}>' + "".join(cases) + "</testsuite></testsuites>\n")


def lm_eval(metrics: dict[str, float], *, n: int | None = 500, model: str = "gpt-4o-mini-2024-07-18",
            higher_is_better: dict[str, bool] | None = None, task: str = "wikitext") -> str:
    doc = {
        "results": {task: {"alias": task, **{f"{k},none": v for k, v in metrics.items()}}},
        "higher_is_better": {task: higher_is_better or {}},
        "config": {"model": "openai-chat-completions", "model_args": f"model={model}"},
        "date": 1795167000.0,  # 2026-11-20T09:30:00Z
        "lm_eval_version": "0.4.8",
    }
    if n is not None:
        doc["n-samples"] = {task: {"original": n, "effective": n}}
    return json.dumps(doc)


def use_lm_eval(tree: Tree, thresholds: dict, text: str, max_regression: dict | None = None) -> None:
    """The low-tier system's second evaluation becomes an lm-eval run with the given thresholds."""
    tree.write(LOW, "evals/lm_eval.json", text)

    def change(doc):
        ev = doc["evaluations"][1]
        ev.update(format="lm-eval", path="evals/lm_eval.json", thresholds=thresholds)
        if max_regression is not None:
            ev["max_regression"] = max_regression
    tree.edit(LOW, change)


def threshold(system: str, index: int, value) -> Callable[[Tree], None]:
    def change(tree: Tree) -> None:
        tree.edit(system, lambda d: d["evaluations"][index].__setitem__("thresholds", {"pass_rate": value}))
    return change


def waiver(item: str, expires: str, approver: str | None = "nobody in particular") -> dict:
    out = {"item": item, "reason": "we will fix it next sprint, promise", "expires": date.fromisoformat(expires)}
    if approver:
        out["approver"] = approver
    return out


# --- running the core, and the real CLI ----------------------------------------------------------


def run_core(tree: Tree, system: str) -> tuple[int, Checklist | None]:
    try:
        policy = parse_policy(tree.policy_text.encode(), "policy.yaml")
    except PolicyError:
        return 2, None
    wt = WorkingTree(tree.root)
    candidate = read_candidate(wt, system, "0" * 40, baseline=wt)
    checklist = evaluate(candidate, policy, NOW)
    if candidate.manifest is None:
        return 2, checklist
    return (1 if checklist.blocked else 0), checklist


def run_cli(tree: Tree, system: str) -> tuple[int, dict | None]:
    policy = tree.root / "policy.yaml"
    policy.write_text(tree.policy_text)
    out = subprocess.run(
        [sys.executable, "-m", "promotion_gate.cli", "check", str(tree.root), "--system", system,
         "--format", "json", "--policy", str(policy), "--now", NOW.isoformat()],
        capture_output=True, text=True, timeout=120,
    )
    try:
        return out.returncode, json.loads(out.stdout)
    except json.JSONDecodeError:
        return out.returncode, None


def ids(checklist: Checklist, *outcomes: Outcome) -> set[str]:
    return {r.id for r in checklist.results if r.outcome in outcomes and not r.id.startswith(OTHER_FAMILIES)}


# --- the table -----------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    system: str
    change: Callable[[Tree], None]
    exit: int
    failing: set[str] = field(default_factory=set)
    inconclusive: set[str] = field(default_factory=set)
    quorum: dict[str, int] | None = None
    cli: bool = False


def nothing(tree: Tree) -> None:
    pass


def pooled_two_models(system: str, candidate: str, index: int = 0) -> Callable[[Tree], None]:
    def change(tree: Tree) -> None:
        path = tree.manifest(system)["evaluations"][index]["path"]
        tree.write(system, path, promptfoo((candidate, 200, 40), ("openai:chat:gpt-4o-2024-11-20", 200, 0)))
    return change


def evidence_for(system: str, index: int, provider: str, n: int = 400, failures: int = 2) -> Callable[[Tree], None]:
    def change(tree: Tree) -> None:
        tree.write(system, tree.manifest(system)["evaluations"][index]["path"], promptfoo((provider, n, failures)))
    return change


def regression_junit(n: int, failures: int = 0, skipped: int = 0, stamp: str | None = "2026-11-20T09:30:00.000000+00:00"):
    return lambda tree: tree.write(LOW, "evals/junit.xml", junit(n, failures, skipped, stamp))


def extra_junit_evaluation(n: int, failures: int = 0, skipped: int = 0) -> Callable[[Tree], None]:
    def change(tree: Tree) -> None:
        tree.write(HIGH, "evals/extra.xml", junit(n, failures, skipped))
        tree.edit(HIGH, lambda d: d["evaluations"].append({"name": "extra-suite", "format": "junit", "path": "evals/extra.xml",
                                                            "thresholds": {"pass_rate": {"min": 0.95}}}))
    return change


def all_failing_with_waiver(expires: str, item: str = "PG-EVAL-003") -> Callable[[Tree], None]:
    def change(tree: Tree) -> None:
        tree.write(LOW, "evals/promptfoo.json", promptfoo((CANDIDATE_LOW, 80, 60)))
        tree.edit(LOW, lambda d: d.__setitem__("waivers", [waiver(item, expires)]))
    return change


def policy_change(change: Callable[[dict], None]) -> Callable[[Tree], None]:
    return lambda tree: tree.policy(change)


def both(*changes: Callable[[Tree], None]) -> Callable[[Tree], None]:
    def change(tree: Tree) -> None:
        for c in changes:
            c(tree)
    return change


def set_floor(tier: str, metric: str, bound) -> Callable[[dict], None]:
    return lambda p: p["tiers"][tier]["metric_floors"].__setitem__(metric, bound)


def to_medium(tree: Tree) -> None:
    def change(d):
        d["use_case"]["data_classes"] = ["internal", "confidential"]
        d["logging"] = {"prompts": "redacted", "responses": "redacted", "redaction": ["confidential"], "retention_days": 30}
        d["evaluations"][0]["thresholds"] = {"pass_rate": {"min": 0.9}}
    tree.edit(LOW, change)


E1, E2, E3, E4, E5, E6 = (f"PG-EVAL-00{i}" for i in range(1, 7))
CASES = [
    # the examples as they are
    Case("low__pass__example", LOW, nothing, 0, quorum={}, cli=True),
    Case("high__pass__example", HIGH, nothing, 0, quorum={"security": 1, "risk": 1}),
    # 1. numbers are finite and in range
    Case("low__unusable__nan_threshold", LOW, threshold(LOW, 1, math.nan), 2, {"PG-MANIFEST-001"}, cli=True),
    Case("low__unusable__inf_threshold_in_a_bound", LOW, threshold(LOW, 0, {"min": math.inf}), 2, {"PG-MANIFEST-001"}),
    Case("low__unusable__minus_inf_max_bound", LOW, threshold(LOW, 0, {"max": -math.inf}), 2, {"PG-MANIFEST-001"}),
    Case("low__unusable__bool_threshold", LOW, threshold(LOW, 0, True), 2, {"PG-MANIFEST-001"}),
    Case("low__unusable__bound_with_min_and_max", LOW, threshold(LOW, 0, {"min": 0.9, "max": 0.95}), 2, {"PG-MANIFEST-001"}),
    Case("high__unusable__nan_max_regression", HIGH, lambda t: t.edit(HIGH, lambda d: d["evaluations"][0].__setitem__("max_regression", {"pass_rate": math.nan})), 2, {"PG-MANIFEST-001"}, cli=True),
    Case("high__unusable__negative_max_regression", HIGH, lambda t: t.edit(HIGH, lambda d: d["evaluations"][0].__setitem__("max_regression", {"pass_rate": -0.5})), 2, {"PG-MANIFEST-001"}),
    Case("low__blocked__rate_threshold_above_one", LOW, threshold(LOW, 0, {"min": 1.5}), 1, {E2, E3}),
    Case("any__unusable__nan_floor_in_policy", LOW, policy_change(set_floor("low", "pass_rate", {"min": math.nan})), 2, cli=True),
    Case("any__unusable__inf_tolerance_in_policy", LOW, policy_change(lambda p: p["tiers"]["high"]["max_regression"].__setitem__("pass_rate", math.inf)), 2),
    Case("any__unusable__rate_floor_above_one_in_policy", LOW, policy_change(set_floor("medium", "pass_rate", {"min": 1.2})), 2),
    # 2. every metric has a direction; a manifest tightens, never loosens
    Case("low__blocked__threshold_loosens_min_floor", LOW, threshold(LOW, 0, {"min": 0.5}), 1, {E2}),
    Case("low__blocked__bare_threshold_loosens_floor", LOW, threshold(LOW, 0, 0.5), 1, {E2}),
    Case("low__blocked__threshold_turned_into_a_max", LOW, threshold(LOW, 0, {"max": 0.99}), 1, {E2, E3}),
    Case("any__unusable__floor_turned_around_in_policy", LOW, policy_change(set_floor("low", "pass_rate", {"max": 0.8})), 2),
    Case("low__blocked__perplexity_above_its_max", LOW, lambda t: use_lm_eval(t, {"wikitext/word_perplexity": {"max": 10}}, lm_eval({"word_perplexity": 1234.5})), 1, {E3}, cli=True),
    Case("low__blocked__perplexity_bare_threshold_is_a_max", LOW, lambda t: use_lm_eval(t, {"wikitext/word_perplexity": 10}, lm_eval({"word_perplexity": 1234.5})), 1, {E3}),
    Case("low__blocked__perplexity_declared_as_a_min", LOW, lambda t: use_lm_eval(t, {"wikitext/word_perplexity": {"min": 10}}, lm_eval({"word_perplexity": 1234.5})), 1, {E2, E3}),
    Case("low__blocked__bare_threshold_of_unknown_direction", LOW, lambda t: use_lm_eval(t, {"wikitext/house_score": 0.5}, lm_eval({"house_score": 0.9})), 1, {E2, E3}),
    Case("low__blocked__tool_direction_contradicts_bound", LOW, lambda t: use_lm_eval(t, {"wikitext/house_score": {"min": 0.5}}, lm_eval({"house_score": 0.9, "house_score_stderr": 0.01}, higher_is_better={"house_score": False})), 1, {E3}),
    Case("low__blocked__loosened_max_floor", LOW, both(policy_change(set_floor("low", "wikitext/word_perplexity", {"max": 20})), lambda t: use_lm_eval(t, {"wikitext/word_perplexity": {"max": 50}}, lm_eval({"word_perplexity": 12.0, "word_perplexity_stderr": 0.2}))), 1, {E2}),
    Case("low__pass__tightened_max_floor", LOW, both(policy_change(set_floor("low", "wikitext/word_perplexity", {"max": 20})), lambda t: use_lm_eval(t, {"wikitext/word_perplexity": {"max": 15}}, lm_eval({"word_perplexity": 12.0, "word_perplexity_stderr": 0.2}))), 0, quorum={}),
    Case("low__blocked__max_floor_applies_over_a_loose_threshold", LOW, both(policy_change(set_floor("low", "wikitext/word_perplexity", {"max": 20})), lambda t: use_lm_eval(t, {"wikitext/word_perplexity": {"max": 50}}, lm_eval({"word_perplexity": 30.0, "word_perplexity_stderr": 0.2}))), 1, {E2, E3}),
    # 3. every judged metric carries its uncertainty; min_samples per metric
    Case("low__review__metric_without_sample_count", LOW, lambda t: use_lm_eval(t, {"wikitext/acc": {"min": 0.8}}, lm_eval({"acc": 0.9}, n=None)), 0, set(), {E3, E4}, quorum={"platform": 1}),
    Case("low__blocked__metric_without_sample_count_below_bound", LOW, lambda t: use_lm_eval(t, {"wikitext/acc": {"min": 0.8}}, lm_eval({"acc": 0.5}, n=None)), 1, {E3}, {E4}),
    Case("low__review__one_sample_stderr_zero", LOW, lambda t: use_lm_eval(t, {"wikitext/acc": {"min": 0.8}}, lm_eval({"acc": 1.0, "acc_stderr": 0.0}, n=1)), 0, set(), {E3, E4}, quorum={"platform": 1}),
    Case("low__review__single_passing_junit_test", LOW, regression_junit(1), 0, set(), {E3, E4}, quorum={"platform": 1}, cli=True),
    Case("low__blocked__one_pass_199_skipped", LOW, regression_junit(200, 0, 199), 1, {E4}, {E3}),
    Case("high__blocked__one_pass_199_skipped", HIGH, extra_junit_evaluation(200, 0, 199), 1, {E6, E4}, {E3}),
    # the tier's max_skipped_share: a suite whose model tests skipped (no API key in CI) passes on what is left
    Case("low__blocked__the_model_tests_skipped_for_want_of_an_api_key", LOW, regression_junit(239, 0, 150), 1, {E4}, cli=True),
    Case("low__pass__a_few_tests_skipped_within_the_share", LOW, regression_junit(239, 0, 100), 0, quorum={}),
    Case("low__pass__a_policy_without_the_share_judges_no_skips", LOW, both(regression_junit(239, 0, 150),
         policy_change(lambda p: p["tiers"]["low"].pop("max_skipped_share"))), 0, quorum={}),
    Case("any__unusable__yes_as_a_skipped_share_in_policy", LOW, policy_change(lambda p: p["tiers"]["low"].__setitem__("max_skipped_share", True)), 2),
    Case("high__review__enough_samples_for_one_metric_only", HIGH, evidence_for(HIGH, 0, CANDIDATE_HIGH, n=60, failures=0), 0, set(), {E3, E4}, quorum={"security": 1, "risk": 1}),
    # 4. inconclusive always reaches a human, or blocks
    Case("low__blocked__inconclusive_and_no_reviewer_named", LOW, both(regression_junit(1), policy_change(lambda p: p["tiers"]["low"].__setitem__("inconclusive_reviewers", []))), 1, {E3, E4}),
    Case("low__review__item_names_its_own_reviewer", LOW, both(regression_junit(1), policy_change(lambda p: [i.__setitem__("inconclusive_reviewers", ["risk"]) for i in p["items"] if i["id"] in (E3, E4)])), 0, set(), {E3, E4}, quorum={"risk": 1}),
    # 5. provenance is exact; a file with several models is split, never pooled
    Case("low__blocked__two_model_promptfoo_pooled_would_pass", LOW, pooled_two_models(LOW, CANDIDATE_LOW), 1, {E3}, cli=True),
    Case("high__blocked__two_model_promptfoo_pooled_would_pass", HIGH, pooled_two_models(HIGH, CANDIDATE_HIGH), 1, {E3}),
    Case("low__blocked__file_has_no_results_for_the_candidate", LOW, evidence_for(LOW, 0, "openai:chat:gpt-4o-2024-08-06"), 1, {E3, E6}),
    Case("low__blocked__model_id_only_contains_the_candidate", LOW, evidence_for(LOW, 0, "openai:chat:gpt-4o-mini-2024-07-18-ft-evil"), 1, {E3, E6}),
    Case("low__blocked__same_model_other_provider", LOW, evidence_for(LOW, 0, "azure:chat:gpt-4o-mini-2024-07-18"), 1, {E3, E6}),
    Case("high__blocked__model_named_without_version", HIGH, evidence_for(HIGH, 0, "anthropic:messages:claude-sonnet-4"), 1, {E3, E6}),
    Case("high__blocked__file_names_no_model", HIGH, extra_junit_evaluation(200), 1, {E6}),
    Case("low__pass__file_names_no_model_warns", LOW, nothing, 0, quorum={}),
    # 7. freshness has no hole
    Case("high__blocked__undated_drill_evidence", HIGH, lambda t: t.write(HIGH, "evals/fallback-drill.xml", junit(120, 1, stamp=None)), 1, {E1}),
    Case("high__blocked__undated_promptfoo_evidence", HIGH, lambda t: t.write(HIGH, "evals/promptfoo.json", promptfoo((CANDIDATE_HIGH, 400, 2), stamp=None)), 1, {E1}, cli=True),
    Case("medium__blocked__undated_evidence", LOW, both(to_medium, regression_junit(240, 2, 1, stamp=None)), 1, {E1}, {E3}),
    Case("low__pass__undated_evidence_warns", LOW, regression_junit(240, 2, 1, stamp=None), 0, quorum={}),
    # 8. a waiver is a request: written into the manifest it changes nothing
    Case("low__blocked__self_written_waiver_forever", LOW, all_failing_with_waiver("2999-12-31"), 1, {E3}, cli=True),
    Case("low__blocked__self_written_waiver_within_limit", LOW, all_failing_with_waiver("2026-12-10"), 1, {E3}),
    Case("low__blocked__self_written_waiver_already_expired", LOW, all_failing_with_waiver("2026-01-01"), 1, {E3}),
    Case("low__pass__waiver_requested_for_a_passing_item", LOW, lambda t: t.edit(LOW, lambda d: d.__setitem__("waivers", [waiver(E3, "2026-12-10")])), 0, quorum={}),
    Case("any__unusable__policy_makes_data_classes_waivable", LOW, policy_change(lambda p: [i.__setitem__("waivable_by", ["risk"]) for i in p["items"] if i["id"] == "PG-DATA-001"]), 2),
    Case("any__unusable__policy_makes_vendor_waivable", LOW, policy_change(lambda p: [i.__setitem__("waivable_by", ["risk"]) for i in p["items"] if i["id"] == "PG-VENDOR-002"]), 2),
    Case("any__unusable__unknown_waiver_role_in_policy", LOW, policy_change(lambda p: [i.__setitem__("waivable_by", ["interns"]) for i in p["items"] if i["id"] == E3]), 2),
]


# --- the security review's holes (2026-11): rows written before the fixes --------------------------

SENSITIVE_SOURCES = [{"name": "customer-records", "classification": "pii"}, {"name": "payroll", "classification": "financial"}]


def sources(system: str, *added: dict) -> Callable[[Tree], None]:
    """Data sources added under data_sources, their classes NOT listed in use_case.data_classes."""
    return lambda tree: tree.edit(system, lambda d: d["data_sources"].extend(added))


MAIN_PF = "evals/promptfoo.json"
WORSE = (CANDIDATE_LOW, 1000, 80)  # 0.92: clears the 0.85 threshold, but 0.07 below production's 0.99


def production_lock(system: str, *entries: tuple, roles: bool = True) -> Callable[[Tree], None]:
    """A production.lock.json baseline in the system's folder (path, format, metrics, samples[, role] per
    entry: role "evaluation" unless given; ``roles=False``: a lock written before locks said which file was the drill)."""
    def change(tree: Tree) -> None:
        def locked(p, f, m, n, role="evaluation", tolerances=None):
            return LockedEvidence(path=p, format=f, sha256="e" * 64, metrics=m, samples=n, role=role if roles else None,
                                  max_regression=tolerances or {})
        lock = ProductionLock(system=system, source_commit="c" * 40, manifest_sha256="d" * 64, model="openai/gpt-4o-mini@gpt-4o-mini-2024-07-18",
                              evidence=[locked(*entry) for entry in entries],
                              decision_id="x", policy_version="1", policy_digest="f" * 64, promoted_at=NOW - timedelta(days=30))
        tree.write(system, "production.lock.json", lock.model_dump_json())
    return change


LOCKED_JUNIT = ("evals/junit.xml", "junit", {"pass_rate": 237 / 239}, {"pass_rate": 239})  # the example's own results


def regressed(manifest_path: str = MAIN_PF, *, file: str | None = None, locked: str = MAIN_PF, drop_eval: bool = False) -> Callable[[Tree], None]:
    """Production had 0.99 on the main promptfoo evaluation; the candidate has 0.92, with a 0.02 tolerance,
    its file named ``manifest_path`` in the manifest and written at ``file`` (default: the same)."""
    def change(tree: Tree) -> None:
        where = file or manifest_path
        if PurePosixPath(where) != PurePosixPath(MAIN_PF):
            (tree.folder(LOW) / MAIN_PF).unlink()
        tree.write(LOW, where, promptfoo(WORSE))

        def edit(d):
            d["evaluations"][0].update(path=manifest_path, max_regression={"pass_rate": 0.02})
            if drop_eval:
                del d["evaluations"][0]
        tree.edit(LOW, edit)
        production_lock(LOW, (locked, "promptfoo", {"pass_rate": 0.99}, {"pass_rate": 2000}), LOCKED_JUNIT)(tree)
    return change


def shrunk_to(evidence: str | None) -> Callable[[Tree], None]:
    """Production rested on 80 promptfoo cases (77 passed) and 239 JUnit tests; the candidate writes
    ``evidence`` (when given) as its promptfoo results."""
    def change(tree: Tree) -> None:
        if evidence is not None:
            tree.write(LOW, MAIN_PF, evidence)
        production_lock(LOW, (MAIN_PF, "promptfoo", {"pass_rate": 77 / 80}, {"pass_rate": 80}), LOCKED_JUNIT)(tree)
    return change


def production_file_kept_as_the_drill(roles: bool = True, drill_was_locked: bool = False) -> Callable[[Tree], None]:
    """The worse results go to a new file; production's own file stays, as the fallback drill (a drill is
    not compared with production), so nothing the regression check compares is left."""
    def change(tree: Tree) -> None:
        tree.write(LOW, "evals/summary-v2.json", promptfoo(WORSE))
        tree.edit(LOW, lambda d: (d["evaluations"][0].update(path="evals/summary-v2.json", max_regression={"pass_rate": 0.02}),
                                  d.__setitem__("fallback", {"strategy": "human-handoff", "timeout_ms": 5000,
                                                             "drill": {"format": "promptfoo", "path": MAIN_PF}})))
        entries = [(MAIN_PF, "promptfoo", {"pass_rate": 0.99}, {"pass_rate": 2000}, "drill" if drill_was_locked else "evaluation"),
                   LOCKED_JUNIT]
        production_lock(LOW, *entries, roles=roles)(tree)
    return change


def tolerance_dropped_by_the_candidate(lock_says: dict | None) -> Callable[[Tree], None]:
    """Production's lm-eval accuracy was 0.91 with a 0.02 tolerance of its own (the tier sets one for
    pass_rate only); the candidate reports 0.70 and deletes the tolerance from its manifest."""
    def change(tree: Tree) -> None:
        use_lm_eval(tree, {"wikitext/acc": {"min": 0.6}}, lm_eval({"acc": 0.70, "acc_stderr": 0.01}, n=2000))
        production_lock(LOW, (MAIN_PF, "promptfoo", {"pass_rate": 77 / 80}, {"pass_rate": 80}),
                        ("evals/lm_eval.json", "lm-eval", {"wikitext/acc": 0.91}, {"wikitext/acc": 2000}, "evaluation",
                         lock_says))(tree)
    return change


def renamed_with_waiver(tree: Tree) -> None:
    regressed("evals/summary-quality.json")(tree)
    tree.write(LOW, "evals/summary-quality.json", promptfoo((CANDIDATE_LOW, 80, 3)))  # no regression: an honest rename
    tree.edit(LOW, lambda d: d.__setitem__("waivers", [waiver(E5, "2026-12-10")]))


def locked_metric_gone(tree: Tree) -> None:
    """The lm-eval evaluation had acc in production (with a tolerance on it); the candidate no longer reports it."""
    use_lm_eval(tree, {"wikitext/word_perplexity": {"max": 30}}, lm_eval({"word_perplexity": 14.0, "word_perplexity_stderr": 0.1}),
                max_regression={"wikitext/acc": 0.02})
    production_lock(LOW, (MAIN_PF, "promptfoo", {"pass_rate": 77 / 80}, {"pass_rate": 80}),
                    ("evals/lm_eval.json", "lm-eval", {"wikitext/acc": 0.91, "wikitext/word_perplexity": 14.0},
                     {"wikitext/acc": 500, "wikitext/word_perplexity": 500}))(tree)


def manifest_text(system: str, text: str) -> Callable[[Tree], None]:
    return lambda tree: tree.write(system, "promotion.yaml", text)


def evidence_path(system: str, index: int, path: str) -> Callable[[Tree], None]:
    return lambda tree: tree.edit(system, lambda d: d["evaluations"][index].__setitem__("path", path))


def static_fallback_drilled_by(drill_path: str, copy_of: str | None = None) -> Callable[[Tree], None]:
    """The high-tier system falls back to a static response; its 'drill' is ``drill_path``."""
    def change(tree: Tree) -> None:
        if copy_of:
            tree.write(HIGH, drill_path, (tree.folder(HIGH) / copy_of).read_text())
        tree.edit(HIGH, lambda d: d.__setitem__("fallback", {"strategy": "static-response", "timeout_ms": 5000,
                                                             "drill": {"format": "promptfoo", "path": drill_path}}))
    return change


DEEP = "a: " + "[" * 1000 + "]" * 1000 + "\n"
D1, D2, LOG, FB2, FB3 = "PG-DATA-001", "PG-DATA-002", "PG-LOG-001", "PG-FALLBACK-002", "PG-FALLBACK-003"
CASES += [
    # hole 1: the sensitive classes are the union of use_case.data_classes and every source's classification
    Case("medium__blocked__pii_and_financial_sources_not_listed", LOW, sources(LOW, *SENSITIVE_SOURCES), 1, {D1, D2, LOG, E2}, {E3}, cli=True),
    Case("medium__blocked__pii_source_not_listed", LOW, sources(LOW, SENSITIVE_SOURCES[0]), 1, {D2, LOG, E2}, {E3}),
    Case("medium__blocked__pii_source_listed", LOW, both(sources(LOW, SENSITIVE_SOURCES[0]), lambda t: t.edit(LOW, lambda d: d["use_case"]["data_classes"].append("pii"))), 1, {LOG, E2}, {E3}),
    Case("high__blocked__financial_source_not_listed", HIGH, sources(HIGH, SENSITIVE_SOURCES[1]), 1, {D1, D2, LOG, FB2}),
    Case("low__blocked__source_of_an_unknown_class", LOW, sources(LOW, {"name": "vault", "classification": "top-secret"}), 1, {D1}),
    # hole 2: the regression check cannot be stepped around by spelling, renaming or dropping the evaluation
    Case("low__blocked__regression_against_production", LOW, regressed(), 1, {E5}),
    Case("low__blocked__regression_hidden_by_dot_slash_path", LOW, regressed("./evals/promptfoo.json"), 1, {E5}, cli=True),
    Case("low__blocked__regression_hidden_by_double_slash_path", LOW, regressed("evals//promptfoo.json"), 1, {E5}),
    Case("low__blocked__regression_hidden_by_dot_segment", LOW, regressed("evals/./promptfoo.json"), 1, {E5}),
    Case("low__blocked__regression_hidden_by_lock_spelling", LOW, regressed(locked="./evals/promptfoo.json"), 1, {E5}),
    Case("low__blocked__regression_hidden_by_renaming_the_file", LOW, regressed("evals/summary-quality.json"), 1, {E5}, cli=True),
    Case("low__blocked__regression_hidden_by_dropping_the_evaluation", LOW, regressed(drop_eval=True), 1, {E5}),
    Case("low__blocked__locked_metric_no_longer_reported", LOW, locked_metric_gone, 1, {E5}),
    Case("low__blocked__production_tolerance_dropped_by_the_candidate", LOW, tolerance_dropped_by_the_candidate({"wikitext/acc": 0.02}),
         1, {E5}, cli=True),
    # hole 2b: the comparison is like for like: not fewer samples than production's beyond the tier's share
    Case("low__blocked__the_hardest_cases_dropped_for_a_better_rate", LOW, shrunk_to(promptfoo((CANDIDATE_LOW, 50, 0))), 1, {E5}, cli=True),
    Case("low__blocked__failing_tests_skipped_in_the_junit_suite", LOW, both(regression_junit(239, 0, 100), shrunk_to(None)), 1, {E5}),
    Case("low__blocked__shrunk_just_past_the_tiers_share", LOW, shrunk_to(promptfoo((CANDIDATE_LOW, 59, 0))), 1, {E5}),
    Case("low__pass__shrunk_exactly_the_tiers_share", LOW, shrunk_to(promptfoo((CANDIDATE_LOW, 60, 0))), 0, quorum={}),
    Case("low__pass__more_samples_than_production", LOW, shrunk_to(promptfoo((CANDIDATE_LOW, 400, 4))), 0, quorum={}),
    Case("low__blocked__a_policy_that_allows_no_shrink", LOW, both(policy_change(lambda p: p["tiers"]["low"].__setitem__("max_sample_shrink", 0)),
                                                                 shrunk_to(promptfoo((CANDIDATE_LOW, 79, 0)))), 1, {E5}),
    Case("low__blocked__a_policy_without_the_share_allows_none", LOW, both(policy_change(lambda p: p["tiers"]["low"].pop("max_sample_shrink")),
                                                                          shrunk_to(promptfoo((CANDIDATE_LOW, 79, 0)))), 1, {E5}),
    Case("any__unusable__sample_shrink_share_above_one_in_policy", LOW, policy_change(lambda p: p["tiers"]["low"].__setitem__("max_sample_shrink", 1.5)), 2),
    Case("any__unusable__nan_sample_shrink_in_policy", LOW, policy_change(lambda p: p["tiers"]["low"].__setitem__("max_sample_shrink", math.nan)), 2),
    Case("any__unusable__yes_as_a_sample_shrink_in_policy", LOW, policy_change(lambda p: p["tiers"]["low"].__setitem__("max_sample_shrink", True)), 2),
    # YAML's yes/true is no number: pydantic would read it as 1 (min_samples 1, a 100% cost rise, a $1 budget)
    Case("any__unusable__yes_as_min_samples_in_policy", LOW, policy_change(lambda p: p["tiers"]["high"].__setitem__("min_samples", True)), 2),
    Case("any__unusable__yes_as_a_cost_tolerance_in_policy", LOW, policy_change(lambda p: p["tiers"]["low"].__setitem__("cost_regression_tolerance", True)), 2),
    Case("any__unusable__yes_as_a_budget_in_policy", LOW, policy_change(lambda p: p["tiers"]["low"]["budgets"].__setitem__("per_request_usd", True)), 2),
    Case("any__unusable__yes_as_a_quorum_in_policy", LOW, policy_change(lambda p: p["tiers"]["high"]["signoff"]["quorum"].__setitem__("risk", True)), 2),
    Case("any__unusable__yes_as_waiver_days_in_policy", LOW, policy_change(lambda p: p["tiers"]["low"].__setitem__("waiver_max_days", True)), 2),
    Case("any__unusable__yes_as_a_floor_in_policy", LOW, policy_change(set_floor("low", "pass_rate", {"min": True})), 2),
    Case("any__unusable__quoted_number_as_min_samples_in_policy", LOW, policy_change(lambda p: p["tiers"]["low"].__setitem__("min_samples", "20")), 2),
    # a lock written before it kept the tolerances: only the candidate's (none here) and the tier's apply
    Case("low__pass__no_tolerance_anywhere", LOW, tolerance_dropped_by_the_candidate(None), 0, quorum={}),
    Case("low__blocked__production_evaluation_kept_as_the_fallback_drill", LOW, production_file_kept_as_the_drill(), 1, {E5}, cli=True),
    Case("low__pass__production_drill_still_the_drill", LOW, both(production_lock(
        LOW, (MAIN_PF, "promptfoo", {"pass_rate": 77 / 80}, {"pass_rate": 80}), LOCKED_JUNIT + ("drill",)),
        lambda t: t.edit(LOW, lambda d: (d["evaluations"].pop(1), d.__setitem__(
            "fallback", {"strategy": "human-handoff", "timeout_ms": 5000, "drill": {"format": "junit", "path": "evals/junit.xml"}})))),
        0, quorum={}),
    Case("low__pass__baseline_matched_through_dot_slash", LOW, both(evidence_path(LOW, 0, "./evals/promptfoo.json"),
         production_lock(LOW, (MAIN_PF, "promptfoo", {"pass_rate": 77 / 80}, {"pass_rate": 80}), LOCKED_JUNIT)), 0, quorum={}),
    Case("low__unusable__evidence_path_is_the_folder", LOW, evidence_path(LOW, 0, "."), 2, {"PG-MANIFEST-001"}),
    Case("low__unusable__evidence_path_is_dot_slash", LOW, evidence_path(LOW, 0, "./"), 2, {"PG-MANIFEST-001"}),
    # hole 3: nesting is bounded before PyYAML's recursive composer runs
    Case("low__unusable__deeply_nested_manifest", LOW, manifest_text(LOW, DEEP), 2, {"PG-MANIFEST-001"}, cli=True),
    Case("low__unusable__a_megabyte_of_brackets", LOW, manifest_text(LOW, "a: " + "[" * ((1 << 20) - 8)), 2, {"PG-MANIFEST-001"}, cli=True),
    Case("low__unusable__deep_block_mapping", LOW, manifest_text(LOW, "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n"), 2, {"PG-MANIFEST-001"}),
    Case("any__unusable__deeply_nested_policy", LOW, lambda t: setattr(t, "policy_text", t.policy_text + "deep: " + "[" * 2000 + "]" * 2000 + "\n"), 2, cli=True),
    # hole 4: the drill is its own evidence, not the main evaluation again
    Case("high__blocked__main_evaluation_serves_as_drill", HIGH, static_fallback_drilled_by(MAIN_PF), 1, {FB3}, cli=True),
    Case("high__blocked__main_evaluation_as_drill_spelled_otherwise", HIGH, static_fallback_drilled_by("./evals//promptfoo.json"), 1, {FB3}),
    Case("high__blocked__copy_of_main_evaluation_as_drill", HIGH, static_fallback_drilled_by("evals/drill.json", copy_of=MAIN_PF), 1, {FB3}),
    # hole 5: a system asking for production serves at least one request a month
    # blocked by PG-COST-001 (a family this table leaves to tests/test_cost.py; test_zero_monthly_requests_names_the_field)
    Case("low__blocked__zero_monthly_requests", LOW, lambda t: t.edit(LOW, lambda d: d.__setitem__("expected_monthly_requests", 0)), 1, cli=True),
]


def own_metric_only(system: str, metric: str = "helpfulness", beside: bool = False) -> Callable[[Tree], None]:
    """The system's evaluations become one generic-json summary of a metric of its own choosing (judgeable:
    n and a standard error), with its own threshold; ``beside``: added after the floored ones instead."""
    model = {LOW: "gpt-4o-mini-2024-07-18", HIGH: "claude-sonnet-4-20250514"}[system]

    def change(tree: Tree) -> None:
        tree.write(system, "evals/own.json", json.dumps({"tool": "acme-harness", "model": model, "created_at": "2026-11-20T09:00:00Z",
                                                         "metrics": [{"metric": metric, "value": 0.9, "n": 500, "stderr": 0.01}]}))
        own = {"name": "own-metric", "format": "generic-json", "path": "evals/own.json", "thresholds": {metric: {"min": 0.5}}}
        tree.edit(system, lambda d: d.__setitem__("evaluations", [*d["evaluations"], own] if beside else [own]))
    return change


def set_tier(tier: str, key: str, value) -> Callable[[dict], None]:
    return lambda p: p["tiers"][tier].__setitem__(key, value)


CASES += [
    # hole 6: the tier's floors judge something; a system cannot step around them by reporting only a metric they do not name
    Case("high__blocked__only_a_metric_no_floor_reaches", HIGH, own_metric_only(HIGH), 1, {E2}, cli=True),
    Case("high__blocked__the_floored_metric_spelled_otherwise", HIGH, own_metric_only(HIGH, "passRate"), 1, {E2}),
    Case("high__review__an_unfloored_evaluation_beside_a_floored_one", HIGH, own_metric_only(HIGH, beside=True), 0),
    Case("high__review__the_policy_lets_unfloored_evidence_warn", HIGH,
         both(own_metric_only(HIGH), policy_change(set_tier("high", "unfloored_evidence", "warn"))), 0),
    Case("low__review__only_a_metric_no_floor_reaches", LOW, own_metric_only(LOW), 0, cli=True),
    Case("low__blocked__the_policy_fails_unfloored_evidence", LOW,
         both(own_metric_only(LOW), policy_change(set_tier("low", "unfloored_evidence", "fail"))), 1, {E2}),
]


def build(tmp_path: Path, case: Case) -> Tree:
    tree = Tree(tmp_path / "repo")
    case.change(tree)
    return tree


def test_the_table_is_large_and_named_by_outcome() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) and len(CASES) >= 40
    for c in CASES:
        outcome = c.name.split("__")[1]
        assert outcome in {"pass", "blocked", "unusable", "review"}, c.name
        assert {"pass": 0, "review": 0, "blocked": 1, "unusable": 2}[outcome] == c.exit, c.name


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(tmp_path: Path, case: Case) -> None:
    tree = build(tmp_path, case)
    code, checklist = run_core(tree, case.system)
    assert code == case.exit, checklist and [(r.id, r.outcome.value, r.reason) for r in checklist.results if r.outcome.blocks]
    if checklist is None:  # the policy itself is unusable
        assert not case.failing
        return
    assert ids(checklist, Outcome.fail, Outcome.error) == case.failing, [(r.id, r.reason) for r in checklist.failures]
    assert ids(checklist, Outcome.inconclusive) == case.inconclusive, [(r.id, r.reason) for r in checklist.results]
    if case.quorum is not None:
        assert checklist.signoff.quorum == case.quorum
    if checklist.needs_review or checklist.blocked:
        assert checklist.headline() != "every automated item passed"


CLI_CASES = [c for c in CASES if c.cli]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_hostile_case_through_the_real_cli(tmp_path: Path, case: Case) -> None:
    tree = build(tmp_path, case)
    code, body = run_cli(tree, case.system)
    assert code == case.exit
    if body is None or "results" not in body:  # an unusable policy: one error line, no checklist
        assert case.exit == 2 and not case.failing
        return
    got = {r["id"] for r in body["results"] if r["outcome"] in ("fail", "error") and not r["id"].startswith(OTHER_FAMILIES)}
    assert got == case.failing
    assert {r["id"] for r in body["results"] if r["outcome"] == "inconclusive"} == case.inconclusive


def test_the_cases_named_in_the_issue_are_in_the_table() -> None:
    names = " ".join(c.name for c in CASES)
    for needle in ("nan_threshold", "nan_max_regression", "self_written_waiver", "two_model_promptfoo", "single_passing_junit",
                   "one_pass_199_skipped", "perplexity_above_its_max", "without_sample_count", "tool_direction_contradicts",
                   "loosened_max_floor", "file_names_no_model", "undated_"):
        assert needle in names, needle


def test_nan_threshold_names_the_field(tmp_path: Path) -> None:
    tree = build(tmp_path, CASES[2])
    _, checklist = run_core(tree, LOW)
    (result,) = checklist.results
    assert "thresholds" in result.reason and "finite" in result.reason


def test_two_model_file_judges_the_candidate_alone(tmp_path: Path) -> None:
    tree = build(tmp_path, next(c for c in CASES if c.name.startswith("low__blocked__two_model")))
    _, checklist = run_core(tree, LOW)
    result = next(r for r in checklist.results if r.id == E3)
    assert result.facts["summary-quality.pass_rate"] == 0.8 and result.facts["summary-quality.pass_rate.n"] == 200
    assert next(r for r in checklist.results if r.id == E6).outcome == Outcome.warn  # the JUnit file names no model
    record = next(r for r in checklist.evidence if r.path == "evals/promptfoo.json")
    assert record.parsed.metrics == {}  # a two-model file offers no pooled numbers
    chosen = select_candidate(record.parsed, checklist.manifest.model)
    assert chosen.others == ("openai:chat:gpt-4o-2024-11-20",) and chosen.metrics["pass_rate"].n == 200


def test_an_evaluation_that_no_floor_reaches_is_listed_for_review(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "repo")
    use_lm_eval(tree, {"wikitext/acc": {"min": 0.1}}, lm_eval({"acc": 0.5, "acc_stderr": 0.01}))
    _, checklist = run_core(tree, LOW)
    result = next(r for r in checklist.results if r.id == E2)
    assert result.outcome == Outcome.warn and "no floor of the low tier applies to regression-suite" in result.reason
    assert E2 in checklist.headline()


def test_review_headline_lists_every_item_by_id(tmp_path: Path) -> None:
    tree = build(tmp_path, next(c for c in CASES if c.name == "low__review__single_passing_junit_test"))
    _, checklist = run_core(tree, LOW)
    head = checklist.headline()
    assert "every automated item passed" not in head
    assert all(i in head for i in (E3, E4, E6))


# --- the reducer: inconclusive needs its reviewer; waivers need a grant --------------------------


def request_for(system: str) -> PromotionRequest:
    return PromotionRequest(repository="/tmp/repo", system=system, commit="a" * 40, requester="dana-dev", requested_at=NOW)


def click(who: str, action: Action = Action.approve, *, item: str | None = None, expires: date | None = None,
          digest: str | None = None, cl: Checklist) -> Click:
    return Click(reviewer=who, channel="console", action=action, digest=digest or cl.digest, at=NOW, item=item, expires=expires)


def fold(cl: Checklist, clicks: list[Click], excluded=frozenset({"dana"})) -> tuple[list[Signoff], list[RefusedClick]]:
    given, refused, requests = [], [], requests_of(cl)
    for c in clicks:
        got = judge(c, policy=POLICY, quorum=cl.signoff.quorum, digest=cl.digest, excluded=set(excluded), given=given,
                    waiting=True, waivers=requests)
        (given if isinstance(got, Signoff) else refused).append(got)
    return given, refused


def decide_with(cl: Checklist, clicks: list[Click]):
    given, refused = fold(cl, clicks)
    state = tally(cl.signoff.quorum, given, requests_of(cl)) if cl.needs_signoff else None
    return decide(request_for(cl.system), cl, state, signoffs=given, refused=refused, now=NOW), refused


def checklist_of(tmp_path: Path, change: Callable[[Tree], None], system: str = LOW) -> Checklist:
    tree = Tree(tmp_path / "repo")
    change(tree)
    return run_core(tree, system)[1]


NEAR = (NOW + timedelta(days=10)).date()
REDUCER_CASES = [
    # (name, change, clicks(cl), verdict, refused reasons (substrings), waived ids)
    ("low__blocked__inconclusive_without_its_reviewer", regression_junit(1), lambda cl: [], Verdict.blocked, [], set()),
    ("low__promoted__inconclusive_signed_by_platform", regression_junit(1), lambda cl: [click("priya", cl=cl)], Verdict.promoted, [], set()),
    ("low__blocked__inconclusive_signed_by_the_wrong_role", regression_junit(1), lambda cl: [click("sam", cl=cl)], Verdict.blocked, ["does not hold the role"], set()),
    ("low__blocked__self_written_waiver_not_granted", all_failing_with_waiver("2026-12-10"), lambda cl: [], Verdict.blocked, [], set()),
    ("low__promoted__waiver_granted_by_risk", all_failing_with_waiver("2026-12-10"), lambda cl: [click("rene", Action.waive, item=E3, cl=cl)], Verdict.promoted, [], {E3}),
    ("low__promoted__waiver_granted_shorter_than_asked", all_failing_with_waiver("2026-12-10"), lambda cl: [click("rene", Action.waive, item=E3, expires=date(2026, 12, 1), cl=cl)], Verdict.promoted, [], {E3}),
    ("low__blocked__waiver_granted_by_the_requester", all_failing_with_waiver("2026-12-10"), lambda cl: [click("dana", Action.waive, item=E3, cl=cl)], Verdict.blocked, ["may not sign it off"], set()),
    ("low__blocked__waiver_granted_by_a_role_not_allowed", all_failing_with_waiver("2026-12-10"), lambda cl: [click("priya", Action.waive, item=E3, cl=cl)], Verdict.blocked, ["may waive PG-EVAL-003"], set()),
    ("low__blocked__waiver_granted_by_an_unknown_person", all_failing_with_waiver("2026-12-10"), lambda cl: [click("nobody in particular", Action.waive, item=E3, cl=cl)], Verdict.blocked, ["not a known reviewer"], set()),
    ("low__blocked__waiver_grant_longer_than_asked", all_failing_with_waiver("2026-12-10"), lambda cl: [click("rene", Action.waive, item=E3, expires=date(2026, 12, 20), cl=cl)], Verdict.blocked, ["longer than"], set()),
    ("low__blocked__waiver_expiry_beyond_the_policy", all_failing_with_waiver("2999-12-31"), lambda cl: [click("rene", Action.waive, item=E3, expires=NEAR, cl=cl)], Verdict.blocked, ["no grantable waiver request"], set()),
    ("low__blocked__waiver_grant_for_another_digest", all_failing_with_waiver("2026-12-10"), lambda cl: [click("rene", Action.waive, item=E3, digest="f" * 64, cl=cl)], Verdict.blocked, ["digest"], set()),
    ("low__blocked__waiver_of_a_non_waivable_item", all_failing_with_waiver("2026-12-10"), lambda cl: [click("rene", Action.waive, item="PG-DATA-001", cl=cl)], Verdict.blocked, ["can never be waived"], set()),
    ("low__blocked__waiver_of_an_item_not_requested", all_failing_with_waiver("2026-12-10"), lambda cl: [click("rene", Action.waive, item=E5, cl=cl)], Verdict.blocked, ["no grantable waiver request"], set()),
    # an honest rename of an evaluation file: blocked until a risk reviewer grants the requested waiver
    ("low__blocked__renamed_evaluation_without_a_grant", renamed_with_waiver, lambda cl: [], Verdict.blocked, [], set()),
    ("low__blocked__renamed_evaluation_waived_by_the_wrong_role", renamed_with_waiver, lambda cl: [click("priya", Action.waive, item=E5, cl=cl)], Verdict.blocked, ["may waive PG-EVAL-005"], set()),
    ("low__promoted__renamed_evaluation_waived_by_risk", renamed_with_waiver, lambda cl: [click("rene", Action.waive, item=E5, cl=cl)], Verdict.promoted, [], {E5}),
]


@pytest.mark.parametrize(("name", "change", "clicks", "verdict", "refusals", "waived"), REDUCER_CASES, ids=[c[0] for c in REDUCER_CASES])
def test_reducer_case(tmp_path, name, change, clicks, verdict, refusals, waived) -> None:
    cl = checklist_of(tmp_path, change)
    decision, refused = decide_with(cl, clicks(cl))
    assert decision.verdict == verdict, decision.reasons
    assert len(refused) == len(refusals) and all(want in r.reason for want, r in zip(refusals, refused)), [r.reason for r in refused]
    got = {r.id for r in decision.checklist.results if r.outcome == Outcome.waived}
    assert got == waived
    if verdict == Verdict.promoted:
        assert "every automated item passed" not in decision.reasons[0]
    for r in decision.checklist.results:
        if r.outcome == Outcome.waived:
            assert r.waiver.approver == "rene" and r.waiver.role == "risk" and r.waiver.expires <= date(2026, 12, 10)
            assert r.waiver.waived_outcome == Outcome.fail and r.waiver_request.asked_of == "nobody in particular"


def test_a_forged_grant_the_reducer_did_not_judge_counts_for_nothing(tmp_path) -> None:
    cl = checklist_of(tmp_path, all_failing_with_waiver("2026-12-10"))
    forged = Signoff(reviewer="priya", identity="priya", role="platform", action=Action.waive, at=NOW, digest=cl.digest,
                     channel="console", item=E3, expires=date(2026, 12, 10))
    decision = decide(request_for(LOW), cl, tally({}, [forged]), signoffs=[forged], now=NOW)
    assert decision.verdict == Verdict.blocked and E3 in decision.reasons[0]


def test_a_required_signoff_never_collected_blocks(tmp_path) -> None:
    cl = checklist_of(tmp_path, regression_junit(1))
    decision = decide(request_for(LOW), cl, None, now=NOW)
    assert decision.verdict == Verdict.blocked and "sign-off required (1 platform)" in decision.reasons[0]


# --- property: no mutation of a blocking example turns it into a pass ----------------------------

BLOCKING_PASSED, BLOCKING_N = 140, 200  # the candidate's own results: 0.70, below the low tier's 0.80 floor

threshold_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.booleans(),
    st.fixed_dictionaries({"min": st.floats(allow_nan=True, allow_infinity=True)}),
    st.fixed_dictionaries({"max": st.floats(allow_nan=True, allow_infinity=True)}),
)
other_models = st.lists(st.tuples(st.sampled_from([
    "openai:chat:gpt-4o-2024-11-20", "openai:chat:gpt-4o-mini-2024-07-18-ft", "azure:chat:gpt-4o-mini-2024-07-18",
    "openai:gpt-4o-mini", "gpt-4o-mini", None]), st.integers(1, 400), st.integers(0, 0)), max_size=3, unique_by=lambda t: t[0])
waivers_st = st.lists(st.fixed_dictionaries({
    "item": st.sampled_from([E3, E2, E4, "PG-DATA-001", "PG-MANIFEST-001"]),
    "approver": st.sampled_from(["rene", "priya", "nobody in particular"]),
    "reason": st.just("trust us, it is fine really"),
    "expires": st.dates(min_value=date(2026, 1, 1), max_value=date(2999, 12, 31)),
}), max_size=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=threshold_values, regression=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
       others=other_models, waivers=waivers_st, stamp=st.sampled_from([STAMP, None]), metric=st.sampled_from(["pass_rate", "score"]))
def test_no_mutation_of_a_blocking_example_passes(tmp_path_factory, value, regression, others, waivers, stamp, metric) -> None:
    tree = Tree(tmp_path_factory.mktemp("prop") / "repo")
    tree.write(LOW, "evals/promptfoo.json", promptfoo((CANDIDATE_LOW, BLOCKING_N, BLOCKING_N - BLOCKING_PASSED), *others, stamp=stamp))

    def change(d):
        ev = d["evaluations"][0]
        ev["thresholds"] = {metric: value}
        if regression is not None:
            ev["max_regression"] = {metric: regression}
        d["waivers"] = waivers
    tree.edit(LOW, change)
    code, checklist = run_core(tree, LOW)
    assert code != 0, [(r.id, r.outcome.value, r.reason) for r in checklist.results]


def test_regression_of_a_max_metric_is_a_rise(tmp_path) -> None:
    def change(tree: Tree) -> None:
        use_lm_eval(tree, {"wikitext/word_perplexity": {"max": 30}}, lm_eval({"word_perplexity": 14.0, "word_perplexity_stderr": 0.1}),
                    max_regression={"wikitext/word_perplexity": 1.0})
    tree = Tree(tmp_path / "repo")
    change(tree)
    wt = WorkingTree(tree.root)
    candidate = read_candidate(wt, LOW, "0" * 40)
    lock = ProductionLock(system=LOW, source_commit="c" * 40, manifest_sha256="d" * 64, model="openai/gpt-4o-mini@x",
                          evidence=[LockedEvidence(path="evals/lm_eval.json", format="lm-eval", sha256="e" * 64,
                                                   metrics={"wikitext/word_perplexity": 10.0}, samples={"wikitext/word_perplexity": 500})],
                          decision_id="x", policy_version="1", policy_digest="f" * 64, promoted_at=NOW - timedelta(days=30))
    worse = evaluate(candidate.model_copy(update={"baseline": lock}), POLICY, NOW)
    result = next(r for r in worse.results if r.id == E5)
    assert result.outcome == Outcome.fail and "regressed beyond the 1 tolerance" in result.reason
    better_lock = lock.model_copy(update={"evidence": [lock.evidence[0].model_copy(update={"metrics": {"wikitext/word_perplexity": 20.0}})]})
    better = evaluate(candidate.model_copy(update={"baseline": better_lock}), POLICY, NOW)
    assert next(r for r in better.results if r.id == E5).outcome == Outcome.passed


# --- Slack: the waiver request has its own Grant button; a forged button is refused -------------


def test_slack_request_offers_a_grant_button_to_the_role_that_may_grant(tmp_path) -> None:
    from promotion_gate.notifications.slack_interactions import ACTION_WAIVE, InteractionError, click_from, parse_interaction
    from promotion_gate.notifications.slack_messages import RequestContext, build_request_message
    from tests.fakes.slack_payloads import block_actions_payload, form_encode

    cl = checklist_of(tmp_path, all_failing_with_waiver("2026-12-10"))
    ctx = RequestContext(request=request_for(LOW), checklist=cl, run="0b5f0e4e-9d1c-4a57-9a0e-4d1f2b3c4d5e", deadline=NOW + timedelta(hours=72))
    risk = build_request_message(ctx, "risk", tally({}, [], [E3]))
    buttons = [e for b in risk["blocks"] if b["type"] == "actions" for e in b["elements"]]
    (grant,) = [e for e in buttons if e["action_id"].startswith(ACTION_WAIVE)]
    assert grant["action_id"] == f"{ACTION_WAIVE}:{E3}" and "every automated item passed" not in json.dumps(risk)
    platform = build_request_message(ctx, "platform", tally({}, [], [E3]))
    assert ACTION_WAIVE not in json.dumps(platform)  # platform may not waive PG-EVAL-003

    def body(action_id: str, value: str) -> bytes:
        return form_encode(block_actions_payload(action_id=action_id, user_id="U0RENE", value=value, channel_id="C0RISK",
                                                 message={"ts": "1700000000.000100", "blocks": []}))
    parsed = parse_interaction(body(grant["action_id"], grant["value"]))
    c = click_from(parsed, NOW, None)
    assert (c.action, c.item, c.role) == (Action.waive, E3, "risk")
    given, refused = fold(cl, [c])
    assert not refused and decide(request_for(LOW), cl, tally({}, given, [E3]), signoffs=given, now=NOW).verdict == Verdict.promoted
    with pytest.raises(InteractionError):  # an Approve button relabelled as a waiver of another item
        parse_interaction(body(f"{ACTION_WAIVE}:PG-DATA-001", grant["value"]))


# --- the security review's holes: what the rows above do not show --------------------------------


def test_the_tier_does_not_depend_on_listing_the_sources_classes(tmp_path) -> None:
    listed = checklist_of(tmp_path / "a", both(sources(LOW, *SENSITIVE_SOURCES),
                                                lambda t: t.edit(LOW, lambda d: d["use_case"]["data_classes"].extend(["pii", "financial"]))))
    unlisted = checklist_of(tmp_path / "b", sources(LOW, *SENSITIVE_SOURCES))
    assert listed.tier == unlisted.tier and unlisted.tier.value == "medium"
    assert listed.tier_reasons == unlisted.tier_reasons == ["handles confidential, personal, health or financial data"]
    by_id = {r.id: r for r in unlisted.results}
    assert "openai may not receive financial" in by_id["PG-DATA-001"].reason
    assert "financial, pii" in by_id["PG-LOG-001"].reason
    assert by_id["PG-DATA-002"].outcome == Outcome.fail and "not listed in use_case.data_classes" in by_id["PG-DATA-002"].reason
    facing = checklist_of(tmp_path / "c", both(sources(LOW, SENSITIVE_SOURCES[0]), lambda t: t.edit(LOW, lambda d: d["use_case"].__setitem__("audience", "customer-facing"))))
    assert facing.tier.value == "high"


def test_regression_message_says_what_to_do(tmp_path) -> None:
    renamed = checklist_of(tmp_path / "a", regressed("evals/summary-quality.json"))
    (r,) = [r for r in renamed.results if r.id == E5]
    assert r.outcome == Outcome.fail
    assert "evals/promptfoo.json" in r.reason and "no current evaluation" in r.reason
    assert "keep the file name" in r.remedy and "waiver of PG-EVAL-005" in r.remedy and "risk" in r.remedy
    gone = checklist_of(tmp_path / "b", locked_metric_gone)
    (r,) = [r for r in gone.results if r.id == E5]
    assert r.outcome == Outcome.fail and "wikitext/acc" in r.reason and "no longer" in r.reason


def test_the_manifest_and_the_lock_agree_on_the_path(tmp_path) -> None:
    from promotion_gate.checklists.decision import build_lock
    from promotion_gate.checklists.manifest import parse_manifest

    cl = checklist_of(tmp_path, evidence_path(LOW, 0, "./evals//promptfoo.json"))
    assert cl.manifest.evaluations[0].path == MAIN_PF
    decision = decide(request_for(LOW), cl, None, now=NOW)
    assert decision.verdict == Verdict.promoted
    assert [(e.path, e.role) for e in build_lock(decision).evidence] == [(MAIN_PF, "evaluation"), ("evals/junit.xml", "evaluation")]
    drilled = decide(request_for(HIGH), checklist_of(tmp_path / "high", lambda t: None, HIGH), None, now=NOW)
    assert drilled.checklist.manifest.fallback.drill is not None
    roles = {e.path: e.role for e in drilled.checklist.evidence and build_lock(drilled.model_copy(update={"verdict": Verdict.promoted})).evidence}
    assert roles[drilled.checklist.manifest.fallback.drill.path] == "drill" and "evaluation" in roles.values()
    text = (EXAMPLES / "ai-systems" / LOW / "promotion.yaml").read_text()
    for spelled, stored in (("evals/./x.json", "evals/x.json"), ("evals/x.json/", "evals/x.json"), ("./x.json", "x.json")):
        m = parse_manifest(text.replace("path: evals/junit.xml", f"path: {spelled}"), "promotion.yaml")
        assert m.evaluations[1].path == stored


@pytest.mark.parametrize(("label", "text", "line", "words"), [
    ("flow sequences 1000 deep", "a: " + "[" * 1000 + "]" * 1000 + "\n", 1, "nested deeper than 64"),
    ("flow mappings 1000 deep", "a: " + "{b: " * 1000 + "1" + "}" * 1000 + "\n", 1, "nested deeper than 64"),
    ("a megabyte of [", "[" * ((1 << 20) - 1), 1, "nested deeper than 64"),
    ("block mappings 100 deep, below line 1", "ok: 1\n" + "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "x: 1\n", 66, "nested deeper than 64"),
    ("anchors and aliases", "a: &x [1]\nb: *x\n", 2, "anchors and aliases are not allowed"),
    ("merge keys", "a: {x: 1}\nb:\n  <<: {y: 2}\n", 3, "merge keys are not allowed"),
    ("non-string keys", "1: a\n", 1, "mapping keys must be strings"),
    ("duplicate keys", "a: 1\nb: 2\na: 3\n", 3, "duplicate key a"),
    # YAML 1.1 reads these as numbers other than the digits written (a careless timeout, a retention in a hurry)
    ("a leading zero is octal", "fallback:\n  timeout_ms: 0100\n", 2, "the octal number 64"),
    ("a signed leading zero", "a: -017\n", 1, "the octal number -15"),
    ("base 60, hours:minutes", "retention_days: 1:30\n", 1, "the base-60 number 90"),
    ("base 60 with a fraction", "a: 1:30.5\n", 1, "the base-60 number 90.5"),
    ("a tag makes quoted digits octal again", "logging:\n  retention_days: !!int \"0120\"\n", 2, "YAML tags (tag:yaml.org,2002:int) are not allowed"),
    ("a tag makes a quoted time base 60", "a: !!float \"1:30\"\n", 1, "YAML tags"),
    ("a tag on a mapping", "a: !!map {b: 1}\n", 1, "YAML tags"),
    ("a tag of one's own", "a: !secret x\n", 1, "YAML tags (!secret)"),
])
def test_yaml_refusals(label, text, line, words) -> None:
    from promotion_gate.checklists.yamldoc import YamlError, parse_yaml

    with pytest.raises(YamlError) as caught:
        parse_yaml(text.encode(), "ai-systems/x/promotion.yaml")
    assert caught.value.line == line and words in caught.value.reason, str(caught.value)
    assert str(caught.value).startswith(f"ai-systems/x/promotion.yaml:{line}: ")


@pytest.mark.parametrize(("text", "value"), [
    ("a: 0\n", 0), ("a: 100\n", 100), ("a: -0\n", 0), ("a: 0.5\n", 0.5), ("a: 0.05\n", 0.05), ("a: 00.5\n", 0.5),
    ("a: 0x1e\n", 30), ("a: 1_000\n", 1000),
    ("a: '0100'\n", "0100"), ('a: "1:30"\n', "1:30"), ("a: 10:30 am\n", "10:30 am"), ("a: 0100abc\n", "0100abc"),
    ("a: [0100, x]\n", None),  # in a sequence: refused like anywhere else
])
def test_yaml_numbers_that_mean_what_they_say(text, value) -> None:
    """Numbers that read the same in YAML 1.1 and as written, and quoted strings, pass as they are."""
    from promotion_gate.checklists.yamldoc import YamlError, parse_yaml

    if value is None:
        with pytest.raises(YamlError, match="octal number 64"):
            parse_yaml(text, "x.yaml")
        return
    assert parse_yaml(text, "x.yaml").data["a"] == value


def test_yaml_nesting_at_the_bound_is_accepted() -> None:
    from promotion_gate.checklists.yamldoc import MAX_YAML_DEPTH, parse_yaml

    doc = parse_yaml("a: " + "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1) + "\n", "x.yaml")  # the mapping is level 1
    assert isinstance(doc.data["a"], list)


def test_drill_that_is_a_near_copy_of_the_main_evaluation_is_refused(tmp_path) -> None:
    """The same results with a newline added, or re-indented: not the same bytes, the same run."""
    def near_copy(edit):
        def change(tree: Tree) -> None:
            main = (tree.folder(HIGH) / MAIN_PF).read_text()
            tree.write(HIGH, "evals/drill.json", edit(main))
            static_fallback_drilled_by("evals/drill.json")(tree)
        return change
    for name, edit in (("a newline added", lambda t: t + "\n"), ("re-indented", lambda t: json.dumps(json.loads(t), indent=1))):
        cl = checklist_of(tmp_path / name.replace(" ", "-"), near_copy(edit), HIGH)
        (r,) = [r for r in cl.results if r.id == FB3]
        assert r.outcome == Outcome.fail and "a copy of evaluation" in r.reason, (name, r.reason)


def test_drill_that_is_the_main_evaluation_is_named(tmp_path) -> None:
    same = checklist_of(tmp_path / "a", static_fallback_drilled_by(MAIN_PF), HIGH)
    copy = checklist_of(tmp_path / "b", static_fallback_drilled_by("evals/drill.json", copy_of=MAIN_PF), HIGH)
    (r,) = [r for r in same.results if r.id == FB3]
    assert "evals/promptfoo.json" in r.reason and "answer-quality" in r.reason
    (r,) = [r for r in copy.results if r.id == FB3]
    assert "same bytes" in r.reason and "answer-quality" in r.reason


def test_zero_monthly_requests_names_the_field(tmp_path) -> None:
    """0 is refused by the cost item, at every tier (budget or not), not by the manifest model: a
    decision recorded before the rule, holding 0, still loads in the index and the inventory."""
    from promotion_gate.checklists.manifest import parse_manifest

    text = (EXAMPLES / "ai-systems" / LOW / "promotion.yaml").read_text()
    assert "expected_monthly_requests: 20000" in text
    assert parse_manifest(text.replace("expected_monthly_requests: 20000", "expected_monthly_requests: 0"),
                          "promotion.yaml").expected_monthly_requests == 0
    cl = checklist_of(tmp_path, lambda t: t.edit(LOW, lambda d: d.__setitem__("expected_monthly_requests", 0)), LOW)
    (r,) = [r for r in cl.results if r.id == "PG-COST-001"]
    assert r.outcome.value == "fail" and "expected_monthly_requests is 0" in r.reason
