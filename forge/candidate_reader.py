"""Gather one system's manifest and evidence from a source: a commit, a working tree, GitHub.

The shell opens; the core parses. A source is anything with ``open(path)`` (a context manager
yielding a binary stream, or None when the file is absent) that raises :class:`SourceError`
for a file it refuses to read.
"""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, ContextManager, Iterator, Protocol

from promotion_gate.checklists.candidate import (
    LOCK_FILE,
    MAX_EVIDENCE_BYTES,
    Candidate,
    EvidenceRecord,
    parse_lock,
    read_evidence_record,
    read_manifest,
    system_path,
)
from promotion_gate.checklists.evidence._jsonstream import shared_decode
from promotion_gate.checklists.evidence.base import EvidenceError, HashingReader
from promotion_gate.checklists.evidence.usage import EXTRACTORS as USAGE_FORMATS
from promotion_gate.checklists.evidence.usage import extract_usage

MAX_MANIFEST_BYTES = 1 << 20


class SourceError(Exception):
    pass


class Source(Protocol):
    def open(self, path: str) -> ContextManager[BinaryIO | None]: ...


class WorkingTree:
    """Files of a checkout as they are on disk (the offline `check`); symlinks may not leave the folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    @contextmanager
    def open(self, path: str) -> Iterator[BinaryIO | None]:
        try:
            stream = self._open(path)
        except OSError as exc:  # a name too long, a loop of links, no permission: the file is unusable, not a crash
            raise SourceError(f"{path[:200]}: cannot be read ({exc.strerror or type(exc).__name__})") from None
        if stream is None:
            yield None
            return
        with stream:
            yield stream

    def _open(self, path: str) -> BinaryIO | None:
        target = (self.root / path)
        folder = (self.root / "/".join(path.split("/")[:2])).resolve()
        if not target.exists():
            return None
        real = target.resolve()
        if not real.is_relative_to(folder):
            raise SourceError(f"{path} resolves outside {folder.relative_to(self.root)} (symbolic link)")
        if not real.is_file():
            raise SourceError(f"{path} is not a regular file")
        return real.open("rb")


class AtCommit:
    """Files of a local repository at one commit (never its working tree)."""

    def __init__(self, repo, commit: str) -> None:
        self.repo, self.commit = repo, commit

    def open(self, path: str) -> ContextManager[BinaryIO | None]:
        from promotion_gate.local_repo.git import GitError

        try:
            return self.repo.open(self.commit, path)
        except GitError as exc:
            raise SourceError(str(exc)) from None


def _read_all(source: Source, path: str, limit: int) -> bytes | None:
    with source.open(path) as stream:
        if stream is None:
            return None
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise SourceError(f"{path} is larger than {limit} bytes")
    return data


def read_candidate(source: Source, system: str, commit: str, baseline: Source | None = None) -> Candidate:
    manifest_path = system_path(system, "promotion.yaml")
    try:
        text = _read_all(source, manifest_path, MAX_MANIFEST_BYTES)
    except SourceError as exc:
        text, problems = None, [f"{manifest_path}: {exc}"]
    else:
        problems = [f"{manifest_path}: file not found (is {system!r} the system's folder name?)"] if text is None else []
    if text is None:
        return Candidate(system=system, commit=commit, manifest_path=manifest_path, manifest_sha256="", manifest_problems=problems)
    manifest, problems = read_manifest(system, text)
    evidence = [_read_evidence(source, system, ref) for ref in (manifest.evidence_refs() if manifest else [])]
    lock, lock_problem = _read_baseline(baseline, system)
    return Candidate(
        system=system, commit=commit, manifest_path=manifest_path,
        manifest_sha256=hashlib.sha256(text).hexdigest(), manifest=manifest, manifest_problems=problems,
        evidence=evidence, baseline=lock, baseline_problem=lock_problem,
    )


def _read_evidence(source: Source, system: str, ref) -> EvidenceRecord:
    """Parse one evidence file, reading it from its source once (a GitHub blob is one request):
    a format that also carries usage is spooled while it is parsed, and the usage read from the
    spool, so both readings see the same bytes (a JSON document decoded whole is decoded once
    for both: ``shared_decode``)."""
    path = system_path(system, ref.path)
    try:
        with source.open(path) as stream:
            if stream is None or ref.format not in USAGE_FORMATS:
                return read_evidence_record(ref, stream, missing_reason="file not found")
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as spool, shared_decode():
                record = read_evidence_record(ref, _Tee(stream, spool), missing_reason="file not found")
                return _with_usage(spool, record)
    except SourceError as exc:
        return EvidenceRecord(path=ref.path, format=ref.format, error=str(exc))


SPOOL_IN_MEMORY_BYTES = 8 << 20


class _Tee:
    """A read-only stream that copies what is read from ``stream`` into ``sink``."""

    def __init__(self, stream: BinaryIO, sink) -> None:
        self._stream, self._sink = stream, sink

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._sink.write(data)
        return data

    def readline(self, n: int = -1) -> bytes:
        data = self._stream.readline(n)
        self._sink.write(data)
        return data


def _with_usage(spool, record: EvidenceRecord) -> EvidenceRecord:
    """The token usage and cost of the bytes just parsed (checklists/evidence/usage.py)."""
    if record.parsed is None:
        return record
    spool.seek(0)
    reader = HashingReader(spool, MAX_EVIDENCE_BYTES)
    try:
        usage = extract_usage(record.format, reader)
        reader.drain()
    except EvidenceError as exc:
        return record.model_copy(update={"usage_error": exc.reason})
    if reader.sha256.hexdigest() != record.sha256:
        return record.model_copy(update={"usage_error": "the usage reading saw other bytes than the parse"})
    return record.model_copy(update={"usage": usage})


def _read_baseline(baseline: Source | None, system: str):
    if baseline is None:
        return None, None
    path = system_path(system, LOCK_FILE)
    try:
        data = _read_all(baseline, path, MAX_MANIFEST_BYTES)
        return (parse_lock(data, path), None) if data is not None else (None, None)
    except (SourceError, ValueError) as exc:
        return None, f"production baseline unusable: {exc}"
