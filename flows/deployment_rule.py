"""The gate as a custom deployment protection rule of a GitHub Environment.

GitHub sends ``deployment_protection_rule`` (``requested``) when a workflow job targets an
environment that has the App's rule enabled; the gate answers with
``POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule``
(``environment_name``, ``state`` approved or rejected, ``comment``), through its own API URL.

Approved only when the environment is one the gate governs (``PROMOTION_GATE_DEPLOYMENT_ENVIRONMENTS``,
default ``production``) and the deployed commit holds at least one ``production.lock.json`` and
every one of them verifies (signed by the gate, for a promoted decision on record). Anything else,
an error included, is rejected with the reason: a deployment never passes by default.
"""

from __future__ import annotations

import logging

from promotion_gate.audit_store.store import AuditStore
from promotion_gate.checklists.lock_guard import is_lock_path, verify_lock
from promotion_gate.config.settings import Settings
from promotion_gate.flows.lock_guard_flow import trusted_ledger
from promotion_gate.github_api.client import Retrying
from promotion_gate.github_api.source import AtRef
from promotion_gate.notifications.check_events import ReviewDeployment
from promotion_gate.notifications.github_bodies import fit

log = logging.getLogger("promotion_gate.github")
COMMENT_LIMIT = 1000


def judge_deployment(settings: Settings, call: Retrying, repo, ask: ReviewDeployment, store: AuditStore) -> tuple[str, str]:
    """(state, comment) for the deployment of `ask.head_sha` to `ask.environment`."""
    if ask.environment not in settings.deployment_environments:
        return "rejected", f"environment {ask.environment!r} is not governed by promotion-gate " \
                           f"(governed: {', '.join(settings.deployment_environments)})"
    tree = call(f"read the tree of {ask.head_sha[:7]}", repo.get_git_tree, ask.head_sha, recursive=True)
    locks = sorted(e.path for e in tree.tree if e.type == "blob" and is_lock_path(e.path))
    if not locks:
        return "rejected", f"{ask.head_sha[:7]} holds no production.lock.json: nothing was promoted at this commit"
    source, ledger = AtRef(repo, ask.head_sha, call), trusted_ledger(settings, store)
    bad = [f for f in (verify_lock(p, source.read(p), ledger.keys, ledger.recorded, ask.repository) for p in locks) if not f.ok]
    if bad:
        return "rejected", "; ".join(f"{f.path}: {f.reason}" for f in bad)
    return "approved", f"{len(locks)} lock file(s) at {ask.head_sha[:7]} written by promotion-gate for promoted decisions"


def answer_deployment(settings: Settings, call: Retrying, repo, ask: ReviewDeployment, store: AuditStore) -> tuple[str, str]:
    try:
        state, comment = judge_deployment(settings, call, repo, ask, store)
    except Exception as exc:  # fail closed: the answer is still sent, and it is a rejection
        log.error("deployment review of %s failed: %s", ask.key, type(exc).__name__)
        state, comment = "rejected", f"promotion-gate could not verify the deployment: {type(exc).__name__}"
    post_review(call, repo, ask, state, fit(comment, COMMENT_LIMIT))
    return state, comment


def post_review(call: Retrying, repo, ask: ReviewDeployment, state: str, comment: str) -> None:
    """PyGithub has no method for this endpoint: its requester, with the repository's own URL."""
    url = f"{repo.url}/actions/runs/{ask.run_id}/deployment_protection_rule"
    body = {"environment_name": ask.environment, "state": state, "comment": comment}
    call(f"review the deployment of run {ask.run_id}", repo._requester.requestJsonAndCheck, "POST", url, input=body)
