"""Read what production runs: the lock files on the production branch, and the manifest each pins.

A local repository is read with git (``ls-tree`` and ``cat-file`` at the branch's commit and at
the lock's source commit, never the working tree); a GitHub repository through PyGithub (one tree
listing, then one read per file). The manifest is read at the lock's ``source_commit`` and must
hash to the lock's ``manifest_sha256``; anything that cannot be read or does not match becomes a
problem on the system (re-certification finding PG-RECERT-006), never a silently current row.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from promotion_gate.checklists.candidate import LOCK_FILE, parse_lock, read_manifest, system_path
from promotion_gate.checklists.recertify import ProductionSystem

MAX_FILE_BYTES = 1 << 20


def _system_of(path: str) -> str | None:
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
        data = json.loads((Path(store) / "decisions" / decision_id / "decision.json").read_bytes())
    except (OSError, ValueError):
        return []
    return sorted({s.get("identity") for s in data.get("signoffs") or [] if s.get("action") == "approve" and s.get("identity")})


def read_local_systems(path: str, production_branch: str = "main", store: str | None = None) -> list[ProductionSystem]:
    from promotion_gate.flows.local_repo import LocalRepo

    repo = LocalRepo(path)
    base = repo.resolve(production_branch)
    if base is None:
        raise FileNotFoundError(f"{path}: no branch {production_branch!r} (the production branch)")
    names = repo.git("ls-tree", "-r", "-z", "--name-only", base, "--", "ai-systems/").decode().split("\0")
    systems = []
    for name in sorted(n for n in names if _system_of(n)):
        system = _system_of(name)
        lock_bytes = repo.read(base, name)
        approvers = _lock_approvers(lock_bytes, store)
        systems.append(build_system(str(repo.path), system, lock_bytes, repo.read, approvers))
    return systems


def _lock_approvers(lock_bytes: bytes | None, store: str | None) -> list[str]:
    try:
        decision_id = json.loads(lock_bytes or b"{}").get("decision_id")
    except ValueError:
        return []
    return approvers_from_store(store, decision_id) if isinstance(decision_id, str) else []


def read_github_systems(settings, repositories: list[str], store: str | None = None) -> list[ProductionSystem]:
    """Every lock file on each repository's production branch (the setting, else the default branch)."""
    from promotion_gate.flows.github_client import open_github, retrying_from
    from promotion_gate.flows.github_source import AtRef

    call = retrying_from(settings)
    systems = []
    for full_name in repositories:
        repo = open_github(settings, full_name).get_repo(full_name)
        branch = settings.production_branch or repo.default_branch
        head = call(f"read branch {branch}", repo.get_branch, branch).commit.sha
        tree = call(f"list the tree of {branch}", repo.get_git_tree, head, recursive=True)
        at_head = AtRef(repo, head, call)
        for name in sorted(e.path for e in tree.tree if e.type == "blob" and _system_of(e.path)):
            lock_bytes = at_head.read(name)
            systems.append(build_system(full_name, _system_of(name), lock_bytes,
                                        lambda commit, p: AtRef(repo, commit, call).read(p), _lock_approvers(lock_bytes, store)))
    return systems


def installed_repositories(settings) -> tuple[list[str], list[str]]:
    """Every repository the GitHub App is installed on (GET /app/installations, then GET
    /installation/repositories with each installation's token; only the configured installation
    when ``github_installation_id`` is set), and notes on installations that were left out."""
    from github import Auth, GithubIntegration

    from promotion_gate.flows.github_client import retrying_from
    from promotion_gate.flows.secrets import require_secret
    from promotion_gate.flows.settings import SettingsError

    if settings.github_app_id is None:
        raise SettingsError("--github without OWNER/REPO lists the GitHub App's installations: set "
                            "PROMOTION_GATE_GITHUB_APP_ID and its private key, or name the repositories")
    app = Auth.AppAuth(settings.github_app_id, require_secret(settings, "github_app_private_key").get_secret_value())
    integration = GithubIntegration(base_url=settings.github_api_url, auth=app, retry=None,
                                    timeout=settings.github_timeout_seconds)
    call = retrying_from(settings)
    if settings.github_installation_id:
        installations = [call("read the App installation", integration.get_app_installation, settings.github_installation_id)]
    else:
        installations = call("list the App's installations", lambda: list(integration.get_installations()))
    names, notes = {}, []
    for inst in installations:
        if inst.suspended_at is not None:
            notes.append(f"installation {inst.id} is suspended: its repositories are not in the inventory")
            continue
        for name in call(f"list the repositories of installation {inst.id}", lambda i=inst: [r.full_name for r in i.get_repos()]):
            names.setdefault(name.lower(), name)
    return sorted(names.values(), key=str.lower), notes
