"""GitHub checks against the fake GitHub, driven through PyGithub: with App authentication the gate
reports through check runs (one per system, plus the required aggregate `promotion-gate`); with a
token, through commit statuses only. End state asserted on the commit."""

from __future__ import annotations

import json

import pytest

from promotion_gate.checklists.decision import Verdict
from promotion_gate.github_api.forge import GitHubForge
from promotion_gate.config.settings import load_settings
from promotion_gate.notifications.check_events import GuardLocks, Rerun, ReviewDeployment
from promotion_gate.notifications.checks_bodies import (
    SUMMARY_LIMIT, CheckRunBody, SeenRun, build_aggregate_check, fit_summary,
)
from promotion_gate.notifications.github_events import parse_delivery
from tests.fakes.github_payloads import encode_payload
from tests.fakes.github_routes_checks import check_run_event, check_runs, latest_check_runs
from tests.github_support import (
    BLOCKED, LABEL, PROMOTES, REPO, UNAPPROVED, gate_env, governed_repo, judge, promote_with, request_for,
)

SYSTEM, AGG = f"promotion-gate / {PROMOTES}", "promotion-gate"


@pytest.fixture
def app_forge(fake_github, monkeypatch, tmp_path):
    from tests.github_support import as_github_app

    gate_env(monkeypatch, fake_github, tmp_path / "store")
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    as_github_app(monkeypatch, fake_github, tmp_path)

    def make():
        fake_github.add_installation(7, 42, "acme", repositories=[REPO])
        return GitHubForge(load_settings(), REPO)

    return make


def _line_of(fake_github, sha: str, needle: str) -> int:
    text = fake_github.file_at(REPO, sha, f"ai-systems/{PROMOTES}/promotion.yaml").decode()
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_blocked_system_fails_its_check_with_annotations_on_the_manifest_lines_and_the_aggregate(fake_github, app_forge):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    forge = app_forge()
    request = request_for(sha, number)
    decision = judge(forge, request)
    assert decision.verdict == Verdict.blocked
    forge.conclude(request, decision)
    runs = latest_check_runs(fake_github, REPO, sha)
    system, aggregate = runs[SYSTEM], runs[AGG]
    assert (system["status"], system["conclusion"]) == ("completed", "failure")
    assert (aggregate["status"], aggregate["conclusion"]) == ("completed", "failure")
    assert system["output"]["summary"].startswith("#") and decision.decision_id in system["output"]["summary"]
    failed = {r.id for r in decision.checklist.failures}
    by_item = {a["title"].split(":")[0]: a for a in system["annotations"] if a["annotation_level"] == "failure"}
    assert set(by_item) == failed
    assert by_item["PG-VENDOR-002"]["start_line"] == _line_of(fake_github, sha, "version: gpt-4o-mini-2099-01-01")
    assert all(a["path"] == f"ai-systems/{PROMOTES}/promotion.yaml" for a in system["annotations"])
    assert f"promotion-gate/{PROMOTES}" not in fake_github.statuses(REPO, sha)  # statuses are for tokens
    forge.conclude(request, decision)  # a resumed run concludes again: same runs, annotations not doubled
    again = [r for r in check_runs(fake_github, REPO, sha) if r["name"] == SYSTEM]
    assert len(again) == 1 and len(again[0]["annotations"]) == len(system["annotations"])


def test_a_promoted_system_succeeds_and_so_does_the_aggregate(fake_github, app_forge):
    sha, number = governed_repo(fake_github, PROMOTES)
    forge = app_forge()
    request = request_for(sha, number)
    decision = judge(forge, request)
    assert decision.verdict == Verdict.promoted, decision.reasons
    decision = decision.model_copy(update={"promotion": promote_with(forge, request, decision)})
    forge.conclude(request, decision)
    runs = latest_check_runs(fake_github, REPO, sha)
    assert runs[SYSTEM]["conclusion"] == "success" and runs[AGG]["conclusion"] == "success"
    assert runs[SYSTEM]["details_url"] is None or runs[SYSTEM]["details_url"].startswith("http")


def test_a_rerun_is_a_new_attempt_a_new_decision_and_new_runs_one_per_name(fake_github, app_forge):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    forge = app_forge()
    first = request_for(sha, number)
    forge.conclude(first, judge(forge, first))
    run_id = latest_check_runs(fake_github, REPO, sha)[SYSTEM]["id"]
    payload = check_run_event(fake_github, REPO, run_id, "rerequested", sender="dana")
    ask = parse_delivery("check_run", encode_payload(payload), label=LABEL, blocked_label=BLOCKED)
    assert (type(ask).__name__, ask.pull_request, ask.head_sha, ask.attempt) == ("Rerun", number, sha, f"run-{run_id}")
    again = first.model_copy(update={"attempt": ask.attempt})
    redo = judge(forge, again)
    assert redo.decision_id != judge(forge, first).decision_id  # a new, separately recorded decision
    forge.conclude(again, redo)
    forge.conclude(again, redo)  # retried: still one run per name for this attempt
    runs = check_runs(fake_github, REPO, sha)
    per_name = {(r["name"], r["external_id"]) for r in runs}
    assert len(runs) == len(per_name) == 4  # two attempts x (system, aggregate)
    assert latest_check_runs(fake_github, REPO, sha)[SYSTEM]["external_id"] == again.key


def test_a_rerun_of_an_old_commit_or_another_apps_check_is_ignored(fake_github, app_forge):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    forge = app_forge()
    request = request_for(sha, number)
    forge.conclude(request, judge(forge, request))
    run_id = latest_check_runs(fake_github, REPO, sha)[SYSTEM]["id"]
    payload = check_run_event(fake_github, REPO, run_id)
    fake_github.commit_files(REPO, "feature", {"README.md": "moved on\n"})
    payload["check_run"]["pull_requests"][0]["head"]["sha"] = "f" * 40
    ask = parse_delivery("check_run", encode_payload(payload), label=LABEL, blocked_label=BLOCKED)
    assert type(ask).__name__ == "Ignore" and "no longer the head" in ask.reason
    payload["check_run"]["name"] = "ci / tests"
    ask = parse_delivery("check_run", encode_payload(payload), label=LABEL, blocked_label=BLOCKED)
    assert type(ask).__name__ == "Ignore" and "is not the gate's" in ask.reason


def test_another_apps_run_of_the_same_name_and_key_is_not_taken_for_the_gates(fake_github, app_forge):
    """A run GitHub holds under the gate's name and external_id, made by App 43: not the gate's. A lost
    create's retry must not take it for its own, nor edit it: the gate writes its own run."""
    from tests.fakes.github_routes_checks import CheckRun, checks_of

    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    forge = app_forge()
    request = request_for(sha, number)
    decision = judge(forge, request)
    with fake_github._lock:
        checks = checks_of(fake_github.state)
        foreign = CheckRun(fake_github.state.next_id(), REPO, sha, SYSTEM, 43, fake_github.state.next_id(),
                           status="in_progress", external_id=request.key, title="t", summary="s")
        checks.runs[foreign.id] = foreign
    fake_github.lose_answer_next("POST /repos/*/check-runs", status=502)
    forge.conclude(request, decision)
    mine = [r for r in check_runs(fake_github, REPO, sha) if r["name"] == SYSTEM and r["app"]["id"] == 42]
    assert [(r["status"], r["conclusion"], r["external_id"]) for r in mine] == [("completed", "failure", request.key)]
    assert (foreign.status, foreign.conclusion, foreign.summary) == ("in_progress", None, "s")  # left as it was
    assert not fake_github.calls("PATCH", f"*/check-runs/{foreign.id}")


def test_token_authentication_keeps_commit_statuses_and_writes_no_check_run(fake_github, monkeypatch, tmp_path):
    gate_env(monkeypatch, fake_github, tmp_path / "store")
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    forge = GitHubForge(load_settings(), REPO)
    request = request_for(sha, number)
    forge.conclude(request, judge(forge, request))
    assert fake_github.statuses(REPO, sha)[f"promotion-gate/{PROMOTES}"]["state"] == "failure"
    assert check_runs(fake_github, REPO, sha) == []


# the aggregate, as a table: what branch protection sees


def seen(*pairs) -> list[SeenRun]:
    return [SeenRun(f"promotion-gate / {name}", status, conclusion) for name, status, conclusion in pairs]


@pytest.mark.parametrize("runs, expected", [
    (seen(("a", "completed", "success"), ("b", "completed", "success")), ("completed", "success")),
    (seen(("a", "completed", "success"), ("b", "in_progress", None)), ("in_progress", None)),  # waiting: not neutral
    (seen(("a", "completed", "failure"), ("b", "in_progress", None)), ("completed", "failure")),  # one block is enough
    (seen(("a", "completed", "success"), ("b", "completed", "cancelled")), ("completed", "action_required")),
    (seen(("a", "completed", "timed_out")), ("completed", "failure")),
    (seen(("a", "completed", "success")) + [SeenRun("promotion-gate / lock-guard", "completed", "failure"),
                                             SeenRun("promotion-gate", "completed", "failure")], ("completed", "success")),
])
def test_the_aggregate_succeeds_only_when_every_system_was_promoted(runs, expected):
    body = build_aggregate_check("k", runs, "http://prefect.test/run")
    assert (body.status, body.conclusion) == expected


def test_no_system_no_aggregate_and_action_required_needs_a_link():
    assert build_aggregate_check("k", [], None) is None
    voided = seen(("a", "completed", "cancelled"))
    assert build_aggregate_check("k", voided, None).conclusion == "failure"  # never neutral, never success


def test_a_long_report_is_cut_within_githubs_limit_with_a_link_and_annotations_go_fifty_at_a_time():
    text = fit_summary("x" * 100_000, "https://github.test/pr/1")
    assert len(text) <= SUMMARY_LIMIT and text.endswith("https://github.test/pr/1")
    body = CheckRunBody("n", "k", "completed", "t", "s", "failure",
                        annotations=tuple({"path": "p", "start_line": 1, "end_line": 1, "annotation_level": "failure",
                                           "message": str(i)} for i in range(120)))
    assert [len(o.get("annotations", [])) for o in body.outputs()] == [50, 50, 20]


# the required checks on PRs into production that the gate does not evaluate


@pytest.mark.usefixtures("prefect_harness")
def test_the_gates_flow_with_an_app_leaves_both_required_checks_green_on_the_promotion_pr(fake_github, app_forge):
    from promotion_gate.flows.promotion import promotion_gate

    sha, number = governed_repo(fake_github, PROMOTES)
    app_forge()
    decision = promotion_gate(request_for(sha, number))
    assert decision.verdict == Verdict.promoted, decision.reasons
    candidate = latest_check_runs(fake_github, REPO, sha)
    assert (candidate[SYSTEM]["conclusion"], candidate[AGG]["conclusion"]) == ("success", "success")
    promotion = latest_check_runs(fake_github, REPO, decision.promotion.commit)
    assert promotion["promotion-gate / lock-guard"]["conclusion"] == "success"
    assert promotion[AGG]["conclusion"] == "success"
    assert fake_github.statuses(REPO, sha) == {}


def test_a_pr_into_production_touching_no_system_gets_both_required_checks(fake_github, app_forge):
    from promotion_gate.flows.enforcement import guard_pull
    from promotion_gate.config.settings import load_settings

    app_forge()
    fake_github.create_repo(REPO)
    docs = fake_github.commit_files(REPO, "docs", {"docs/x.md": "hi\n"}, "docs")
    guard_pull.fn(load_settings(), REPO, fake_github.open_pull(REPO, "docs", "main", "docs", "alice"), docs, None)
    runs = latest_check_runs(fake_github, REPO, docs)
    assert (runs[AGG]["conclusion"], runs["promotion-gate / lock-guard"]["conclusion"]) == ("success", "success")
    files = {f"ai-systems/{PROMOTES}/promotion.yaml": "name: x\n"}
    change = fake_github.commit_files(REPO, "change", files, "change a system")
    guard_pull.fn(load_settings(), REPO, fake_github.open_pull(REPO, "change", "main", "change", "alice"), change, None)
    runs = latest_check_runs(fake_github, REPO, change)
    assert (runs[AGG]["status"], runs[AGG]["conclusion"]) == ("in_progress", None)  # waits for the label
    assert runs["promotion-gate / lock-guard"]["conclusion"] == "success"


# the enforcement asks travel as promotion-request parameters, validated again on the way in


@pytest.mark.parametrize("ask", [
    Rerun("acme/models", 12, "a" * 40, "dana", "run-77", "alice"),
    GuardLocks("acme/models", 12, "a" * 40, "dana", "main"),
    GuardLocks("acme/models", 12, "a" * 40, "dana", "main", "run-78"),
    ReviewDeployment("acme/models", "production", "refs/heads/main", "a" * 40, 501, "dana"),
], ids=["rerun", "guard", "guard-again", "review-deployment"])
def test_enforcement_asks_round_trip_as_flow_parameters(ask):
    from promotion_gate.notifications.github_events import build_parameters, parse_parameters

    assert parse_parameters(build_parameters(ask)) == ask


@pytest.mark.parametrize("change, problem", [
    ({"attempt": "../x"}, "attempt"), ({"head_sha": "HEAD"}, "head_sha"), ({"base": "a b"}, "base"),
    ({"pull_request": 0}, "pull_request"), ({"sender": "{{x}}"}, "sender"),
])
def test_a_hand_started_run_with_bad_enforcement_parameters_is_refused(change, problem):
    from promotion_gate.notifications.check_events import GuardLocks
    from promotion_gate.notifications.github_events import build_parameters, parse_parameters

    params = build_parameters(GuardLocks("acme/models", 12, "a" * 40, "dana", "main", "run-1")) | change
    with pytest.raises(ValueError, match=problem):
        parse_parameters(params)


@pytest.mark.usefixtures("prefect_harness")
def test_the_promotion_request_flow_runs_the_guard_and_answers_a_deployment(fake_github, app_forge):
    from promotion_gate.flows.dispatch import promotion_request
    from promotion_gate.notifications.check_events import GuardLocks, ReviewDeployment
    from promotion_gate.notifications.github_events import build_parameters
    from tests.fakes.github_routes_checks import deployment_reviews

    app_forge()
    fake_github.create_repo(REPO)
    sha = fake_github.commit_files(REPO, "docs", {"docs/x.md": "hi\n"}, "docs")
    number = fake_github.open_pull(REPO, "docs", "main", "docs", "alice")
    assert promotion_request(**build_parameters(GuardLocks(REPO, number, sha, "alice", "main"))) == []
    assert latest_check_runs(fake_github, REPO, sha)["promotion-gate / lock-guard"]["conclusion"] == "success"
    ask = ReviewDeployment(REPO, "production", "refs/heads/docs", sha, 601, "alice")
    assert promotion_request(**build_parameters(ask)) == []
    answer = deployment_reviews(fake_github, REPO)[-1]
    assert (answer["run_id"], answer["state"]) == (601, "rejected") and "no production.lock.json" in answer["comment"]


# the Re-run button, through the deployments as the gateway starts them


@pytest.mark.usefixtures("prefect_harness")
def test_pressing_rerun_evaluates_the_same_commit_again_as_a_new_recorded_decision(fake_github, app_forge, tmp_path):
    import uuid

    from prefect.deployments import run_deployment

    from promotion_gate.audit_store.store import AuditStore
    from promotion_gate.flows.dispatch import promotion_request
    from promotion_gate.flows.promotion import promotion_gate
    from promotion_gate.notifications.github_events import Promote, build_parameters, build_tags
    from tests.github_support import serving, wait_for

    def start(ask) -> None:
        run_deployment("promotion-request/promotion-request", parameters=build_parameters(ask), timeout=0,
                       idempotency_key=ask.key, tags=build_tags(ask), as_subflow=False)

    def completed(external_id: str):
        runs = [r for r in check_runs(fake_github, repo, sha) if r["name"] == SYSTEM and r["external_id"] == external_id]
        return runs[0] if runs and runs[0]["status"] == "completed" else None

    repo = f"acme/models-{uuid.uuid4().hex[:8]}"
    app_forge()
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED, repo=repo)
    fake_github.add_installation(7, 42, "acme", repositories=None)  # every repository of acme
    first_key = request_for(sha, number, repo=repo).key
    with serving(promotion_request, promotion_gate):
        start(Promote(repo, number, sha, "dana", "alice"))
        first = wait_for(lambda: completed(first_key), 90, what="the first evaluation")
        payload = check_run_event(fake_github, repo, first["id"], "rerequested", sender="dana")
        ask = parse_delivery("check_run", encode_payload(payload), label=LABEL, blocked_label=BLOCKED)
        start(ask)
        again = wait_for(lambda: completed(f"{first_key}~{ask.attempt}"), 90, what="the re-run")
        # the aggregate is recomputed after the system's run concludes: wait for it, not a race
        wait_for(lambda: latest_check_runs(fake_github, repo, sha)[AGG].get("conclusion") == "failure" or None, 90,
                 what="the aggregate after the re-run")
        start(ask)  # a redelivery of the same Re-run: the same attempt, nothing new
    assert (first["conclusion"], again["conclusion"]) == ("failure", "failure")
    latest = latest_check_runs(fake_github, repo, sha)
    assert latest[SYSTEM]["id"] == again["id"] and latest[AGG]["conclusion"] == "failure"
    per_attempt = [r for r in check_runs(fake_github, repo, sha) if r["name"] == SYSTEM]
    assert len(per_attempt) == len({r["external_id"] for r in per_attempt}) == 2
    entries = [e for e in (json.loads(line) for line in AuditStore(tmp_path / "store").lines()) if e["system"] == PROMOTES]
    ids = {e["decision_id"] for e in entries}
    assert len(ids) == 2 and all(e["verdict"] == "blocked" for e in entries)


def test_a_later_evaluation_of_the_same_commit_gets_a_new_run_and_leaves_the_first_as_it_was(fake_github, app_forge):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED)
    forge = app_forge()
    request = request_for(sha, number)
    blocked = judge(forge, request)
    forge.conclude(request, blocked)
    first = latest_check_runs(fake_github, REPO, sha)[SYSTEM]
    later = blocked.model_copy(update={"verdict": Verdict.error, "reasons": ["the gate failed: GitHub 502"]})
    forge.conclude(request, later)  # a re-label after an error, say: same key, other content
    runs = [r for r in check_runs(fake_github, REPO, sha) if r["name"] == SYSTEM]
    assert len(runs) == 2 and runs[-1]["id"] == first["id"] and runs[-1]["output"]["title"] == first["output"]["title"]
    assert runs[0]["output"]["title"].startswith("error:")
    assert [r["name"] for r in check_runs(fake_github, REPO, sha)].count(AGG) == 1  # the aggregate is rewritten


def test_a_deployment_review_run_is_tagged_by_repository_not_by_a_pull_request():
    from promotion_gate.notifications.github_events import build_tags

    ask = ReviewDeployment("acme/models", "production", "main", "a" * 40, 5, "dana")
    assert build_tags(ask) == ["repo:acme/models", "sha:aaaaaaa", "promotion-request"]
