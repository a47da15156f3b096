"""The `promotion-request` flow's enforcement steps: check runs at the start, the lock guard, the
deployment review, and a re-run's author. Each is one task with one kind of side effect.

With token authentication, ``post_pending`` and ``post_voided`` return False and the caller keeps
its commit status; with a GitHub App they write check runs instead.
"""

from __future__ import annotations

from dataclasses import replace

from prefect import task
from prefect.cache_policies import NO_CACHE
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.checklists.decision import PromotionRequest
from promotion_gate.config.settings import Settings
from promotion_gate.flows.deployment_rule import answer_deployment
from promotion_gate.flows.lock_guard_flow import guard_locks
from promotion_gate.github_api.checks import post_check_run, refresh_aggregate, uses_checks
from promotion_gate.github_api.client import Retrying, open_github, retrying_from
from promotion_gate.notifications.check_events import GuardLocks, Rerun, ReviewDeployment
from promotion_gate.notifications.checks_bodies import CheckRunBody, aggregate_key, build_pending_check, system_check_name
from promotion_gate.prefect_api.gate_runs import GateRun

__all__ = ["GuardLocks", "Rerun", "ReviewDeployment", "guard_pull", "post_pending", "post_voided", "review_deployment",
           "with_author"]


def _repo(settings: Settings, repository: str):
    return open_github(settings, repository).get_repo(repository, lazy=True)


def post_pending(settings: Settings, call: Retrying, repo, request: PromotionRequest, details_url: str | None) -> bool:
    """The system's check run in progress and the aggregate with it; False with a token (statuses instead)."""
    if not uses_checks(settings):
        return False
    post_check_run(call, repo, request.commit, build_pending_check(request, details_url))
    refresh_aggregate(call, repo, request.commit, aggregate_key(request), details_url, settings.github_app_id)
    return True


def post_voided(settings: Settings, call: Retrying, repo, repository: str, run: GateRun, reason: str) -> bool:
    if not uses_checks(settings) or not run.commit or not run.system:
        return False
    body = CheckRunBody(system_check_name(run.system), f"voided:{run.commit}:{run.system}", "completed", reason[:255],
                        f"This evaluation was voided: {reason}.", "cancelled")
    post_check_run(call, repo, run.commit, body)
    refresh_aggregate(call, repo, run.commit, f"voided:{run.commit}", None, settings.github_app_id)
    return True


# The tasks get the run's settings from the flow (read once); no cache key is made of them (secrets).
@task(name="guard-lock-files", cache_policy=NO_CACHE)
def guard_pull(settings: Settings, repository: str, pull_request: int, head_sha: str, base: str | None) -> int | None:
    """`promotion-gate / lock-guard` on the PR's head; the number of failing locks (None: not into production)."""
    repo, call = _repo(settings, repository), retrying_from(settings)
    if base is None:
        base = call(f"read #{pull_request}", lambda: repo.get_pull(pull_request).base.ref)
    findings = guard_locks(settings, call, repo, pull_request, head_sha, base, AuditStore(settings.audit_store, settings=settings),
                           repository)
    return None if findings is None else sum(not f.ok for f in findings)


@task(name="review-deployment", cache_policy=NO_CACHE)
def review_deployment(settings: Settings, ask: ReviewDeployment) -> str:
    state, _ = answer_deployment(settings, retrying_from(settings), _repo(settings, ask.repository), ask,
                                 AuditStore(settings.audit_store, settings=settings))
    return state


@task(name="read-pull-author", cache_policy=NO_CACHE)
def with_author(settings: Settings, ask: Rerun) -> Rerun:
    """A re-run's payload names who clicked, not who wrote the PR: read the author (separation of duties)."""
    repo, call = _repo(settings, ask.repository), retrying_from(settings)
    login = call(f"read #{ask.pull_request}", lambda: repo.get_pull(ask.pull_request).user.login)
    return replace(ask, author=login)
