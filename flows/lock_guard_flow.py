"""The lock-file guard on GitHub: every changed ``production.lock.json`` of a PR into production.

Reads the PR's changed files; for each lock file among them (added, modified, renamed to or from,
deleted) reads it at the PR's head commit and verifies it (checklists/lock_guard.py) against the
gate's pinned key (the public half of the signing key the gate itself signs with) and the ledger
of the audit store. The verdict goes to ``promotion-gate / lock-guard``: a check run with a GitHub
App, the commit status ``promotion-gate/lock-guard`` with a token. A PR into another branch gets
nothing. A lock of a decision not yet on record fails; the gate runs the guard again on its own
promotion PR once its decision is recorded (GitHubForge.conclude).
"""

from __future__ import annotations

from promotion_gate.audit_store import signing_keys
from promotion_gate.audit_store.lookup import TrustedLedger, read_trusted
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.checklists.lock_guard import LockFinding, is_lock_path, summarize, verify_lock
from promotion_gate.checklists.recertify import ProductionSystem
from promotion_gate.config.settings import Settings
from promotion_gate.forge.candidate_reader import SourceError
from promotion_gate.forge.production_reader import verify_locks
from promotion_gate.github_api.checks import fetch_seen_runs, post_check_run, uses_checks
from promotion_gate.github_api.client import Retrying
from promotion_gate.github_api.source import AtRef, IncompleteFiles, complete_listing
from promotion_gate.github_api.writes import set_status
from promotion_gate.notifications.checks_bodies import AGGREGATE, build_change_aggregate, build_lock_guard_check
from promotion_gate.notifications.github_bodies import CommitStatus, fit
from promotion_gate.notifications.github_events import parse_changed_systems

STATUS_CONTEXT = "promotion-gate/lock-guard"


def pinned_keys(settings: Settings, store: AuditStore) -> dict:
    """The keys pinned outside the store (``PROMOTION_GATE_TRUSTED_KEYS``, as ``audit verify`` trusts:
    an earlier gate key stays trusted across a rotation), else the gate's own signing key. A key
    published in the store by someone else is never trusted."""
    pinned = signing_keys.pinned_keys(settings=settings)
    if pinned:
        return pinned
    key = store.signing_key
    return {key.key_id: key.private_key.public_key()}


def trusted_ledger(settings: Settings, store: AuditStore) -> TrustedLedger:
    """The ledger read once, with the keys a lock may be signed with: the pinned ones and every key
    they handed over to in a signed rotation (audit_store/lookup.py verifies each entry looked up)."""
    return read_trusted(store.root, pinned_keys(settings, store))


def verify_production(settings: Settings, systems: list[ProductionSystem], on_github: set[str]) -> list[ProductionSystem]:
    """Each production lock judged as the lock guard judges one, against the run's audit store and
    pinned keys (forge/production_reader.py verify_locks): a lock merged past the guard is
    PG-RECERT-007 (the recertify flow; the CLI's inventory reads its keys without generating one)."""
    if not any(s.lock is not None for s in systems):
        return systems
    return verify_locks(systems, trusted_ledger(settings, AuditStore(settings.audit_store, settings=settings)), on_github)


def fetch_changed_locks(call: Retrying, repo, pull_request: int, head_sha: str, seen: list[str] | None = None
                        ) -> dict[str, bytes | None]:
    """Each lock path the PR changes -> its bytes at the head (None: deleted or renamed away);
    every changed path is appended to `seen`."""
    pull = repo.get_pull(pull_request)
    files = call(f"list the files of #{pull_request}", lambda: list(pull.get_files()))
    complete_listing(pull, len(files))
    if seen is not None:
        seen.extend(p for f in files for p in (f.filename, f.previous_filename) if p)
    paths: dict[str, bool] = {}
    for f in files:
        if is_lock_path(f.filename):
            paths[f.filename] = f.status != "removed"
        if f.previous_filename and is_lock_path(f.previous_filename) and f.previous_filename != f.filename:
            paths.setdefault(f.previous_filename, False)
    source = AtRef(repo, head_sha, call)
    return {path: (source.read(path, regular=True) if present else None) for path, present in sorted(paths.items())}


def read_changed(call: Retrying, repo, pull_request: int, head_sha: str, seen: list[str]) -> tuple[dict, list[LockFinding]]:
    """The changed locks, or a failing finding when they cannot all be seen or read (never a pass)."""
    try:
        return fetch_changed_locks(call, repo, pull_request, head_sha, seen), []
    except (IncompleteFiles, SourceError) as exc:
        return {}, [LockFinding(f"#{pull_request}", False, str(exc))]


def guard_locks(settings: Settings, call: Retrying, repo, pull_request: int, head_sha: str, base: str,
                store: AuditStore, repository: str) -> list[LockFinding] | None:
    """Verify the PR's locks and write the verdict; None when the PR is not into the production branch."""
    production = settings.production_branch or call("read the default branch", lambda: repo.default_branch)
    if base != production:
        return None
    paths: list[str] = []
    changed, findings = read_changed(call, repo, pull_request, head_sha, paths)
    ledger = trusted_ledger(settings, store) if changed else None
    findings += [verify_lock(path, data, ledger.keys, ledger.recorded, repository) for path, data in changed.items()]
    post_guard_verdict(settings, call, repo, head_sha, findings)
    if uses_checks(settings):
        systems = parse_changed_systems([p for p in paths if not is_lock_path(p)])
        post_change_aggregate(settings, call, repo, f"{repo.full_name}#{pull_request}@{head_sha}", head_sha, systems,
                              summarize(findings)[0])
    return findings


def post_change_aggregate(settings: Settings, call: Retrying, repo, key: str, sha: str, systems: list[str],
                          guard_passes: bool) -> None:
    """The required `promotion-gate` on a PR the gate does not evaluate (branch protection would wait
    for it forever): written only when the gate has not already written one on this commit."""
    if systems and any(r.name == AGGREGATE for r in fetch_seen_runs(call, repo, sha, settings.github_app_id)):
        return  # the gate evaluates (or evaluated) this commit: its aggregate stands
    post_check_run(call, repo, sha, build_change_aggregate(key, systems, guard_passes))


def post_guard_verdict(settings: Settings, call: Retrying, repo, sha: str, findings: list[LockFinding]) -> None:
    passes, line = summarize(findings)
    if uses_checks(settings):
        post_check_run(call, repo, sha, build_lock_guard_check(sha, passes, line, findings))
    else:
        set_status(call, repo, sha, CommitStatus("success" if passes else "failure", STATUS_CONTEXT, fit(line)))


def guard_commit(settings: Settings, call: Retrying, repo, sha: str, paths: list[str], store: AuditStore,
                 repository: str) -> list[LockFinding]:
    """The guard on the gate's own promotion commit, once its decision is on record (the PR's own
    `opened` event may have been judged before the ledger had the decision)."""
    source = AtRef(repo, sha, call)
    ledger = trusted_ledger(settings, store)
    findings = [verify_lock(p, source.read(p, regular=True), ledger.keys, ledger.recorded, repository) for p in paths]
    post_guard_verdict(settings, call, repo, sha, findings)
    if uses_checks(settings):  # the promotion PR into production needs the required aggregate too
        post_change_aggregate(settings, call, repo, f"promotion@{sha}", sha, [], summarize(findings)[0])
    return findings
