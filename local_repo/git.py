"""A local git repository as a forge: read files at a commit, write a branch without a checkout.

Reads go through ``git cat-file`` at an exact commit (never the working tree). Writes build a
commit with a temporary index and create the branch with ``update-ref`` guarded by the zero id,
so two runs cannot both create it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from promotion_gate.checklists.identity import parse_coauthors

ZERO = "0" * 40


class GitError(Exception):
    pass


class LocalRepo:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).resolve()

    def git(self, *args: str, input: bytes | None = None, env: dict | None = None, check: bool = True) -> bytes:
        proc = subprocess.run(
            ["git", "-C", str(self.path), *args], input=input, capture_output=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
        )
        if check and proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout

    def resolve(self, ref: str) -> str | None:
        out = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).strip()
        return out.decode() or None

    def entry(self, commit: str, path: str) -> tuple[str, str] | None:
        """(mode, blob id) of a path at a commit, or None when absent."""
        out = self.git("ls-tree", "-z", commit, "--", path).split(b"\0")[0]
        if not out:
            return None
        meta, _, name = out.decode().partition("\t")
        mode, kind, oid = meta.split()
        if name != path:
            return None
        if kind != "blob":
            raise GitError(f"{path} is a {kind}, not a file")
        if mode == "120000":
            raise GitError(f"{path} is a symbolic link; evidence must be a regular file")
        return mode, oid

    def read(self, commit: str, path: str) -> bytes | None:
        found = self.entry(commit, path)
        return None if found is None else self.git("cat-file", "blob", found[1])

    @contextmanager
    def open(self, commit: str, path: str) -> Iterator[BinaryIO | None]:
        """Stream a file at a commit (large evidence is never held in memory whole)."""
        found = self.entry(commit, path)
        if found is None:
            yield None
            return
        proc = subprocess.Popen(["git", "-C", str(self.path), "cat-file", "blob", found[1]], stdout=subprocess.PIPE)
        try:
            yield proc.stdout
        finally:
            proc.stdout.close()
            proc.kill()
            proc.wait()

    def changed_systems(self, base: str, commit: str) -> list[str]:
        out = self.git("diff", "--name-only", f"{base}...{commit}", "--", "ai-systems/").decode()
        return sorted({p.split("/")[1] for p in out.splitlines() if p.count("/") >= 2})

    def committers(self, base: str | None, commit: str) -> tuple[str | None, set[str]]:
        """(author email of the commit, emails of authors, committers and co-authors since base)."""
        rng = f"{base}..{commit}" if base else commit
        # every commit of the change, however many: a cap would let a committer's commit drop out of sight
        out = self.git("log", "--format=%ae%x00%ce", rng).decode().split()
        emails = {e for line in out for e in line.split("\0") if e}
        messages = self.git("log", "--format=%B%x00", rng).decode(errors="replace")
        emails |= parse_coauthors(messages)  # Co-authored-by: trailers name people who wrote the change too
        author = self.git("log", "-1", "--format=%ae", commit).decode().strip() or None
        return author, emails

    def commit_files(self, branch: str, base: str, files: dict[str, bytes], message: str) -> str:
        """Create ``branch`` off ``base`` with one commit adding ``files``; reuse it if it exists."""
        existing = self.resolve(f"refs/heads/{branch}")
        if existing:
            return existing
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.git("read-tree", base, env=env)
            for path, data in sorted(files.items()):
                blob = self.git("hash-object", "-w", "--stdin", input=data).decode().strip()
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.git("write-tree", env=env).decode().strip()
        ident = {"GIT_AUTHOR_NAME": "promotion-gate", "GIT_AUTHOR_EMAIL": "promotion-gate@localhost",
                 "GIT_COMMITTER_NAME": "promotion-gate", "GIT_COMMITTER_EMAIL": "promotion-gate@localhost"}
        commit = self.git("commit-tree", tree, "-p", base, "-m", message, env=ident).decode().strip()
        self.git("update-ref", f"refs/heads/{branch}", commit, ZERO, check=False)  # loses a race quietly
        winner = self.resolve(f"refs/heads/{branch}")
        if winner is None:
            raise GitError(f"could not create branch {branch}")
        return winner
