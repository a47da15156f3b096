"""Git objects as git stores them: blobs, trees and commits named by the SHA-1 git would give them.

One store serves every repository of the fake (GitHub shares objects across a fork network too),
so a fork only needs its own refs.
"""

from __future__ import annotations

import difflib
import hashlib
from collections import deque
from dataclasses import dataclass
from datetime import datetime

FILE_MODE = "100644"
SYMLINK_MODE = "120000"
TREE_MODE = "040000"


@dataclass(frozen=True)
class Blob:
    data: bytes


@dataclass(frozen=True)
class TreeEntry:
    name: str
    mode: str
    type: str  # "blob" | "tree"
    sha: str


@dataclass(frozen=True)
class Tree:
    entries: tuple[TreeEntry, ...]


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    date: datetime


@dataclass(frozen=True)
class Commit:
    tree: str
    parents: tuple[str, ...]
    author: Person
    committer: Person
    message: str


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # "added" | "removed" | "modified"
    old_sha: str | None
    new_sha: str | None


def _hash(kind: str, raw: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(raw)}\0".encode() + raw).hexdigest()


def _tree_sort_key(entry: TreeEntry) -> bytes:
    name = entry.name + ("/" if entry.type == "tree" else "")
    return name.encode()


def _person_line(role: str, person: Person) -> str:
    return f"{role} {person.name} <{person.email}> {int(person.date.timestamp())} +0000"


class GitObjects:
    """Content-addressed objects. Lookups raise KeyError for an unknown or wrong-kind SHA."""

    def __init__(self) -> None:
        self._objects: dict[str, Blob | Tree | Commit] = {}

    def put_blob(self, data: bytes) -> str:
        sha = _hash("blob", data)
        self._objects[sha] = Blob(data)
        return sha

    def put_tree(self, entries: list[TreeEntry]) -> str:
        ordered = tuple(sorted(entries, key=_tree_sort_key))
        raw = b"".join(
            f"{e.mode.lstrip('0')} {e.name}\0".encode() + bytes.fromhex(e.sha) for e in ordered
        )
        sha = _hash("tree", raw)
        self._objects[sha] = Tree(ordered)
        return sha

    def put_commit(self, commit: Commit) -> str:
        lines = [f"tree {commit.tree}"]
        lines += [f"parent {parent}" for parent in commit.parents]
        lines += [_person_line("author", commit.author), _person_line("committer", commit.committer)]
        raw = ("\n".join(lines) + "\n\n" + commit.message).encode()
        sha = _hash("commit", raw)
        self._objects[sha] = commit
        return sha

    def has(self, sha: str) -> bool:
        return sha in self._objects

    def kind(self, sha: str) -> str:
        return {Blob: "blob", Tree: "tree", Commit: "commit"}[type(self._objects[sha])]

    def blob(self, sha: str) -> Blob:
        return self._get(sha, Blob)

    def tree(self, sha: str) -> Tree:
        return self._get(sha, Tree)

    def commit(self, sha: str) -> Commit:
        return self._get(sha, Commit)

    def _get(self, sha: str, kind: type) -> object:
        obj = self._objects[sha]
        if not isinstance(obj, kind):
            raise KeyError(sha)
        return obj

    # trees as flat {path: (mode, blob sha)} maps

    def flatten(self, tree_sha: str, prefix: str = "") -> dict[str, tuple[str, str]]:
        files: dict[str, tuple[str, str]] = {}
        for entry in self.tree(tree_sha).entries:
            path = f"{prefix}{entry.name}"
            if entry.type == "tree":
                files.update(self.flatten(entry.sha, f"{path}/"))
            else:
                files[path] = (entry.mode, entry.sha)
        return files

    def build_tree(self, files: dict[str, tuple[str, str]]) -> str:
        """Write the nested trees for a flat map of paths, and return the root tree's SHA."""
        here: list[TreeEntry] = []
        below: dict[str, dict[str, tuple[str, str]]] = {}
        for path, (mode, sha) in files.items():
            head, sep, rest = path.partition("/")
            if sep:
                below.setdefault(head, {})[rest] = (mode, sha)
            else:
                here.append(TreeEntry(head, mode, "blob", sha))
        for name, subfiles in below.items():
            here.append(TreeEntry(name, TREE_MODE, "tree", self.build_tree(subfiles)))
        return self.put_tree(here)

    def walk(self, tree_sha: str, recursive: bool, prefix: str = "") -> list[tuple[str, TreeEntry]]:
        """(path, entry) for each entry, trees included, in git's order (depth first)."""
        found: list[tuple[str, TreeEntry]] = []
        for entry in self.tree(tree_sha).entries:
            path = f"{prefix}{entry.name}"
            found.append((path, entry))
            if recursive and entry.type == "tree":
                found += self.walk(entry.sha, True, f"{path}/")
        return found

    def lookup(self, tree_sha: str, path: str) -> TreeEntry | None:
        """The entry at `path` ("" is the root tree itself), or None."""
        entry = TreeEntry("", TREE_MODE, "tree", tree_sha)
        for part in [p for p in path.strip("/").split("/") if p]:
            if entry.type != "tree":
                return None
            entry = next((e for e in self.tree(entry.sha).entries if e.name == part), None)
            if entry is None:
                return None
        return entry

    # history

    def ancestors(self, sha: str) -> set[str]:
        seen: set[str] = set()
        queue = deque([sha])
        while queue:
            current = queue.popleft()
            if current in seen:
                continue
            seen.add(current)
            queue.extend(self.commit(current).parents)
        return seen

    def merge_base(self, a: str, b: str) -> str | None:
        of_a = self.ancestors(a)
        queue, seen = deque([b]), set()
        while queue:
            current = queue.popleft()
            if current in of_a:
                return current
            if current not in seen:
                seen.add(current)
                queue.extend(self.commit(current).parents)
        return None

    def log(self, head: str, exclude: str | None) -> list[str]:
        """Commits reachable from `head` but not from `exclude`, oldest first."""
        hidden = self.ancestors(exclude) if exclude else set()
        ordered = [sha for sha in self._topological(head) if sha not in hidden]
        return list(reversed(ordered))

    def _topological(self, head: str) -> list[str]:
        order, seen, stack = [], set(), [head]
        while stack:
            sha = stack.pop()
            if sha in seen:
                continue
            seen.add(sha)
            order.append(sha)
            stack.extend(reversed(self.commit(sha).parents))
        return order

    def diff(self, old_tree: str | None, new_tree: str) -> list[FileChange]:
        old = self.flatten(old_tree) if old_tree else {}
        new = self.flatten(new_tree)
        changes = []
        for path in sorted(old.keys() | new.keys()):
            before, after = old.get(path), new.get(path)
            if before == after:
                continue
            status = "added" if before is None else "removed" if after is None else "modified"
            changes.append(
                FileChange(path, status, before[1] if before else None, after[1] if after else None)
            )
        return changes

    def patch(self, change: FileChange) -> tuple[str | None, int, int]:
        """(unified diff hunks as GitHub shows them, additions, deletions); no patch for binary."""
        try:
            old = self.blob(change.old_sha).data.decode() if change.old_sha else ""
            new = self.blob(change.new_sha).data.decode() if change.new_sha else ""
        except UnicodeDecodeError:
            return None, 0, 0
        lines = list(
            difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=3)
        )[2:]
        additions = sum(1 for line in lines if line.startswith("+"))
        deletions = sum(1 for line in lines if line.startswith("-"))
        return "\n".join(lines), additions, deletions
