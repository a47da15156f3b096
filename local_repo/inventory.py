"""What production runs, read from a local repository's production branch with git."""

from __future__ import annotations

from promotion_gate.checklists.recertify import ProductionSystem
from promotion_gate.forge.production_reader import build_system, lock_approvers, system_of


def read_local_systems(path: str, production_branch: str = "main", store: str | None = None) -> list[ProductionSystem]:
    from promotion_gate.local_repo.git import LocalRepo

    repo = LocalRepo(path)
    base = repo.resolve(production_branch)
    if base is None:
        raise FileNotFoundError(f"{path}: no branch {production_branch!r} (the production branch)")
    names = repo.git("ls-tree", "-r", "-z", "--name-only", base, "--", "ai-systems/").decode().split("\0")
    systems = []
    for name in sorted(n for n in names if system_of(n)):
        system = system_of(name)
        lock_bytes = repo.read(base, name)
        approvers = lock_approvers(lock_bytes, store)
        systems.append(build_system(str(repo.path), system, lock_bytes, repo.read, approvers))
    return systems
