"""The ledger's checkpoint ref on GitHub, through the Git Data API: create blob, tree, commit; create
the ref, or update it with ``force=false``, which GitHub refuses unless it is a fast-forward."""

from __future__ import annotations

from typing import Callable

from promotion_gate.audit_store.anchor import ATTEMPTS, MAX_CHAIN, AnchorError, anchored_from, covers
from promotion_gate.checklists.checkpoint import ANCHOR_REF, CHECKPOINT_FILE, Anchored, Checkpoint, checkpoint_message, encode_checkpoint


def write_github_checkpoint(call: Callable, repo, checkpoint: Checkpoint, ref: str = ANCHOR_REF) -> str:
    """Append ``checkpoint`` to ``ref`` on GitHub through the Git Data API; never forces the ref."""
    from github import GithubException, InputGitTreeElement
    from github.GitCommit import GitCommit
    from github.GitRef import GitRef

    short = ref.removeprefix("refs/")
    for _ in range(ATTEMPTS):
        old = call(f"read {ref}", _github_ref_sha, repo, short)
        tip = _read_github_checkpoint(call, repo, old) if old else None
        if covers(tip, checkpoint):
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
    return anchored_from(commit, content.decoded_content), parents


def read_github_chain(call: Callable, repo, ref: str = ANCHOR_REF) -> list[Anchored]:
    """Every commit of ``ref`` on GitHub along first parents, newest first (two requests per checkpoint)."""
    sha = call(f"read {ref}", _github_ref_sha, repo, ref.removeprefix("refs/"))
    chain = []
    while sha and len(chain) < MAX_CHAIN:
        anchored, parents = _github_anchored(call, repo, sha)
        chain.append(anchored)
        sha = parents[0] if parents else None
    return chain
