"""The gate's check runs on GitHub (Checks API, App authentication only), each idempotent by key.

A check run is found by its name and ``external_id`` (the promotion's key with the attempt) among
this App's runs on the commit (another App's run of the same name and key is never the gate's) and edited while it is in progress, or created when absent, so a retried or resumed step
never opens a second run for the same attempt; a completed run is left as it is when it already
says the same, and otherwise never rewritten: a re-run, a re-label or a later evaluation of the
commit opens new runs, which GitHub then shows (the newest of a name counts). Annotations
go at most 50 per request: the first batch with the create or update, the rest in further updates;
a run that already holds annotations is not given them again.

The aggregate ``promotion-gate`` is recomputed from the newest run of each ``promotion-gate / <name>``
of this App on the commit, after each system's own run is written, so the last system to finish
sets it. Token authentication cannot write check runs: it keeps the commit statuses.
"""

from __future__ import annotations

import logging

from github import Auth
from github.CheckRun import CheckRun
from github.Repository import Repository
from promotion_gate.config.secrets import read_secret
from promotion_gate.config.settings import Settings
from promotion_gate.github_api.client import Retrying
from promotion_gate.notifications.checks_bodies import CheckRunBody, SeenRun, build_aggregate_check, latest_by_name

log = logging.getLogger("promotion_gate.github")


def uses_checks(settings: Settings) -> bool:
    """Check runs need a GitHub App: the same choice `build_auth` makes (a token wins when set)."""
    return settings.github_app_id is not None and read_secret(settings, "github_token") is None


def post_check_run(call: Retrying, repo: Repository, sha: str, body: CheckRunBody, derived: bool = False) -> CheckRun:
    """`derived`: a run recomputed from others (the aggregate), whose completed conclusion may be
    rewritten by a completed one; it still gets a new run to go back in progress."""
    outputs = body.outputs()
    found: list[CheckRun] = []

    def step() -> CheckRun:
        existing = find_check_run(repo, sha, body.name, body.external_id)
        if existing is not None and existing.status == "completed":
            if _same(existing, body):  # a retried or resumed step: already said
                found[:] = [existing]
                return existing
            if not (derived and body.status == "completed"):
                existing = None  # a completed run is never rewritten: a new evaluation gets a run of its own
        found[:] = [existing] if existing is not None else []
        first = outputs[0]
        if existing is not None and existing.output is not None and (existing.output.annotations_count or 0) > 0:
            first = {k: v for k, v in first.items() if k != "annotations"}  # already given: not twice
        fields = {"status": body.status, "output": first}
        if body.conclusion:
            fields["conclusion"] = body.conclusion
        if body.details_url:
            fields["details_url"] = body.details_url
        if existing is None:
            return repo.create_check_run(body.name, sha, external_id=body.external_id, **fields)
        existing.edit(**fields)
        return existing

    run = call(f"check run {body.name}", step)
    already = bool(found) and found[0].output is not None and (found[0].output.annotations_count or 0) > len(outputs[0].get("annotations", []))
    for more in ([] if already else outputs[1:]):
        call(f"annotations of {body.name}", run.edit, output=more)
    return run


def _same(run: CheckRun, body: CheckRunBody) -> bool:
    output = run.output
    return (run.conclusion == body.conclusion and output is not None and output.title == body.title
            and output.summary == body.summary)


def find_check_run(repo: Repository, sha: str, name: str, external_id: str) -> CheckRun | None:
    """The gate's newest run of `name` and `external_id` on `sha`: made by this App (the listing says
    which App made each run: no extra request). Another App's run of the same name and key is not the
    gate's, whatever it says: it is neither taken for a lost create's run nor edited."""
    own = own_app_id(repo)
    runs = repo.get_commit(sha).get_check_runs(check_name=name, filter="all")
    mine = [r for r in runs if r.external_id == external_id and _made_by(r, own)]
    return max(mine, key=lambda r: r.id) if mine else None


def own_app_id(repo: Repository) -> str | None:
    """The App the gate writes as (its installation token's App; PyGithub keeps the id as given, an
    int or a str), None with any other authentication."""
    auth = repo.requester.auth
    return str(auth.app_id) if isinstance(auth, Auth.AppInstallationAuth) else None


def _made_by(run: CheckRun, app_id: int | str | None) -> bool:
    """Whether `run` was made by the App `app_id` (any run when no App is known); ids compared as text,
    as PyGithub keeps an App id as it was given."""
    return app_id is None or (run.app is not None and str(run.app.id) == str(app_id))


def fetch_seen_runs(call: Retrying, repo: Repository, sha: str, app_id: int | None) -> list[SeenRun]:
    """The newest run of each name on `sha` made by this App (another App's `promotion-gate` does not count)."""
    def read() -> list[tuple[int, SeenRun]]:
        runs = repo.get_commit(sha).get_check_runs(filter="all")
        return [(r.id, SeenRun(r.name, r.status, r.conclusion)) for r in runs
                if _made_by(r, app_id)]

    return latest_by_name(call(f"read the check runs of {sha[:7]}", read))


def refresh_aggregate(call: Retrying, repo: Repository, sha: str, key: str, details_url: str | None,
                      app_id: int | None) -> CheckRunBody | None:
    """Write the aggregate from what GitHub holds; read once more after, and rewrite if a system moved."""
    body = None
    for _ in range(2):
        seen = fetch_seen_runs(call, repo, sha, app_id)
        fresh = build_aggregate_check(key, seen, details_url)
        if fresh is None or fresh == body:
            return body
        post_check_run(call, repo, sha, fresh, derived=True)
        body = fresh
    return body
