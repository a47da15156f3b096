"""Choose the forge a request lives on: a local git repository (a path) or GitHub (owner/name)."""

from __future__ import annotations

from pathlib import Path

from promotion_gate.checklists.decision import PromotionRequest
from promotion_gate.config.settings import Settings
from promotion_gate.forge.protocol import Forge


def is_local(repository: str) -> bool:
    return repository.startswith(("/", "./", "file:")) or Path(repository).is_absolute()


def forge_for(request: PromotionRequest, settings: Settings) -> Forge:
    """The forge of `request`, with the run's settings (read once, by the flow)."""
    if is_local(request.repository):
        from promotion_gate.local_repo.forge import LocalForge

        return LocalForge(request.repository.removeprefix("file:"), settings.production_branch or "main")
    from promotion_gate.github_api.forge import GitHubForge

    return GitHubForge(settings, request.repository)
