"""Files of a GitHub repository at one ref, as a candidate_reader Source: one read per file.

The candidate is read at the head commit's SHA (never the branch, which may move); a fork's head
commit is readable from the base repository, so a fork's PR is judged on exactly the fork head's
files, and nothing is ever checked out or run. A missing file is None; a directory, a submodule,
or a symbolic link that leads out of the system's folder is refused (``SourceError``). GitHub
failures are not the candidate's fault: they propagate as ``GitHubError`` and end in an error
decision, never in a block that blames the team's files.
"""

from __future__ import annotations

import base64
import io
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from github import UnknownObjectException
from github.Repository import Repository
from promotion_gate.forge.candidate_reader import SourceError
from promotion_gate.github_api.client import Retrying


class AtRef:
    """`ref`: a commit SHA or a branch name; None reads the repository's default branch."""

    def __init__(self, repo: Repository, ref: str | None, call: Retrying) -> None:
        self.repo, self.ref, self.call = repo, ref, call

    @contextmanager
    def open(self, path: str) -> Iterator[BinaryIO | None]:
        data = self.read(path)
        yield None if data is None else io.BytesIO(data)

    def read(self, path: str, *, regular: bool = False) -> bytes | None:
        """The file's bytes; ``regular``: refuse a symbolic link even inside the folder (a lock file:
        its target could then change while no changed path is a lock)."""
        content = self.call(f"read {path}", self._contents, path)
        if content is None:
            return None
        folder = "/".join(path.split("/")[:2]) + "/"
        if isinstance(content, list):
            raise SourceError(f"{path} is a directory, not a file")
        if content.path != path and (regular or not content.path.startswith(folder)):
            where = "" if regular and content.path.startswith(folder) else f", outside {folder}"
            raise SourceError(f"{path} resolves to {content.path}{where} (symbolic link)")
        if content.type != "file":
            raise SourceError(f"{path} is a {content.type}, not a regular file")
        if content.encoding == "base64" and (content.content or content.size == 0):
            return content.decoded_content
        blob = self.call(f"read {path} (large file)", self.repo.get_git_blob, content.sha)  # files over 1 MB
        return base64.b64decode(blob.content)

    def _contents(self, path: str):
        try:
            if self.ref is None:
                return self.repo.get_contents(path)
            return self.repo.get_contents(path, ref=self.ref)
        except UnknownObjectException:
            return None


class IncompleteFiles(Exception):
    """GitHub lists fewer of a PR's changed files than it changes (at most 3000): a lock file or a
    system among the rest would go unseen."""


FILES_LISTED = 3000  # GitHub: "Responses include a maximum of 3000 files"


def complete_listing(pull, listed: int) -> None:
    """IncompleteFiles when GitHub's list stops at its cap short of the PR's ``changed_files`` (read
    only then: a shorter list is the whole change, and costs no extra call)."""
    if listed >= FILES_LISTED and pull.changed_files > listed:
        raise IncompleteFiles(f"#{pull.number} changes {pull.changed_files} files; GitHub lists {listed} of them, so the "
                              "gate cannot see every lock file and system it changes: split the pull request")
