"""Routes of the fake GitHub for the Checks API and custom deployment protection rules.

As on GitHub: only a GitHub App (an installation token) may create or update check runs (a
personal token gets 403); a request carries at most 50 annotations (422 above); annotations of
later updates are added to the run's, not replacing them; ``completed`` needs a conclusion and
``action_required`` a ``details_url``; a summary longer than 65,535 characters is refused. The
list for a ref returns, by default (``filter=latest``), the newest run of each name.

State lives beside the fake's (``checks_of(state)``); the test API is the module functions:

    runs = check_runs(fake, "acme/models", sha)            # newest first, with annotations
    reviews = deployment_reviews(fake, "acme/models")      # the protection-rule callbacks received
    payload = check_run_event(fake, "acme/models", run_id, "rerequested", sender="dana")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .github_calls import Call, Reply, route
from .github_records import ApiError, Repo, not_found, now
from .github_shapes import iso, node_id
from .github_state import GitHubState

LEVELS = {"notice", "warning", "failure"}
CONCLUSIONS = {"action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out"}
STATUSES = {"queued", "in_progress", "completed", "waiting", "requested", "pending"}


@dataclass
class CheckRun:
    id: int
    repo: str
    head_sha: str
    name: str
    app_id: int
    suite_id: int
    status: str = "queued"
    conclusion: str | None = None
    external_id: str | None = None
    details_url: str | None = None
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations: list[dict] = field(default_factory=list)
    started_at: datetime = field(default_factory=now)
    completed_at: datetime | None = None


@dataclass
class ChecksState:
    runs: dict[int, CheckRun] = field(default_factory=dict)
    suites: dict[tuple[str, int, str], int] = field(default_factory=dict)  # (repo, app id, sha) -> suite id
    reviews: list[dict] = field(default_factory=list)  # deployment protection rule callbacks


def checks_of(state: GitHubState) -> ChecksState:
    found = getattr(state, "_checks", None)
    if found is None:
        found = ChecksState()
        state._checks = found
    return found


def _app_id(call: Call) -> int:
    if call.actor is None or call.actor.installation_id is None:
        raise ApiError(403, "You must authenticate via a GitHub App.")
    return call.state.installations[call.actor.installation_id].app_id


def _apply(call: Call, run: CheckRun, body: dict) -> None:
    for name in ("name", "external_id", "details_url", "status", "conclusion"):
        if name in body and body[name] is not None:
            setattr(run, name, body[name])
    if body.get("conclusion") is not None:
        run.status = "completed"
    if run.status not in STATUSES:
        raise ApiError(422, "Invalid request.\n\nstatus is not a valid value.")
    if run.conclusion is not None and run.conclusion not in CONCLUSIONS:
        raise ApiError(422, "Invalid request.\n\nconclusion is not a valid value.")
    if run.status == "completed" and run.conclusion is None:
        raise ApiError(422, "Invalid request.\n\nconclusion is required when status is completed.")
    if run.conclusion == "action_required" and not run.details_url:
        raise ApiError(422, "Invalid request.\n\ndetails_url is required when conclusion is action_required.")
    if run.status == "completed" and run.completed_at is None:
        run.completed_at = now()
    output = body.get("output")
    if output is not None:
        _apply_output(run, output)


def _apply_output(run: CheckRun, output: dict) -> None:
    if not isinstance(output, dict) or not output.get("title") or output.get("summary") is None:
        raise ApiError(422, "Invalid request.\n\n\"title\" and \"summary\" weren't supplied.")
    if len(output["summary"]) > 65535:
        raise ApiError(422, "Invalid request.\n\nOnly 65535 characters are allowed; 65536 were supplied.")
    annotations = output.get("annotations") or []
    if len(annotations) > 50:
        raise ApiError(422, "Invalid request.\n\nOnly 50 annotations are allowed per request.")
    for a in annotations:
        missing = [k for k in ("path", "start_line", "end_line", "annotation_level", "message") if a.get(k) in (None, "")]
        if missing or a["annotation_level"] not in LEVELS or a["end_line"] < a["start_line"]:
            raise ApiError(422, f"Invalid request.\n\nannotation is invalid: {missing or a.get('annotation_level')}")
    run.title, run.summary, run.text = output["title"], output["summary"], output.get("text")
    run.annotations.extend(dict(a) for a in annotations)


def check_run_json(call_or_shapes, repo: Repo, run: CheckRun, state: GitHubState) -> dict:
    shapes = getattr(call_or_shapes, "shapes", call_or_shapes)
    base = shapes.repo_url(repo)
    app = state.apps.get(run.app_id)
    return {
        "id": run.id, "node_id": node_id("CheckRun", run.id), "head_sha": run.head_sha,
        "external_id": run.external_id, "url": f"{base}/check-runs/{run.id}",
        "html_url": f"{shapes.api}/{repo.full_name}/runs/{run.id}", "details_url": run.details_url,
        "status": run.status, "conclusion": run.conclusion, "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at), "name": run.name,
        "output": {"title": run.title, "summary": run.summary, "text": run.text,
                   "annotations_count": len(run.annotations), "annotations_url": f"{base}/check-runs/{run.id}/annotations"},
        "check_suite": {"id": run.suite_id},
        "app": {"id": run.app_id, "slug": app.slug if app else "app", "node_id": node_id("App", run.app_id),
                "owner": shapes.user(app.owner) if app else None, "name": app.slug if app else "app"},
        "pull_requests": [],
    }


@route("POST", "/repos/{owner}/{repo}/check-runs")
def create_check_run(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("name", "head_sha")
    app_id = _app_id(call)
    sha = call.state.resolve(repo, body["head_sha"])
    checks = checks_of(call.state)
    suite = checks.suites.setdefault((repo.full_name, app_id, sha), call.state.next_id())
    run = CheckRun(call.state.next_id(), repo.full_name, sha, body["name"], app_id, suite)
    _apply(call, run, {k: v for k, v in body.items() if k != "name"})
    checks.runs[run.id] = run
    return Reply(201, check_run_json(call, repo, run, call.state))


def _run(call: Call, repo: Repo) -> CheckRun:
    run = checks_of(call.state).runs.get(call.params["id"])
    if run is None or run.repo != repo.full_name:
        raise not_found()
    return run


@route("PATCH", "/repos/{owner}/{repo}/check-runs/{id:int}")
def update_check_run(call: Call) -> Reply:
    repo, body = call.repo(), call.fields()
    run = _run(call, repo)
    if _app_id(call) != run.app_id:
        raise ApiError(403, "Resource not accessible by integration")
    _apply(call, run, body)
    return Reply(200, check_run_json(call, repo, run, call.state))


@route("GET", "/repos/{owner}/{repo}/check-runs/{id:int}")
def get_check_run(call: Call) -> Reply:
    repo = call.repo()
    return Reply(200, check_run_json(call, repo, _run(call, repo), call.state))


@route("GET", "/repos/{owner}/{repo}/check-runs/{id:int}/annotations")
def list_annotations(call: Call) -> Reply:
    repo = call.repo()
    return call.page(_run(call, repo).annotations, dict)


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}/check-runs")
def list_check_runs_for_ref(call: Call) -> Reply:
    repo = call.repo()
    sha = call.state.resolve(repo, call.params["ref"])
    runs = sorted((r for r in checks_of(call.state).runs.values() if r.repo == repo.full_name and r.head_sha == sha),
                  key=lambda r: -r.id)
    if call.query.get("check_name"):
        runs = [r for r in runs if r.name == call.query["check_name"]]
    if call.query.get("status"):
        runs = [r for r in runs if r.status == call.query["status"]]
    if call.query.get("filter", "latest") == "latest":
        seen: set[str] = set()
        runs = [r for r in runs if not (r.name in seen or seen.add(r.name))]
    page = call.page(runs, lambda r: check_run_json(call, repo, r, call.state))
    return Reply(200, {"total_count": len(runs), "check_runs": page.data}, page.headers)


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}/check-suites")
def list_check_suites_for_ref(call: Call) -> Reply:
    repo = call.repo()
    sha = call.state.resolve(repo, call.params["ref"])
    suites = [(app_id, sid) for (name, app_id, s), sid in checks_of(call.state).suites.items()
              if name == repo.full_name and s == sha]
    shapes = [{"id": sid, "head_sha": sha, "app": {"id": app_id}, "status": "completed", "rerequestable": True,
               "url": f"{call.shapes.repo_url(repo)}/check-suites/{sid}"} for app_id, sid in suites]
    return Reply(200, {"total_count": len(shapes), "check_suites": shapes})


@route("POST", "/repos/{owner}/{repo}/actions/runs/{run_id:int}/deployment_protection_rule")
def review_deployment_protection_rule(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("environment_name")
    app_id = _app_id(call)
    if body.get("state") not in ("approved", "rejected"):
        raise ApiError(422, "Invalid request.\n\nstate must be approved or rejected.")
    checks_of(call.state).reviews.append({"repo": repo.full_name, "run_id": call.params["run_id"], "app_id": app_id,
                                          "environment_name": body["environment_name"], "state": body["state"],
                                          "comment": body.get("comment")})
    return Reply(204, None)


ROUTES = [
    create_check_run, update_check_run, get_check_run, list_annotations, list_check_runs_for_ref,
    list_check_suites_for_ref, review_deployment_protection_rule,
]


# test API: end state and webhook payloads


def check_runs(fake, full_name: str, sha: str) -> list[dict]:
    """Every check run on `sha` (newest first), in REST shape plus its ``annotations``."""
    with fake._lock:
        repo = fake.state.repo(full_name)
        runs = sorted((r for r in checks_of(fake.state).runs.values() if r.repo == full_name and r.head_sha == sha),
                      key=lambda r: -r.id)
        return [check_run_json(fake.shapes, repo, r, fake.state) | {"annotations": list(r.annotations)} for r in runs]


def latest_check_runs(fake, full_name: str, sha: str) -> dict[str, dict]:
    """The newest run of each name on `sha`, by name: what branch protection sees."""
    out: dict[str, dict] = {}
    for run in check_runs(fake, full_name, sha):
        out.setdefault(run["name"], run)
    return out


def deployment_reviews(fake, full_name: str) -> list[dict]:
    with fake._lock:
        return [r for r in checks_of(fake.state).reviews if r["repo"] == full_name]


def check_run_event(fake, full_name: str, run_id: int, action: str = "rerequested", *, sender: str = "dana",
                    installation_id: int | None = None) -> dict:
    """A `check_run` webhook payload for a run as it is now, with the open PRs whose head is its commit."""
    with fake._lock:
        repo = fake.state.repo(full_name)
        run = checks_of(fake.state).runs[run_id]
        shape = check_run_json(fake.shapes, repo, run, fake.state)
        shape["check_suite"] = _suite_shape(fake, repo, run.suite_id, run.head_sha)
        shape["pull_requests"] = _pulls_at(fake, repo, run.head_sha)
        return _event(fake, repo, sender, installation_id, action=action, check_run=shape)


def check_suite_event(fake, full_name: str, sha: str, app_id: int, action: str = "rerequested", *, sender: str = "dana",
                      installation_id: int | None = None) -> dict:
    with fake._lock:
        repo = fake.state.repo(full_name)
        suite_id = checks_of(fake.state).suites[(full_name, app_id, sha)]
        return _event(fake, repo, sender, installation_id, action=action,
                      check_suite=_suite_shape(fake, repo, suite_id, sha) | {"pull_requests": _pulls_at(fake, repo, sha)})


def deployment_protection_rule_event(fake, full_name: str, environment: str, ref: str, sha: str, run_id: int, *,
                                     sender: str = "dana", installation_id: int | None = None) -> dict:
    """The `deployment_protection_rule` `requested` payload GitHub sends for a workflow job's deployment."""
    with fake._lock:
        repo = fake.state.repo(full_name)
        base = fake.shapes.repo_url(repo)
        deployment = {"url": f"{base}/deployments/1", "id": 1, "node_id": node_id("Deployment", 1), "sha": sha,
                      "ref": ref, "task": "deploy", "payload": {}, "original_environment": environment,
                      "environment": environment, "description": None, "creator": fake.shapes.user(sender),
                      "created_at": iso(now()), "updated_at": iso(now()), "statuses_url": f"{base}/deployments/1/statuses",
                      "repository_url": base}
        return _event(fake, repo, sender, installation_id, action="requested", environment=environment, event="push",
                      deployment_callback_url=f"{base}/actions/runs/{run_id}/deployment_protection_rule",
                      deployment=deployment, pull_requests=[])


def _suite_shape(fake, repo: Repo, suite_id: int, sha: str) -> dict:
    return {"id": suite_id, "node_id": node_id("CheckSuite", suite_id), "head_sha": sha, "head_branch": None,
            "status": "completed", "updated_at": iso(now()), "url": f"{fake.shapes.repo_url(repo)}/check-suites/{suite_id}"}


def _pulls_at(fake, repo: Repo, sha: str) -> list[dict]:
    base = fake.shapes.repo_url(repo)
    return [{"url": f"{base}/pulls/{i.number}", "id": i.id, "number": i.number,
             "head": {"ref": i.pull.head_ref, "sha": i.pull.head_sha, "repo": {"id": repo.id, "url": base, "name": repo.name}},
             "base": {"ref": i.pull.base_ref, "sha": repo.branches.get(i.pull.base_ref), "repo": {"id": repo.id, "url": base, "name": repo.name}}}
            for i in repo.issues.values() if i.pull and i.state == "open" and i.pull.head_sha == sha]


def _event(fake, repo: Repo, sender: str, installation_id: int | None, **fields) -> dict:
    payload = dict(fields) | {"repository": fake.shapes.repo(repo), "sender": fake.shapes.user(sender)}
    if installation_id is not None:
        payload["installation"] = {"id": installation_id, "node_id": node_id("Installation", installation_id)}
    return payload
