"""The audit store on disk: one folder per decision, the ledger, the published keys.

``record`` writes ``decisions/<id>/{decision.json, report.md, report.html, attestation.dsse.json}``
and appends one line to ``ledger.jsonl``. Appends are serialised with an exclusive ``flock`` on
``.ledger.lock`` (one writer at a time across processes and workers); files, folders and the
ledger are fsynced. Recording the same decision id twice returns the first record (idempotent).

``verify`` walks the ledger once: each line, each file's digest, each signature, the chain.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from promotion_gate import __version__ as GATE_VERSION
from promotion_gate.audit_store.findings import judge_store, latest_by_system, previous_of
from promotion_gate.audit_store import evidence_record, key_rotation
from promotion_gate.audit_store.key_rotation import follow_rotations, judge_rotated
from promotion_gate.audit_store.safe_read import Limits, StoreReader
from promotion_gate.audit_store.signing_keys import KEYS_DIR, SigningKey, publish_public_key, read_public_keys, signing_key_from_settings
from promotion_gate.audit_store.walk import read_ledger, walk_all
from promotion_gate.checklists.attestation import build_statement, encode_envelope, encode_statement, sign_envelope
from promotion_gate.checklists.candidate import ProductionLock
from promotion_gate.checklists.checkpoint import judge_checkpoints
from promotion_gate.checklists.decision import Decision
from promotion_gate.checklists.ledger import (
    ENVELOPE_FILE,
    FILES,
    GENESIS,
    Kind,
    LedgerEntry,
    Problem,
    encode_entry,
    judge_anchor,
    line_hash,
    next_entry,
    parse_entry,
)
from promotion_gate.checklists.trust import mark_of
from promotion_gate.config.settings import Settings
from promotion_gate.notifications.report import LedgerPlace, render_html, render_json, render_markdown

LEDGER = "ledger.jsonl"


class LedgerError(Exception):
    pass


@dataclass(frozen=True)
class Recorded:
    """One recorded decision. ``head`` is the ledger's head just after its line: an anchor to publish.

    Unpacks as ``entry, folder`` (the shape the flow used before the ledger was signed).
    """

    entry: LedgerEntry
    folder: Path
    head: str

    def __iter__(self):
        return iter((self.entry, self.folder))


@dataclass
class Verification:
    entries: int = 0
    head: str = GENESIS
    head_decision: str | None = None
    problem: Problem | None = None
    keys: Counter = field(default_factory=Counter)
    demo_keys: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    pinned: bool = False  # the signatures were checked against keys pinned outside the store
    demo_signed: Counter = field(default_factory=Counter)  # key id -> entries whose signed statement says "demo"
    evidence_checked: int = 0
    evidence_required: int = 0  # files the signed records say were kept (each decision's), all found
    evidence_omitted: int = 0  # files the signed records say were omitted (and why)
    evidence_unchecked: int = 0  # decisions with evidence recorded before the records said what was kept
    anchored: int | None = None  # the newest anchored seq checked (anchor ref or exported checkpoint)
    facts: list = field(default_factory=list, repr=False)  # (decision id, what its signed statement says)
    seen: list = field(default_factory=list, repr=False)  # decision ids in ledger order
    index: tuple | None = field(default=None, repr=False)  # collect_index, every entry walked: (parts, problems), index_build.gather

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def trusted(self) -> bool:
        """Nothing wrong, every signature by a pinned key, and no entry signed with a demo key."""
        return self.ok and self.pinned and not self.demo_signed


def _first(walked: Problem | None, rotated: Problem | None) -> Problem | None:
    """The walk's problem or the rotations' (a key used when it was not trusted), whichever names the earlier line."""
    if walked is None or rotated is None:
        return walked or rotated
    return rotated if walked.line is not None and rotated.line is not None and rotated.line < walked.line else walked


def _write(path: Path, data: bytes, durable: bool) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


_TEMPORARY = re.compile(rf"^\.({'|'.join(map(re.escape, FILES))})\.[0-9a-f]{{32}}\.tmp$")  # what _write names them


def clear_temporaries(folder: Path) -> None:
    """Remove what an interrupted :func:`_write` left in a decision's folder (``.NAME.<hex>.tmp``, under the
    ledger's lock): verify accepts only the files the ledger entry records there (audit_store/walk.py)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        if _TEMPORARY.match(name):
            try:
                os.unlink(folder / name)  # a symlink planted under such a name is removed, never followed
            except OSError:
                pass  # a folder under that name is not the gate's: verify names it


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class AuditStore:
    def __init__(self, root: str | Path, signing_key: SigningKey | None = None, *, durable: bool = True,
                 settings: Settings | None = None) -> None:
        """`settings`: the run's (the key is read from them when first needed); none given: the environment's."""
        self.root = Path(root)
        self._key = signing_key
        self.durable = durable
        self._settings = settings

    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER

    def decision_dir(self, decision_id: str) -> Path:
        return self.root / "decisions" / decision_id

    @property
    def signing_key(self) -> SigningKey:
        if self._key is None:
            self._key = signing_key_from_settings(self.root, self._settings)
        return self._key

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".ledger.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def lines(self) -> list[bytes]:
        try:
            data = self.ledger_path.read_bytes()
        except FileNotFoundError:
            return []
        return data.splitlines()

    def find(self, decision_id: str) -> LedgerEntry | None:
        line = self._find_line(decision_id)
        return None if line is None else parse_entry(line)

    def _find_line(self, decision_id: str) -> bytes | None:
        needle = f'"decision_id":"{decision_id}"'.encode()
        return next((ln for ln in self.lines() if needle in ln), None)

    def head(self) -> str:
        tail = self._tail()
        return GENESIS if tail is None else line_hash(tail)

    def _tail(self) -> bytes | None:
        """The last line of the ledger, read from the end (O(1) in the ledger's length)."""
        try:
            fh = open(self.ledger_path, "rb")
        except FileNotFoundError:
            return None
        with fh:
            end = fh.seek(0, os.SEEK_END)
            if end == 0:
                return None
            size = 4096
            while True:
                start = max(0, end - size)
                fh.seek(start)
                chunk = fh.read(end - start)
                if not chunk.endswith(b"\n"):
                    raise LedgerError(f"{self.ledger_path} does not end with a newline (an interrupted append or an edit); run `promotion-gate audit verify`")
                cut = chunk.rfind(b"\n", 0, len(chunk) - 1)
                if cut >= 0 or start == 0:
                    return chunk[cut + 1:-1]
                size *= 4

    def record(self, decision: Decision, *, baseline: ProductionLock | None = None) -> Recorded:
        """Write the decision's files, sign it and append one ledger line; a second call for the same id does nothing."""
        key = self.signing_key
        with self._locked():
            key_rotation.refuse_retired(self, key.key_id)  # a key that handed over signs nothing more
            publish_public_key(self.root, key)
            recorded, _ = self._record_locked(decision, self._tail(), key, baseline)
            return recorded

    def record_many(self, decisions: Iterable[Decision]) -> list[Recorded]:
        """Record several decisions under one lock (builds large stores quickly: the bench)."""
        key = self.signing_key
        out = []
        with self._locked():
            key_rotation.refuse_retired(self, key.key_id)
            publish_public_key(self.root, key)
            tail, last_of = self._tail(), latest_by_system(self.ledger_path)
            for decision in decisions:
                recorded, tail = self._record_locked(decision, tail, key, None, last_of)
                out.append(recorded)
        return out

    def _record_locked(self, decision: Decision, tail: bytes | None, key: SigningKey,
                       baseline: ProductionLock | None, last_of: dict | None = None) -> tuple[Recorded, bytes | None]:
        folder = self.decision_dir(decision.decision_id)
        if (folder / ENVELOPE_FILE).exists():  # recorded before, or interrupted before its line: look
            line = self._find_line(decision.decision_id)
            if line is not None:
                return Recorded(parse_entry(line), folder, line_hash(line)), tail
        seq = 1 if tail is None else parse_entry(tail).seq + 1
        prev = GENESIS if tail is None else line_hash(tail)
        follows = last_of.get(decision.request.system) if last_of is not None else previous_of(self.ledger_path, decision.request.system)
        decision = decision.model_copy(update={  # the mark, the link and the gate's release are inside what is signed
            "follows": follows, "signing_key": mark_of(key.demo, key.key_id), "gate_version": GATE_VERSION})
        place = LedgerPlace(seq=seq, prev=prev, key_id=key.key_id)
        files = {
            "decision.json": render_json(decision).encode(),
            "report.md": render_markdown(decision, place=place, baseline=baseline).encode(),
            "report.html": render_html(decision, place=place, baseline=baseline).encode(),
        }
        digests = {name: _sha256(data) for name, data in files.items()}
        statement = build_statement(decision, digests, seq, prev)
        kept = evidence_record.kept_record(self.root, decision.checklist)  # which evidence is in the store, signed
        if kept is not None:
            statement["predicate"][evidence_record.FIELD] = kept
        envelope = sign_envelope(encode_statement(statement), key.private_key, key.key_id)
        files[ENVELOPE_FILE] = encode_envelope(envelope)
        digests[ENVELOPE_FILE] = _sha256(files[ENVELOPE_FILE])
        new_folder = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        clear_temporaries(folder)
        for name, data in files.items():
            _write(folder / name, data, self.durable)
        entry = next_entry(
            tail, decision_id=decision.decision_id, system=decision.request.system, verdict=decision.verdict.value,
            decided_at=decision.decided_at, decision_sha256=digests["decision.json"], files=digests,
            signature=envelope["signatures"][0]["sig"], key_id=key.key_id, follows=follows,
        )
        line = encode_entry(entry)
        if last_of is not None:
            last_of[decision.request.system] = decision.decision_id
        self._append(line, new_folder, folder)
        return Recorded(entry, folder, line_hash(line)), line[:-1]

    def _append(self, line: bytes, new_folder: bool, folder: Path) -> None:
        new_ledger = not self.ledger_path.exists()
        if self.durable:
            _fsync_dir(folder)
            if new_folder:
                _fsync_dir(folder.parent)
        with open(self.ledger_path, "ab") as fh:
            fh.write(line)
            if self.durable:
                fh.flush()
                os.fsync(fh.fileno())
        if self.durable and new_ledger:
            _fsync_dir(self.root)

    def published_keys(self) -> tuple[dict, set[str], list[str]]:
        """(key id -> public key, demo key ids, notes) from ``keys/*.pub.pem``; a key is known by its own digest."""
        found = sorted((self.root / KEYS_DIR).glob("*.pub.pem"))
        regular = [p for p in found if not p.is_symlink() and p.is_file() and p.stat().st_size <= 64 * 1024]
        keys, demo, notes = read_public_keys(regular, self.root / KEYS_DIR)
        refused = [f"{KEYS_DIR}/{p.name}: refused (a symlink, a special file or larger than 64 KiB)" for p in found if p not in regular]
        return keys, demo, refused + notes

    def verify(self, *, anchor: str | None = None, allow_newer: bool = False, trusted: dict | None = None,
               limits: Limits | None = None, workers: int | None = None,
               checkpoints: list | None = None, kept: Sequence = (), collect_index: bool = False) -> Verification:
        """Every line, file digest and signature, then the anchor; stops at the first bad entry.

        Reads through :class:`StoreReader` (no symlink, no special file, bounded files and lines);
        ``workers``: processes for a large ledger (default: the cores available). ``collect_index``:
        the walk also parses each decision.json it verified (the bytes it hashed) into ``index``,
        set only when the walk judged every entry (``audit index``; audit_store/index_build.py).
        """
        result = Verification(pinned=trusted is not None)
        keys, result.demo_keys, result.notes = self.published_keys()
        if trusted is not None:
            keys = trusted
        with StoreReader(self.root, limits) as reader:
            try:
                ledger = read_ledger(reader, LEDGER)
            except FileNotFoundError:
                if (self.root / "decisions").is_dir():
                    result.problem = Problem(Kind.removed, f"{LEDGER} is missing but decisions/ holds decisions")
                return result
            lines = ledger.lines
            result.entries = len(lines)
            rotations = None
            if trusted is not None:  # audit_store/key_rotation.py: a pinned key may hand over to a new one, in a signed entry
                rotations = follow_rotations(lines, trusted, reader)
                keys = rotations.keys
                result.notes += [f"key rotation: key {old[:16]}... handed over to key {new[:16]}... at seq {seq}; it is retired "
                                 "from then on" for old, (seq, new) in rotations.retired.items()]
            result.problem = ledger.problem or self._walk(lines, keys, result, reader, workers, collect_index)
            rotated = rotations and judge_rotated(lines, rotations)
            if rotated and not ledger.problem and _first(result.problem, rotated) is rotated:
                result.problem = rotated  # the entries before it hold: count those only
                result.keys = Counter(k for k in (key_rotation.key_of(line) for line in lines[:rotated.line - 1]) if k)
            if result.problem is None:  # audit_store/findings.py: completeness, kept evidence
                result.problem = judge_store(self.root, reader, lines, result)
        if result.problem is None and not ledger.ends_with_newline:
            result.problem = Problem(Kind.edited, "the last line has no newline (an interrupted append or an edit)", line=len(lines))
        if lines:
            result.head = line_hash(lines[-1])
        if result.problem is None and anchor:
            result.problem = judge_anchor(lines, anchor, allow_newer)
        if result.problem is None and (checkpoints is not None or kept):  # checklists/checkpoint.py
            result.problem, notes = judge_checkpoints(lines, checkpoints, kept, allow_newer)
            result.notes += notes
            result.anchored = max([k.seq for k in kept] + [c.checkpoint.seq for c in (checkpoints or [])[:1] if c.checkpoint], default=None)
        return result

    def _walk(self, lines: list[bytes], keys: dict, result: Verification, reader: StoreReader,
              workers: int | None = None, collect_index: bool = False) -> Problem | None:
        walked = walk_all(lines, keys, reader, workers, collect_facts=True,  # audit_store/walk.py: each line, its files, its signature
                          collect_index=collect_index)
        result.facts = walked.facts
        result.keys.update(walked.keys)
        result.head_decision = walked.head_decision
        if walked.problem is not None:
            return walked.problem
        result.seen = walked.seen
        if collect_index:
            result.index = (walked.index, walked.index_problems)
        return None
