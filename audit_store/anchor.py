"""The ledger's checkpoint ref (``refs/promotion-gate/ledger``) of the governed repository, wherever it lives.

The writes and reads themselves are in the room of what they talk to: ``local_repo.anchor`` (git
plumbing) and ``github_api.anchor`` (the Git Data API); this module holds what both share and
reads a chain from either.
A concurrent run that anchored a newer head first wins; this run's head is then covered by it
(the checkpoint chain notes the gap).
"""

from __future__ import annotations

import json
from pathlib import Path

from promotion_gate.checklists.checkpoint import ANCHOR_REF, Anchored, Checkpoint, parse_checkpoint
from promotion_gate.local_repo.git import GitError

ATTEMPTS = 5
MAX_CHAIN = 1_000_000


class AnchorError(Exception):
    pass


def covers(tip: Checkpoint | None, checkpoint: Checkpoint) -> bool:
    return tip is not None and tip.seq >= checkpoint.seq


def anchored_from(commit: str, data: bytes) -> Anchored:
    try:
        return Anchored(commit, parse_checkpoint(data))
    except ValueError as exc:
        first = str(exc).splitlines()[1:2] or ["not JSON"]
        return Anchored(commit, None, first[0].strip())


def read_chain(target: str, ref: str = ANCHOR_REF) -> list[Anchored]:
    """``target``: a local repository path, or owner/name on GitHub (the GitHub settings apply)."""
    from promotion_gate.forge.choose import is_local

    if is_local(target) or Path(target).is_dir():
        from promotion_gate.local_repo.anchor import read_local_chain

        return read_local_chain(target.removeprefix("file:"), ref)
    from promotion_gate.config.settings import load_settings
    from promotion_gate.github_api.anchor import read_github_chain
    from promotion_gate.github_api.client import GitHubError, open_github, retrying_from

    settings = load_settings()
    try:
        gh = open_github(settings, target)
        return read_github_chain(retrying_from(settings), gh.get_repo(target, lazy=True), ref)
    except GitHubError as exc:
        raise AnchorError(f"{target}: cannot read {ref} ({exc})") from None


def exported(anchored: Anchored, ref: str, repository: str) -> bytes:
    body = anchored.checkpoint.model_dump(mode="json", by_alias=True) | {"commit": anchored.commit, "ref": ref, "repository": repository}
    return json.dumps(body, sort_keys=True, indent=2).encode() + b"\n"


__all__ = ["ATTEMPTS", "MAX_CHAIN", "AnchorError", "GitError", "anchored_from", "covers", "exported", "read_chain"]
