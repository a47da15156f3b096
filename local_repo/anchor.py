"""The ledger's checkpoint ref in a local git repository, with git plumbing: ``hash-object``,
``mktree``, ``commit-tree``, then ``update-ref <ref> <new> <old>``, which refuses to move a ref that
changed under it (a concurrent run that anchored a newer head first wins; this head is covered)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from promotion_gate.audit_store.anchor import ATTEMPTS, MAX_CHAIN, AnchorError, anchored_from, covers
from promotion_gate.checklists.checkpoint import (
    ANCHOR_REF,
    CHECKPOINT_FILE,
    Anchored,
    Checkpoint,
    checkpoint_message,
    encode_checkpoint,
    parse_checkpoint,
)
from promotion_gate.local_repo.git import ZERO, LocalRepo

IDENT = {"GIT_AUTHOR_NAME": "promotion-gate", "GIT_AUTHOR_EMAIL": "promotion-gate@localhost",
         "GIT_COMMITTER_NAME": "promotion-gate", "GIT_COMMITTER_EMAIL": "promotion-gate@localhost"}

def write_local_checkpoint(repo_path: str | Path, checkpoint: Checkpoint, ref: str = ANCHOR_REF) -> str:
    """Append ``checkpoint`` to ``ref`` in the local repository; the commit that holds it (or a newer one)."""
    repo = LocalRepo(repo_path)
    for _ in range(ATTEMPTS):
        old = repo.resolve(ref)
        tip = _read_local_tip(repo, old)
        if covers(tip, checkpoint):
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
        chain.append(anchored_from(commit, data))
    return chain
