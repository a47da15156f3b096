"""Read what production runs: the lock files on the production branch, and the manifest each pins.

What both sources share: one system built from its lock bytes and a reader of files at a commit.
``local_repo.inventory`` reads a local repository with git (``ls-tree`` and ``cat-file`` at the
branch's commit and at the lock's source commit, never the working tree); ``github_api.inventory``
reads GitHub through PyGithub (one tree listing, then one read per file). The manifest is read at the lock's ``source_commit`` and must
hash to the lock's ``manifest_sha256``; anything that cannot be read or does not match becomes a
problem on the system (re-certification finding PG-RECERT-006), never a silently current row.
:func:`verify_locks` then judges each lock as the lock guard judges one (PG-RECERT-007 when it
fails): the recertify flow and the `inventory` and `policy diff` commands call it alike.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from promotion_gate.checklists import store_json
from promotion_gate.checklists.candidate import LOCK_FILE, parse_lock, read_manifest, system_path
from promotion_gate.checklists.lock_guard import judge_lock
from promotion_gate.checklists.recertify import ProductionSystem

MAX_FILE_BYTES = 1 << 20


def system_of(path: str) -> str | None:
    parts = path.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "ai-systems" and parts[2] == LOCK_FILE else None


def build_system(repository: str, system: str, lock_bytes: bytes | None, read_at, approvers: list[str] = ()) -> ProductionSystem:
    """One system from its lock bytes; ``read_at(commit, path)`` returns a file's bytes or None."""
    path = system_path(system, LOCK_FILE)
    if lock_bytes is None or len(lock_bytes) > MAX_FILE_BYTES:
        return ProductionSystem(repository=repository, system=system, problems=[f"{path}: missing or larger than {MAX_FILE_BYTES} bytes"])
    digest = hashlib.sha256(lock_bytes).hexdigest()
    try:
        lock = parse_lock(lock_bytes, path)
    except ValueError as exc:
        return ProductionSystem(repository=repository, system=system, lock_sha256=digest, problems=[str(exc)])
    base = ProductionSystem(repository=repository, system=system, lock=lock, lock_sha256=digest, approvers=list(approvers))
    manifest_path = system_path(system, "promotion.yaml")
    try:
        text = read_at(lock.source_commit, manifest_path)
    except Exception as exc:  # a missing commit, a git or GitHub failure: the system's facts are unknown
        return base.model_copy(update={"problems": [f"{manifest_path} at {lock.source_commit[:12]}: {type(exc).__name__}: {exc}"]})
    if text is None:
        return base.model_copy(update={"problems": [f"{manifest_path} is not at the lock's source commit {lock.source_commit[:12]}"]})
    if hashlib.sha256(text).hexdigest() != lock.manifest_sha256:
        return base.model_copy(update={"problems": [f"{manifest_path} at {lock.source_commit[:12]} does not hash to the lock's manifest_sha256"]})
    manifest, problems = read_manifest(system, text)
    return base.model_copy(update={"manifest": manifest, "problems": problems})


def approvers_from_store(store: str | None, decision_id: str) -> list[str]:
    """Who approved a decision, from the audit store's decision.json (for locks that do not say)."""
    if not store:
        return []
    try:
        data = store_json.loads((Path(store) / "decisions" / decision_id / "decision.json").read_bytes())
    except (OSError, ValueError):
        return []
    return sorted({s.get("identity") for s in data.get("signoffs") or [] if s.get("action") == "approve" and s.get("identity")})


def lock_approvers(lock_bytes: bytes | None, store: str | None) -> list[str]:
    try:
        decision_id = store_json.loads(lock_bytes or b"{}").get("decision_id")
    except ValueError:
        return []
    return approvers_from_store(store, decision_id) if isinstance(decision_id, str) else []


def verify_locks(systems: list[ProductionSystem], ledger, on_github: set[str]) -> list[ProductionSystem]:
    """Each production lock judged as the lock guard judges one (its signature by a trusted key, its
    decision's verified ledger entry in ``ledger``, an ``audit_store.lookup.TrustedLedger``, and the
    lock that decision implies): a lock merged past the guard (an administrator's bypass, a
    repository without the required checks, a copy from another system) gets ``unverified``, the
    reason, which re-certification judges as PG-RECERT-007. ``on_github``: the repositories read
    from GitHub, whose decision must name the same repository."""
    out = []
    for s in systems:
        if s.lock is not None:
            found = judge_lock(system_path(s.system, LOCK_FILE), s.lock, ledger.keys, ledger.recorded,
                               s.repository if s.repository in on_github else None)
            s = s if found.ok else s.model_copy(update={"unverified": found.reason})
        out.append(s)
    return out
