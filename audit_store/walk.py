"""The walk of ``audit verify``: every ledger line, its files and its signature, on both cores.

The ledger is read streaming (each line bounded, see :mod:`audit_store.safe_read`); each entry's four
files are opened without following links and hashed; :func:`checklists.ledger.judge_entry`
judges it. A chain can be judged in chunks: the entry at line ``i`` only needs the hash of line
``i - 1``, so each chunk starts from the hash of the line before it and the first failing chunk
(in ledger order) holds the first bad entry, exactly as a walk from the start would find it.
Large ledgers are judged by a pool of worker processes, each given its chunk of lines.
"""

from __future__ import annotations

import errno
import gc
import hashlib
import json
import multiprocessing
import os
import pickle
import re
import stat
import zlib
from collections import Counter
from dataclasses import dataclass, field

from promotion_gate.audit_store.safe_read import (
    HARD_LINK,
    LONG_LINE,
    NOT_DIR,
    SPECIAL,
    SYMLINK,
    TOO_LARGE,
    Limits,
    Refused,
    StoreReader,
    kind_of,
    read_file,
)
from promotion_gate.audit_store.evidence_record import signed_kept
from promotion_gate.checklists.ledger import (ENVELOPE_FILE, FILES, GENESIS, PREDICATE, Kind, Problem, judge_entry, line_hash,
                                             parse_entry)

DECISION_FILE = "decision.json"
KIND_OF_REFUSAL = {SYMLINK: Kind.symlink, SPECIAL: Kind.special, TOO_LARGE: Kind.oversized, LONG_LINE: Kind.long_line,
                   NOT_DIR: Kind.not_dir, HARD_LINK: Kind.hard_link}
PARALLEL_FROM = 4000  # entries; below this a pool costs more than it saves
CHUNK = 2000
INDEX_CHUNK = 500  # collect_index: a worker's peak memory grows with its chunk (parsed decisions), CPU does not


@dataclass
class Walked:
    problem: Problem | None = None
    keys: Counter = field(default_factory=Counter)
    head_decision: str | None = None
    seen: list[str] = field(default_factory=list)
    last_of: dict[str, str] = field(default_factory=dict)  # system -> its latest decision id so far
    facts: list[tuple[str, dict]] = field(default_factory=list)  # (decision id, what its signed statement says)
    index: list | None = None  # collect_index: the index's data from the decision.json bytes just verified, in ledger order:
    # IndexData parts, or parts a worker pickled and compressed (bytes until the walk is over: index_build.gather)
    index_problems: list[str] = field(default_factory=list)  # collect_index: the decisions that could not be parsed


@dataclass
class Ledger:
    lines: list[bytes]
    ends_with_newline: bool = True
    problem: Problem | None = None


def refusal_problem(exc: Refused, line: int | None = None, seq: int | None = None, decision_id: str | None = None) -> Problem:
    return Problem(KIND_OF_REFUSAL[exc.kind], f"{exc.path}: {exc.detail}", line=line, seq=seq, decision_id=decision_id)


def read_ledger(reader: StoreReader, name: str) -> Ledger:
    """The ledger's lines (without newlines); a refusal (symlink, FIFO, over-long line) as ``problem``. FileNotFoundError if absent."""
    lines: list[bytes] = []
    ends = True
    try:
        for line in reader.lines(name):
            ends = line.endswith(b"\n")
            lines.append(line[:-1] if ends else line)
    except Refused as exc:
        return Ledger(lines, ends, refusal_problem(exc, line=len(lines) + 1 if exc.kind == LONG_LINE else None))
    return Ledger(lines, ends)


def shown(name: str) -> str:
    """A name found in the store as verify prints it: as is when printable, else quoted with escapes (a name
    holding a newline could otherwise print a line of its own, "OK: ..." included)."""
    return name if name.isprintable() else ascii(name)


def what_is(name: str, dir_fd: int) -> str:
    """What stands under ``name`` in ``dir_fd``, without following it: a file, a folder, a symlink, a special file."""
    try:
        mode = os.lstat(name, dir_fd=dir_fd).st_mode
    except OSError:
        return "gone while it was read"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "a folder" if stat.S_ISDIR(mode) else "a file" if stat.S_ISREG(mode) else "a special file"


def unexpected_problem(decision_id: str, found: list[tuple[str, str]], line: int, seq: int) -> Problem:
    """The names in a decision's folder that its ledger entry does not record (the first named, and how many more)."""
    (name, what), names = found[0], [n for n, _ in found]
    twin = next((f for f in FILES if f.lower() == name.lower()), None)
    why = (f" (a case-only twin of {twin}: on a case-insensitive copy of the store it replaces the signed file)"
           if twin else "")
    more = f"; and {len(names) - 1} more ({', '.join(map(shown, names[1:4]))}{', ...' if len(names) > 4 else ''})" if len(names) > 1 else ""
    return Problem(Kind.unexpected, f"decisions/{decision_id}/{shown(name)}: {what}{why}, not one of the files "
                                    f"its ledger entry records ({', '.join(FILES)}){more}",
                   line=line, seq=seq, decision_id=decision_id)


def entry_files(decisions_fd: int, decision_id: str, limits: Limits,
                kept: dict[str, bytes] | None = None,
                extra: list[tuple[str, str]] | None = None) -> tuple[dict[str, str | None], bytes | None]:
    """SHA-256 of each of the decision's files (None: missing) and the envelope's bytes; Refused on a hostile path.

    ``kept``, when given, receives the bytes of ``decision.json`` as hashed (the index parses those very bytes).
    ``extra``, when given, receives every other name in the folder and what it is (sorted; nothing is opened or followed).
    """
    digests: dict[str, str | None] = dict.fromkeys(FILES)
    try:
        folder = os.open(decision_id, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=decisions_fd)
    except FileNotFoundError:
        return digests, None
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        kind = kind_of(decision_id, decisions_fd)
        raise Refused(kind, f"decisions/{decision_id}", "a symlink (the store's folders are never links)" if kind == SYMLINK else "not a folder") from None
    envelope = None
    try:
        for name in FILES:
            try:
                content = read_file(name, folder, f"decisions/{decision_id}/{name}", limits.max_file_bytes)
            except (FileNotFoundError, NotADirectoryError):
                continue
            digests[name] = hashlib.sha256(content).hexdigest()
            if name == ENVELOPE_FILE:
                envelope = content
            elif kept is not None and name == DECISION_FILE:
                kept[name] = content
        if extra is not None:
            extra += [(name, what_is(name, folder)) for name in sorted(set(os.listdir(folder)) - set(FILES))]
    finally:
        os.close(folder)
    return digests, envelope


def walk(lines: list[bytes], keys: dict, reader: StoreReader, start: int = 0, stop: int | None = None,
         last_of: dict[str, str] | None = None, collect_facts: bool = False, collect_index: bool = False) -> Walked:
    """Judge entries ``lines[start:stop]``; stops at the first bad one.

    ``last_of``: each system's latest decision id before ``start`` (what an entry ``follows``).
    ``collect_index``: also parse each decision.json whose entry holds, from the very bytes whose digest
    was just checked (``audit index``: each file is read once), into ``index`` (audit_store/index_build.py).
    """
    out = Walked(last_of=dict(last_of or {}))
    kept: dict[str, bytes] | None = None
    extra: list[tuple[str, str]] = []
    if collect_index:
        from promotion_gate.audit_store.index_build import add_decision
        from promotion_gate.notifications.index_data import IndexData

        data, kept = IndexData(), {}
        out.index = [data]
    stop = len(lines) if stop is None else stop
    prev = GENESIS if start == 0 else line_hash(lines[start - 1])
    try:
        decisions = reader.folder("decisions")
    except FileNotFoundError:
        decisions = None
    except Refused as exc:
        out.problem = refusal_problem(exc)
        return out
    collecting = gc.isenabled()
    gc.disable()  # the walk makes millions of short-lived, acyclic objects: the cycle collector only costs time
    try:
        for index in range(start, stop):
            line = lines[index]
            try:
                entry = parse_entry(line)
            except ValueError as exc:
                first = str(exc).splitlines()[1:2] or ["not JSON"]
                out.problem = Problem(Kind.edited, f"the line is not a ledger entry ({first[0].strip()})", line=index + 1)
                return out
            try:
                if kept is not None:
                    kept.clear()
                extra.clear()
                digests, envelope = ((dict.fromkeys(FILES), None) if decisions is None
                                     else entry_files(decisions, entry.decision_id, reader.limits, kept, extra))
            except Refused as exc:
                out.problem = refusal_problem(exc, line=index + 1, seq=entry.seq, decision_id=entry.decision_id)
                return out
            facts = {} if collect_facts else None
            problem = judge_entry(lines, index, entry, prev, digests, envelope, keys,
                                  facts=facts, system_previous=out.last_of.get(entry.system))
            if problem is None and extra:  # everything it records holds: what else lies in its folder
                problem = unexpected_problem(entry.decision_id, extra, index + 1, entry.seq)
            if problem is not None:
                out.problem = problem
                return out
            out.last_of[entry.system] = entry.decision_id
            if kept is not None and entry.verdict != "key-rotation":  # a signed hand-over of keys, not a decision
                add_decision(data, out.index_problems, index + 1, kept[DECISION_FILE], verified=True)
            predicate = facts.pop(PREDICATE, None) if facts is not None else None
            if facts is not None and entry.verdict != "key-rotation":  # what its signed record says it kept
                said = signed_kept(predicate or {})
                if said is None:
                    facts["evidence_unchecked"] = True
                elif said[0] or said[1]:
                    facts["kept"], facts["omitted"] = said
                if len(facts) > (2 if "key_kind" in facts else 0):
                    facts["seq"], facts["line"] = entry.seq, index + 1
            if facts:  # sparse (checklists.ledger.judge_entry): only entries with something to report
                out.facts.append((entry.decision_id, facts))
            out.keys[entry.key_id] += 1
            out.head_decision = entry.decision_id
            out.seen.append(entry.decision_id)
            prev = line_hash(line)
    finally:
        if collecting:
            gc.enable()
        if decisions is not None:
            os.close(decisions)
    return out


_ID = re.compile(rb'"decision_id":"([a-z0-9][a-z0-9.-]{0,127})"')
_SYSTEM = re.compile(rb'"system":("(?:[^"\\]|\\.)*")')


def systems_before(lines: list[bytes], starts: list[int]) -> list[dict[str, str]]:
    """For each chunk start, each system's latest decision id in the lines before it.

    Read from the raw lines without judging them: a line that reads wrongly here is itself judged
    bad by its own chunk, which comes before every chunk that used what was read from it.
    """
    out, last, wanted = [], {}, iter(starts)
    upcoming = next(wanted, None)
    for index, line in enumerate(lines):
        while upcoming == index:
            out.append(dict(last))
            upcoming = next(wanted, None)
        found_id, found_system = _ID.search(line), _SYSTEM.search(line)
        if found_id and found_system:
            try:
                last[json.loads(found_system.group(1))] = found_id.group(1).decode()
            except ValueError:
                pass
    while upcoming is not None:
        out.append(dict(last))
        upcoming = next(wanted, None)
    return out


class _Window:
    """Lines ``start-1 .. start+len(chunk)-1`` of a ledger, indexed as in the whole ledger (a worker's view)."""

    def __init__(self, start: int, before: bytes | None, chunk: list[bytes]) -> None:
        self.start, self.before, self.chunk = start, before, chunk

    def __getitem__(self, index: int) -> bytes:
        if index == self.start - 1 and self.before is not None:
            return self.before
        if not self.start <= index < self.start + len(self.chunk):
            raise IndexError(index)
        return self.chunk[index - self.start]

    def __iter__(self):
        return iter(self.chunk)


_KEYS: dict[tuple, dict] = {}  # raw public keys -> key objects, rebuilt once per worker


def _keys_of(raw: tuple[tuple[str, bytes], ...]) -> dict:
    if raw not in _KEYS:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        _KEYS[raw] = {kid: Ed25519PublicKey.from_public_bytes(data) for kid, data in raw}
    return _KEYS[raw]


def _walk_chunk(job: tuple) -> tuple[int, Walked]:
    start, before, chunk, last_of, raw_keys, root, limits, collect, index = job
    with StoreReader(root, limits) as reader:
        part = walk(_Window(start, before, chunk), _keys_of(raw_keys), reader, start, start + len(chunk), last_of, collect, index)
    if part.index is not None:  # sent pickled and compressed, kept so while the walk holds the ledger: about 35 bytes a row
        part.index = [zlib.compress(pickle.dumps(part.index[0], protocol=pickle.HIGHEST_PROTOCOL), 1)]
    return start, part


def _raw_keys(keys: dict) -> tuple[tuple[str, bytes], ...] | None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    try:
        return tuple(sorted((kid, k.public_bytes(Encoding.Raw, PublicFormat.Raw)) for kid, k in keys.items()))
    except (AttributeError, TypeError, ValueError):
        return None  # not Ed25519 key objects: judge in this process


def workers_available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def walk_all(lines: list[bytes], keys: dict, reader: StoreReader, workers: int | None = None,
             collect_facts: bool = False, collect_index: bool = False) -> Walked:
    """The whole ledger: in this process when small (or one worker), else in chunks on a pool.

    Workers are forked (no re-import of ``__main__``) and receive their chunk of lines and the raw
    keys with each job, so each holds one chunk at a time beyond what it shares with us. A chunk
    that finds a problem is judged again here, with the whole ledger, so the problem named is
    exactly the one a walk from the start names. ``collect_index``: each chunk's index data (see
    :func:`walk`) is kept in ledger order, pickled; ``index_build.gather`` merges them once the
    walk is over (and the ledger's lines freed), into the data a walk from the start collects.
    """
    workers = workers_available() if workers is None else workers
    raw = _raw_keys(keys)
    if workers <= 1 or len(lines) < PARALLEL_FROM or raw is None or "fork" not in multiprocessing.get_all_start_methods():
        return walk(lines, keys, reader, collect_facts=collect_facts, collect_index=collect_index)
    size = INDEX_CHUNK if collect_index else CHUNK
    starts = list(range(0, len(lines), size))
    jobs = ((lo, lines[lo - 1] if lo else None, lines[lo:lo + size], before, raw, reader.root, reader.limits, collect_facts,
             collect_index)
            for lo, before in zip(starts, systems_before(lines, starts)))
    total = Walked()
    if collect_index:
        from promotion_gate.audit_store.index_build import build_validators

        build_validators()  # before the fork: one copy, shared by the workers
        total.index = []
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for start, part in pool.imap(_walk_chunk, jobs):
            if part.problem is not None:  # judged again with the whole ledger (a removed line names its gap)
                part = walk(lines, keys, reader, start, min(start + size, len(lines)), dict(total.last_of), collect_facts,
                            collect_index)
            total.keys.update(part.keys)
            total.seen += part.seen
            total.facts += part.facts
            if collect_index:
                total.index += part.index
                total.index_problems += part.index_problems
            total.last_of.update(part.last_of)
            total.head_decision = part.head_decision or total.head_decision
            if part.problem is not None:
                total.problem = part.problem
                break
    return total
