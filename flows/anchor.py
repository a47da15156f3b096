"""Write and read the ledger's checkpoint ref (``refs/promotion-gate/ledger``) of the governed repository.

Local repository: git plumbing (``hash-object``, ``mktree``, ``commit-tree``, then ``update-ref
<ref> <new> <old>``, which refuses to move a ref that changed under it). GitHub: the Git Data API
(create blob, tree, commit; create the ref, or update it with ``force=false``, which GitHub
refuses unless it is a fast-forward). A concurrent run that anchored a newer head first wins;
this run's head is then covered by it (the checkpoint chain notes the gap).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Callable

from promotion_gate.checklists.checkpoint import (
    ANCHOR_REF, CHECKPOINT_FILE, Anchored, Checkpoint, checkpoint_message, encode_checkpoint, parse_checkpoint,
)
from promotion_gate.flows.local_repo import ZERO, GitError, LocalRepo

IDENT = {"GIT_AUTHOR_NAME": "promotion-gate", "GIT_AUTHOR_EMAIL": "promotion-gate@localhost",
         "GIT_COMMITTER_NAME": "promotion-gate", "GIT_COMMITTER_EMAIL": "promotion-gate@localhost"}
ATTEMPTS = 5
MAX_CHAIN = 1_000_000


class AnchorError(Exception):
    pass


def _covered(tip: Checkpoint | None, checkpoint: Checkpoint) -> bool:
    return tip is not None and tip.seq >= checkpoint.seq


# local repository


def write_local_checkpoint(repo_path: str | Path, checkpoint: Checkpoint, ref: str = ANCHOR_REF) -> str:
    """Append ``checkpoint`` to ``ref`` in the local repository; the commit that holds it (or a newer one)."""
    repo = LocalRepo(repo_path)
    for _ in range(ATTEMPTS):
        old = repo.resolve(ref)
        tip = _read_local_tip(repo, old)
        if _covered(tip, checkpoint):
            return old
        blob = repo.git("hash-object", "-w", "--stdin", input=encode_checkpoint(checkpoint)).decode().strip()
        tree = repo.git("mktree", input=f"100644 blob {blob}\t{CHECKPOINT_FILE}\n".encode()).decode().strip()
        parents = ["-p", old] if old else []
        commit = repo.git("commit-tree", tree, *parents, "-m", checkpoint_message(checkpoint), env=IDENT).decode().strip()
        done = repo.git("update-ref", "-m", f"promotion-gate: checkpoint seq {checkpoint.seq}", ref, commit, old or ZERO, check=False)
        if repo.resolve(ref) == commit:
            return commit
        del done  # another run moved the ref first: read it again
    raise AnchorError(f"{ref}: could not append the checkpoint of seq {checkpoint.seq} after {ATTEMPTS} attempts")


def _read_local_tip(repo: LocalRepo, commit: str | None) -> Checkpoint | None:
    if commit is None:
        return None
    data = repo.git("cat-file", "blob", f"{commit}:{CHECKPOINT_FILE}", check=False)
    try:
        return parse_checkpoint(data)
    except ValueError:
        raise AnchorError(f"{ANCHOR_REF} at {commit[:12]} holds no valid {CHECKPOINT_FILE}: refusing to extend it") from None


def read_local_chain(repo_path: str | Path, ref: str = ANCHOR_REF) -> list[Anchored]:
    """Every commit of ``ref`` along first parents, newest first, with its checkpoint (one ``cat-file --batch``)."""
    repo = LocalRepo(repo_path)
    if not repo.path.is_dir():
        raise AnchorError(f"{repo_path}: no such repository")
    tip = repo.resolve(ref)
    if tip is None:
        return []
    commits = repo.git("rev-list", "--first-parent", f"--max-count={MAX_CHAIN}", tip).decode().split()
    query = "".join(f"{c}:{CHECKPOINT_FILE}\n" for c in commits).encode()
    proc = subprocess.run(["git", "-C", str(repo.path), "cat-file", "--batch"], input=query, capture_output=True, check=False)
    out, chain, at = proc.stdout, [], 0
    for commit in commits:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) < 3 or header[1] != b"blob":
            chain.append(Anchored(commit, None, f"no {CHECKPOINT_FILE}"))
            continue
        size = int(header[2])
        data, at = out[at:at + size], at + size + 1
        chain.append(_anchored(commit, data))
    return chain


def _anchored(commit: str, data: bytes) -> Anchored:
    try:
        return Anchored(commit, parse_checkpoint(data))
    except ValueError as exc:
        first = str(exc).splitlines()[1:2] or ["not JSON"]
        return Anchored(commit, None, first[0].strip())


# GitHub


def write_github_checkpoint(call: Callable, repo, checkpoint: Checkpoint, ref: str = ANCHOR_REF) -> str:
    """Append ``checkpoint`` to ``ref`` on GitHub through the Git Data API; never forces the ref."""
    from github import GithubException, InputGitTreeElement
    from github.GitCommit import GitCommit
    from github.GitRef import GitRef

    short = ref.removeprefix("refs/")
    for _ in range(ATTEMPTS):
        old = call(f"read {ref}", _github_ref_sha, repo, short)
        tip = _read_github_checkpoint(call, repo, old) if old else None
        if _covered(tip, checkpoint):
            return old
        blob = call("create the checkpoint blob", repo.create_git_blob, encode_checkpoint(checkpoint).decode(), "utf-8")
        tree = call("create the checkpoint tree", repo.create_git_tree,
                    [InputGitTreeElement(CHECKPOINT_FILE, "100644", "blob", sha=blob.sha)])
        parents = [GitCommit(repo.requester, attributes={"sha": old, "url": f"{repo.url}/git/commits/{old}"}, completed=False)] if old else []
        commit = call("create the checkpoint commit", repo.create_git_commit, checkpoint_message(checkpoint), tree, parents)

        def move(old: str | None = old, commit=commit) -> bool:
            try:
                if old is None:
                    repo.create_git_ref(ref, commit.sha)
                else:
                    GitRef(repo.requester, url=f"{repo.url}/git/{ref}", attributes={"ref": ref}).edit(commit.sha, force=False)
                return True
            except GithubException as exc:
                if exc.status != 422:  # 5xx and rate limits: retried by `call`
                    raise
                return False  # not a fast-forward, or created meanwhile (perhaps by a retried write): read it again

        if call(f"move {ref} to the checkpoint", move):
            return commit.sha
    raise AnchorError(f"{ref}: could not append the checkpoint of seq {checkpoint.seq} after {ATTEMPTS} attempts")


def _github_ref_sha(repo, short: str) -> str | None:
    from github import GithubException

    try:
        return repo.get_git_ref(short).object.sha
    except GithubException as exc:
        if exc.status == 404:
            return None
        raise


def _read_github_checkpoint(call: Callable, repo, commit: str) -> Checkpoint | None:
    anchored = _github_anchored(call, repo, commit)[0]
    if anchored.checkpoint is None:
        raise AnchorError(f"{ANCHOR_REF} at {commit[:12]} holds no valid {CHECKPOINT_FILE}: refusing to extend it")
    return anchored.checkpoint


def _github_anchored(call: Callable, repo, commit: str) -> tuple[Anchored, list[str]]:
    from github import GithubException

    git_commit = call(f"read checkpoint commit {commit[:12]}", repo.get_git_commit, commit)
    parents = [p.sha for p in git_commit.parents]
    try:
        content = call(f"read {CHECKPOINT_FILE} at {commit[:12]}", repo.get_contents, CHECKPOINT_FILE, ref=commit)
    except GithubException as exc:
        if exc.status == 404:
            return Anchored(commit, None, f"no {CHECKPOINT_FILE}"), parents
        raise
    return _anchored(commit, content.decoded_content), parents


def read_github_chain(call: Callable, repo, ref: str = ANCHOR_REF) -> list[Anchored]:
    """Every commit of ``ref`` on GitHub along first parents, newest first (two requests per checkpoint)."""
    sha = call(f"read {ref}", _github_ref_sha, repo, ref.removeprefix("refs/"))
    chain = []
    while sha and len(chain) < MAX_CHAIN:
        anchored, parents = _github_anchored(call, repo, sha)
        chain.append(anchored)
        sha = parents[0] if parents else None
    return chain


def read_chain(target: str, ref: str = ANCHOR_REF) -> list[Anchored]:
    """``target``: a local repository path, or owner/name on GitHub (the GitHub settings apply)."""
    from promotion_gate.flows.forges import is_local

    if is_local(target) or Path(target).is_dir():
        return read_local_chain(target.removeprefix("file:"), ref)
    from promotion_gate.flows.github_client import GitHubError, open_github, retrying_from
    from promotion_gate.flows.settings import load_settings

    settings = load_settings()
    try:
        gh = open_github(settings, target)
        return read_github_chain(retrying_from(settings), gh.get_repo(target, lazy=True), ref)
    except GitHubError as exc:
        raise AnchorError(f"{target}: cannot read {ref} ({exc})") from None


def exported(anchored: Anchored, ref: str, repository: str) -> bytes:
    body = anchored.checkpoint.model_dump(mode="json", by_alias=True) | {"commit": anchored.commit, "ref": ref, "repository": repository}
    return json.dumps(body, sort_keys=True, indent=2).encode() + b"\n"


__all__ = ["AnchorError", "GitError", "read_chain", "read_local_chain", "read_github_chain", "write_local_checkpoint",
           "write_github_checkpoint", "exported"]
