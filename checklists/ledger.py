"""The ledger's hash chain and the judgement of each entry, as pure functions over bytes.

``ledger.jsonl`` holds one JSON line per decision. Each line carries the SHA-256 of the previous
line's bytes (``prev``), the SHA-256 of each of the decision's files, and the Ed25519 signature of
the decision's DSSE envelope (``attestation.dsse.json``), whose signed statement repeats the
line's fields and its place in the chain. So an edited line contradicts its signature, a removed
or reordered line breaks the chain, and a rewritten chain contradicts the signed places.

:func:`judge_entry` names the first thing wrong with one entry; the shell (``flows/audit_store``)
reads the files and walks the lines once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Iterable

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists import store_json
from promotion_gate.checklists.attestation import (
    PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, SUBJECT_FILES, EnvelopeError, open_envelope, signature_holds,
    subject_name,
)
from promotion_gate.checklists.trust import signed_key_kind, untrusted_detail

GENESIS = "0" * 64
ENVELOPE_FILE = "attestation.dsse.json"
FILES = (*SUBJECT_FILES, ENVELOPE_FILE)
DECISION_ID = r"^[a-z0-9][a-z0-9.-]{0,127}$"
SHA256 = r"^[0-9a-f]{64}$"


class LedgerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1)
    prev: str = Field(pattern=SHA256)
    decision_id: str = Field(pattern=DECISION_ID)
    system: str
    verdict: str
    decided_at: datetime
    decision_sha256: str = Field(pattern=SHA256)
    files: dict[str, str] = Field(description="file name in the decision's folder -> SHA-256")
    signature: str = Field(description="base64 Ed25519 signature of the DSSE envelope (as in the envelope)")
    key_id: str = Field(pattern=SHA256, description="SHA-256 of the signing key's DER public key")
    follows: str | None = Field(default=None, pattern=DECISION_ID, description="the system's previous decision (absent: its first)")


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def encode_entry(entry: LedgerEntry) -> bytes:
    return json.dumps(entry.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":")).encode() + b"\n"


def next_entry(last_line: bytes | None, **fields) -> LedgerEntry:
    if last_line is None:
        return LedgerEntry(seq=1, prev=GENESIS, **fields)
    last = LedgerEntry.model_validate_json(last_line)
    return LedgerEntry(seq=last.seq + 1, prev=line_hash(last_line), **fields)


def head(lines: list[bytes]) -> str:
    return line_hash(lines[-1]) if lines else GENESIS


class Kind(str, Enum):
    edited = "edited"
    reordered = "reordered"
    removed = "removed"
    truncated = "truncated"
    forged = "forged signature"
    untrusted = "untrusted"
    missing = "missing file"
    unrecorded = "decision without a ledger line"
    newer = "anchor is older than the head"
    rewritten = "rewritten"
    rewound = "anchor ref rewound"
    symlink = "refused symlink"  # the reader's refusals on a hostile store (audit_store/safe_read.py)
    special = "refused special file"
    oversized = "refused oversized file"
    long_line = "refused oversized line"
    not_dir = "refused non-directory"
    hard_link = "refused hard link"
    unexpected = "unexpected entry"  # a name where the store keeps only what the ledger records (audit_store/walk.py, evidence.py)


@dataclass(frozen=True)
class Problem:
    kind: Kind
    detail: str
    line: int | None = None
    seq: int | None = None
    decision_id: str | None = None

    def __str__(self) -> str:
        where = []
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.decision_id:
            where.append(f"decision {self.decision_id}")
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{', '.join(where) or 'ledger'}: {self.kind.value}: {self.detail}"


def parse_entry(line: bytes) -> LedgerEntry:
    """One line as an entry; ValueError (pydantic's) when it is not one."""
    return LedgerEntry.model_validate_json(line)


def _seq_of(line: bytes) -> int | None:
    try:
        seq = store_json.loads(line).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


def _misplaced(lines: list[bytes], index: int, entry: LedgerEntry) -> tuple[Kind, str]:
    """An authentic line in the wrong place: which line is missing, or which came first."""
    expected = index + 1
    if entry.seq == expected:
        return Kind.edited, "its previous-hash does not match the line before it (that line was replaced)"
    seqs = {_seq_of(ln) for ln in lines}
    if entry.seq > expected and expected not in seqs:
        gap = f"seq {expected}" if entry.seq == expected + 1 else f"seq {expected} to {entry.seq - 1}"
        return Kind.removed, f"the entries before it ({gap}) are missing from the ledger"
    return Kind.reordered, f"it holds seq {entry.seq} at line {expected}: lines are out of order"


def judge_entry(
    lines: list[bytes], index: int, entry: LedgerEntry, expected_prev: str,
    digests: dict[str, str | None], envelope: bytes | None, keys: dict[str, Any],
    facts: dict | None = None, system_previous: str | None = None,
) -> Problem | None:
    """The first thing wrong with entry ``lines[index]``, or None.

    ``digests``: the SHA-256 of each of the decision's files as found (None: missing);
    ``envelope``: the bytes of its ``attestation.dsse.json``; ``keys``: trusted key id -> public key;
    ``system_previous``: the decision id of the system's previous entry in the ledger (None: none).
    ``facts``, when given, receives what the signed statement says that verify reports: for an
    entry signed with the demo key, ``key_kind`` ("demo") and ``key_id``; it stays empty otherwise.
    """

    def problem(kind: Kind, detail: str) -> Problem:
        return Problem(kind, detail, line=index + 1, seq=entry.seq, decision_id=entry.decision_id)

    if envelope is None:
        return problem(Kind.missing, f"decisions/{entry.decision_id}/{ENVELOPE_FILE} is missing")
    signed = _signed_statement(envelope, entry, keys)
    envelope_changed = entry.files.get(ENVELOPE_FILE) != digests.get(ENVELOPE_FILE)
    if isinstance(signed, tuple):
        if envelope_changed:
            return problem(Kind.edited, f"{ENVELOPE_FILE} was changed after it was recorded ({signed[1]})")
        return problem(*signed)
    if envelope_changed:
        return problem(Kind.edited, f"the line's digest of {ENVELOPE_FILE} is not the file's")
    contradiction = _contradiction(signed, entry, index + 1)
    if contradiction is not None:
        return problem(*contradiction)
    pred = signed.get("predicate") or {}
    if facts is not None:
        if signed_key_kind(signed) == "demo":  # sparse: only what verify reports (a demo key)
            facts["key_kind"], facts["key_id"] = "demo", entry.key_id
        facts[PREDICATE] = pred  # for the caller to read what else it checks (kept evidence), then drop
    if encode_entry(entry)[:-1] != line_bytes(lines[index]):
        return problem(Kind.edited, "the line's bytes are not the ones recorded (it was re-encoded or a byte changed)")
    if entry.seq != index + 1 or entry.prev != expected_prev:
        return problem(*_misplaced(lines, index, entry))
    if "follows" in pred and pred.get("follows") != system_previous:
        was = f"decision {system_previous}" if system_previous else "no entry"
        claim = f"follows {pred.get('follows')}" if pred.get("follows") else "says it is the system's first"
        return problem(Kind.removed, f"it {claim}, but the system's previous entry in the ledger is {was}")
    for name in SUBJECT_FILES:
        found, recorded = digests.get(name), entry.files.get(name)
        if found is None:
            return problem(Kind.missing, f"decisions/{entry.decision_id}/{name} is missing")
        if found != recorded:
            return problem(Kind.edited, f"{name} was changed after it was recorded (sha256 {found[:16]}..., recorded {str(recorded)[:16]}...)")
    return None


PREDICATE = "_predicate"
"""The key under which :func:`judge_entry` hands its caller the verified statement's predicate (not kept)."""


def line_bytes(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\n") else line


def _signed_statement(envelope: bytes, entry: LedgerEntry, keys: dict[str, Any]) -> dict | tuple[Kind, str]:
    """The verified statement of the envelope, or (kind, detail) saying why there is none."""
    try:
        opened = open_envelope(envelope)
    except EnvelopeError as exc:
        return Kind.edited, f"{ENVELOPE_FILE} is not a DSSE envelope ({exc})"
    key = keys.get(entry.key_id)
    if key is None:
        return Kind.untrusted, untrusted_detail(entry.key_id, published=False)
    sigs = [(raw, text) for kid, raw, text in opened.signatures if kid == entry.key_id]
    if not sigs or not any(signature_holds(opened, key, raw) for raw, _ in sigs):
        return Kind.forged, f"the envelope's signature does not verify with key {entry.key_id[:16]}..."
    if opened.payload_type != PAYLOAD_TYPE:
        return Kind.edited, f"payloadType is {opened.payload_type!r}, not {PAYLOAD_TYPE}"
    if entry.signature not in {text for _, text in sigs}:
        return Kind.edited, "the line's signature is not the envelope's"
    try:
        statement = store_json.loads(opened.payload)
    except ValueError:
        return Kind.edited, "the signed payload is not JSON"
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        return Kind.edited, "the signed payload is not a promotion-decision statement"
    return statement


def _contradiction(statement: dict, entry: LedgerEntry, position: int) -> tuple[Kind, str] | None:
    """Where the line (at ``position``) says something its signed statement does not."""
    pred = statement.get("predicate") or {}
    ledger = pred.get("ledger") or {}
    subjects = {s.get("name"): (s.get("digest") or {}).get("sha256") for s in statement.get("subject") or []}
    if pred.get("decisionId") != entry.decision_id:
        return Kind.edited, f"the line names decision {entry.decision_id}, its signature {pred.get('decisionId')}"
    signed_seq = ledger.get("seq")
    if signed_seq != entry.seq:
        if entry.seq == position and isinstance(signed_seq, int) and signed_seq != position:
            kind = Kind.removed if signed_seq > position else Kind.reordered
            return kind, f"signed as seq {signed_seq}, now seq {entry.seq}: the chain was rewritten around it"
        return Kind.edited, f"its seq {entry.seq} differs from the signed seq {signed_seq}"
    if ledger.get("prev") != entry.prev:
        return Kind.edited, "its previous-hash differs from the one it was signed with"
    if pred.get("follows") != entry.follows:
        return Kind.edited, "the line's follows differs from the signed statement"
    fields = {"system": entry.system, "verdict": entry.verdict}
    for key, value in fields.items():
        if pred.get(key) != value:
            return Kind.edited, f"{key} is {value!r} in the line, {pred.get(key)!r} in the signed statement"
    if _when(pred.get("decidedAt")) != entry.decided_at:
        return Kind.edited, "decided_at differs from the signed statement"
    for name in SUBJECT_FILES:
        if subjects.get(subject_name(entry.decision_id, name)) != entry.files.get(name):
            return Kind.edited, f"the line's digest of {name} differs from the signed statement"
    if entry.decision_sha256 != entry.files.get("decision.json"):
        return Kind.edited, "decision_sha256 differs from the digest of decision.json"
    unknown = set(entry.files) - set(FILES)
    if unknown:
        return Kind.edited, f"the line lists unknown files {sorted(unknown)}"
    return None


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def judge_anchor(lines: list[bytes], anchor: str, allow_newer: bool) -> Problem | None:
    """The anchor (a head recorded outside the store) must be the head, or an ancestor with allow_newer."""
    anchor = anchor.strip().lower()
    current = head(lines)
    if anchor == current:
        return None
    for number, line in enumerate(lines, start=1):
        if line_hash(line) == anchor:
            if allow_newer:
                return None
            return Problem(Kind.newer, f"the anchor is entry {number}; {len(lines) - number} newer entries follow it "
                                       f"(head {current}); pass --allow-newer to accept them", line=number, seq=number)
    return Problem(Kind.truncated, f"the anchor {anchor[:16]}... is not in the chain (head is entry {len(lines)}, {current[:16]}...): "
                                   "entries after it were cut, or the chain was rewritten")


@dataclass(frozen=True)
class SystemState:
    """A system's current state, derived from the ledger alone: its latest decision and what it superseded."""

    system: str
    latest: str
    verdict: str
    seq: int
    decided_at: datetime
    superseded: str | None
    superseded_verdict: str | None
    decisions: int
    last_promoted: str | None


def system_states(entries: Iterable[LedgerEntry]) -> dict[str, SystemState]:
    """Each system's state, in ledger order: the latest entry wins; the one before it is what it superseded.

    A re-run at the same commit is its own entry (``follows`` names the decision it re-evaluates),
    so a promotion after a rejection makes "promoted" the system's state, with "blocked" superseded.
    """
    states: dict[str, SystemState] = {}
    for e in entries:
        if e.verdict == "key-rotation":  # a ledger entry, not a system's decision
            continue
        before = states.get(e.system)
        superseded = e.follows or (before.latest if before else None)
        superseded_verdict = before.verdict if before and before.latest == superseded else None
        promoted = e.decision_id if e.verdict == "promoted" else (before.last_promoted if before else None)
        states[e.system] = SystemState(
            system=e.system, latest=e.decision_id, verdict=e.verdict, seq=e.seq, decided_at=e.decided_at,
            superseded=superseded, superseded_verdict=superseded_verdict,
            decisions=(before.decisions if before else 0) + 1, last_promoted=promoted,
        )
    return dict(sorted(states.items()))
