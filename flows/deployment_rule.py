"""The gate as a custom deployment protection rule of a GitHub Environment.

GitHub sends ``deployment_protection_rule`` (``requested``) when a workflow job targets an
environment that has the App's rule enabled; the gate answers with
``POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule``
(``environment_name``, ``state`` approved or rejected, ``comment``), through its own API URL.

Approved only when the environment is one the gate governs (``PROMOTION_GATE_DEPLOYMENT_ENVIRONMENTS``,
default ``production``) and the deployed commit is what the gate promoted: GitHub lists its whole
tree (not ``truncated``); every system folder under ``ai-systems/`` holds a ``production.lock.json``
(a regular file, not a symbolic link) that verifies (signed by the gate, for a promoted decision on
record, the lock that decision implies); and the system's manifest and every evidence file the
lock pins hash, at the deployed commit, to the digests in the lock. A system added next to a
promoted one, or a manifest or evidence file changed after its promotion, is rejected. Anything
else, an error included, is rejected with the reason: a deployment never passes by default.
"""

from __future__ import annotations

import hashlib
import logging

from promotion_gate.audit_store.store import AuditStore
from promotion_gate.checklists.candidate import LOCK_FILE, parse_lock, system_path
from promotion_gate.checklists.lock_guard import verify_lock
from promotion_gate.config.settings import Settings
from promotion_gate.flows.lock_guard_flow import trusted_ledger
from promotion_gate.github_api.client import Retrying
from promotion_gate.github_api.source import AtRef
from promotion_gate.notifications.check_events import ReviewDeployment
from promotion_gate.notifications.github_bodies import fit

log = logging.getLogger("promotion_gate.github")
COMMENT_LIMIT = 1000
MANIFEST_FILE = "promotion.yaml"  # as checklists/candidate.py reads it
REGULAR_FILE = "100644"  # git's mode of a plain file (an executable is 100755, a link 120000)


def judge_deployment(settings: Settings, call: Retrying, repo, ask: ReviewDeployment, store: AuditStore) -> tuple[str, str]:
    """(state, comment) for the deployment of `ask.head_sha` to `ask.environment`."""
    if ask.environment not in settings.deployment_environments:
        return "rejected", f"environment {ask.environment!r} is not governed by promotion-gate " \
                           f"(governed: {', '.join(settings.deployment_environments)})"
    sha = ask.head_sha[:7]
    tree = call(f"read the tree of {sha}", repo.get_git_tree, ask.head_sha, recursive=True)
    if tree.raw_data.get("truncated"):
        return "rejected", f"GitHub lists only part of the tree of {sha} (truncated): the gate cannot see every system"
    entries = {e.path: e for e in tree.tree}
    systems = sorted({parts[1] for parts in (p.split("/") for p in entries) if len(parts) == 3 and parts[0] == "ai-systems"
                      and parts[2] in (MANIFEST_FILE, LOCK_FILE)})
    if not systems:
        return "rejected", f"{sha} holds no production.lock.json: nothing was promoted at this commit"
    source, ledger = AtRef(repo, ask.head_sha, call), trusted_ledger(settings, store)
    bad = [problem for name in systems if (problem := _system_problem(name, entries, source, ledger, ask.repository))]
    if bad:
        return "rejected", "; ".join(bad)
    return "approved", f"{len(systems)} system(s) at {sha}, each as promotion-gate promoted it (lock, manifest and evidence)"


def _system_problem(name: str, entries: dict, source: AtRef, ledger, repository: str) -> str | None:
    """Why the system ``name`` at the deployed commit is not what the gate promoted; None when it is."""
    lock_path, manifest_path = system_path(name, LOCK_FILE), system_path(name, MANIFEST_FILE)
    entry = entries.get(lock_path)
    if entry is None:
        return f"{lock_path} is missing: {name} was never promoted (promote it, or deploy without it)"
    if entry.type != "blob" or entry.mode != REGULAR_FILE:
        return f"{lock_path}: not a regular file (git mode {entry.mode})"
    data = source.read(lock_path, regular=True)
    found = verify_lock(lock_path, data, ledger.keys, ledger.recorded, repository)
    if not found.ok:
        return f"{lock_path}: {found.reason}"
    lock = parse_lock(data, lock_path)
    pinned = [(manifest_path, lock.manifest_sha256)] + [(system_path(name, e.path), e.sha256) for e in lock.evidence]
    for path, digest in pinned:
        at_deploy = source.read(path)
        if at_deploy is None:
            return f"{path} is missing at the deployed commit: {name} was promoted with it ({lock.decision_id})"
        if hashlib.sha256(at_deploy).hexdigest() != digest:
            return f"{path} changed after {name} was promoted ({lock.decision_id}): promote it again"
    return None


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
