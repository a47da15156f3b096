"""The ledger head anchored outside the store: checkpoints and the judgement of their chain. Pure.

After every decision the gate writes a checkpoint (the head's seq, line hash, signature and key
id) as a commit on a dedicated ref of the governed repository (``refs/promotion-gate/ledger``),
whose parent is the previous checkpoint and whose tree holds ``checkpoint.json``. The ref only
moves forward (GitHub: ``force=false``; git: ``update-ref <ref> <new> <old>``), so:

- a ledger shorter than an anchored seq was truncated;
- a ledger whose line at an anchored seq hashes differently was rewritten;
- a chain whose seqs do not increase, or that no longer contains a checkpoint an auditor kept
  (``audit anchor export``), or whose newest checkpoint is behind the ledger, was rewound or
  force-pushed.

:func:`judge_checkpoints` names the first of these; the shell reads the ref (``audit_store/anchor.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.ledger import DECISION_ID, SHA256, Kind, LedgerEntry, Problem, line_hash

ANCHOR_REF = "refs/promotion-gate/ledger"
CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_SCHEMA = "https://promotion-gate.dev/ledger-checkpoint/v1"


class Checkpoint(BaseModel):
    """The ledger head at one moment: what a checkpoint commit holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: str = Field(default=CHECKPOINT_SCHEMA, alias="schema")
    seq: int = Field(ge=1)
    head: str = Field(pattern=SHA256, description="SHA-256 of the ledger line at seq (the head then)")
    decision_id: str = Field(pattern=DECISION_ID)
    system: str
    verdict: str
    signature: str
    key_id: str = Field(pattern=SHA256)


class ExportedCheckpoint(Checkpoint):
    """A checkpoint an auditor keeps (``audit anchor export``): with the commit that anchored it, if any."""

    commit: str | None = Field(default=None, pattern=r"^[0-9a-f]{40}$")
    ref: str | None = None
    repository: str | None = None


@dataclass(frozen=True)
class Anchored:
    """One commit of the anchor ref, newest first; ``checkpoint`` None with ``error`` when unreadable."""

    commit: str
    checkpoint: Checkpoint | None
    error: str | None = None


def build_checkpoint(line: bytes) -> Checkpoint:
    entry = LedgerEntry.model_validate_json(line)
    return Checkpoint(seq=entry.seq, head=line_hash(line), decision_id=entry.decision_id, system=entry.system,
                      verdict=entry.verdict, signature=entry.signature, key_id=entry.key_id)


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    body = checkpoint.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(body, sort_keys=True, indent=2).encode() + b"\n"


def parse_checkpoint(data: bytes) -> Checkpoint:
    """ValueError (pydantic's) when the bytes are not a checkpoint."""
    return Checkpoint.model_validate_json(data)


def parse_exported(data: bytes) -> ExportedCheckpoint:
    return ExportedCheckpoint.model_validate_json(data)


def checkpoint_message(checkpoint: Checkpoint) -> str:
    return (f"ledger checkpoint seq {checkpoint.seq}\n\nhead {checkpoint.head}\n"
            f"decision {checkpoint.decision_id} ({checkpoint.system}: {checkpoint.verdict})\n")


def judge_checkpoints(lines: Sequence[bytes], chain: Sequence[Anchored] | None, kept: Sequence[ExportedCheckpoint] = (),
                      allow_newer: bool = False, where: str = ANCHOR_REF) -> tuple[Problem | None, list[str]]:
    """(the first finding, notes) for the ledger ``lines`` against the anchor ref's ``chain`` (newest first;
    None: no ref was read) and the checkpoints an auditor ``kept`` (``--anchor-file``)."""
    if chain is None:
        return _kept_only(lines, kept, allow_newer), []
    if not chain:
        if lines or kept:
            return Problem(Kind.rewound, f"{where} holds no checkpoint (deleted, or never written)"), []
        return None, []
    for link in chain:
        if link.checkpoint is None:
            return Problem(Kind.rewound, f"{where}: commit {link.commit[:12]} holds no valid {CHECKPOINT_FILE} ({link.error})"), []
    anchored = [(link.commit, link.checkpoint) for link in chain if link.checkpoint is not None]  # every link (checked above)
    oldest_first = list(reversed(anchored))
    for (_, before), (commit, after) in zip(oldest_first, oldest_first[1:], strict=False):
        if after.seq <= before.seq:
            return Problem(Kind.rewound, f"{where}: seqs do not increase (commit {commit[:12]} holds seq "
                                         f"{after.seq} after seq {before.seq}): the ref was rewritten"), []
    commits = dict(anchored)
    for mine in kept:
        if mine.commit and mine.commit not in commits:
            return Problem(Kind.rewound, f"{where} no longer contains checkpoint commit {mine.commit[:12]} (seq {mine.seq}) "
                                         "that was exported earlier: the ref was rewound or force-pushed", seq=mine.seq), []
    tip = anchored[0][1]
    found = _against_ledger(lines, [tip]) if tip.seq > len(lines) else None  # the cut first, then the earliest rewrite
    found = found or _against_ledger(lines, [*[cp for _, cp in oldest_first], *kept])
    if found is not None:
        return found, []
    notes = []
    seqs = [cp.seq for _, cp in oldest_first]
    gaps = len(seqs) - len(set(seqs)) + (seqs[-1] - seqs[0] + 1 - len(seqs))
    if gaps:
        notes.append(f"{where}: {gaps} entries between seq {seqs[0]} and {seqs[-1]} have no checkpoint of their own "
                     "(a concurrent run anchored a later head, or an anchoring failed)")
    if tip.seq < len(lines):
        text = (f"{where}: its newest checkpoint is seq {tip.seq}, but the ledger holds {len(lines)} entries")
        if not allow_newer:
            return Problem(Kind.rewound, text + ": the ref was rewound, or the newer entries were never anchored "
                                                "(--allow-newer accepts them)", seq=tip.seq), notes
        notes.append(text + " (accepted: --allow-newer)")
    return None, notes


def _against_ledger(lines: Sequence[bytes], checkpoints: Sequence[Checkpoint]) -> Problem | None:
    for cp in checkpoints:
        if cp.seq > len(lines):
            return Problem(Kind.truncated, f"the ledger ends at seq {len(lines)}, but seq {cp.seq} (decision {cp.decision_id}) "
                                           "was anchored: the entries after it were cut", seq=cp.seq, decision_id=cp.decision_id)
        if line_hash(lines[cp.seq - 1]) != cp.head:
            return Problem(Kind.rewritten, f"the ledger's line at seq {cp.seq} is not the anchored one (anchored head "
                                           f"{cp.head[:16]}..., decision {cp.decision_id}): the history was rewritten",
                           line=cp.seq, seq=cp.seq, decision_id=cp.decision_id)
    return None


def _kept_only(lines: Sequence[bytes], kept: Sequence[ExportedCheckpoint], allow_newer: bool) -> Problem | None:
    found = _against_ledger(lines, kept)
    if found is not None or not kept:
        return found
    newest = max(k.seq for k in kept)
    if newest < len(lines) and not allow_newer:
        return Problem(Kind.newer, f"the checkpoint is seq {newest}; {len(lines) - newest} newer entries follow it "
                                   "(pass --allow-newer to accept them)", seq=newest)
    return None
