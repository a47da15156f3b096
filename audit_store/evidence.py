"""The evidence judged, kept in the audit store by content: ``evidence/sha256/<hex>``.

Each evidence file a decision judged is copied once (content-addressed by its SHA-256, so a
file judged by many decisions is stored once), re-read from the same source at the same commit
and kept only if its bytes still hash to the digest the checklist recorded. Above the size cap
(``PROMOTION_GATE_EVIDENCE_COPY_MAX_BYTES``) only ``<hex>.omitted.json`` is written: the digest,
the path, the size and the key metrics. An auditor re-runs ``promotion-gate check`` on the
exact bytes; ``audit verify`` re-hashes every blob a signed statement references.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path

from promotion_gate.audit_store.evidence_record import EVIDENCE_DIR, HEX64, is_regular
from promotion_gate.audit_store.safe_read import Refused, StoreReader, open_regular
from promotion_gate.audit_store.walk import refusal_problem, shown, what_is
from promotion_gate.checklists.candidate import system_path
from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.ledger import Kind, Problem

DEFAULT_CAP = 64 * 1024 * 1024
CHUNK = 1024 * 1024
STUB = re.compile(r"^[0-9a-f]{64}\.omitted\.json$")
# what the gate itself leaves beside the blobs, under dot names: a planted thing moved aside (_displace, from
# _move_aside) and an interrupted copy's temporary files (_keep_one). Never read, never evidence: verify notes them
SET_ASIDE = re.compile(r"^\.[0-9a-f]{64}\.(displaced\.[0-9a-f]{32}|[0-9a-f]{32}\.tmp|omitted\.[0-9a-f]{32}\.tmp)$")


def blob_path(root: str | Path, sha256: str) -> Path:
    return Path(root) / EVIDENCE_DIR / sha256


def keep_evidence(root: str | Path, source, checklist: Checklist | None, cap: int = DEFAULT_CAP) -> list[str]:
    """Copy each judged evidence file into the store; notes for what could not be kept (never raises on one file)."""
    if checklist is None:
        return []
    folder = Path(root) / EVIDENCE_DIR
    notes = []
    for rec in checklist.evidence:
        # kept already (a regular file under its digest; verify checks it hashes to it): nothing to do. A stub alone
        # is no reason to skip (one planted by whoever could write the store would make the signed record say
        # "omitted"): the copy is tried again and rewrites it if still too large
        if not rec.sha256 or not HEX64.match(rec.sha256) or is_regular(folder / rec.sha256):
            continue
        try:
            if not folder.is_dir() or folder.is_symlink():
                notes += _clear_the_folders(Path(root))
                folder.mkdir(parents=True, exist_ok=True)
            notes += _move_aside(folder, rec.sha256)
            notes += _keep_one(folder, source, rec, system_path(checklist.system, rec.path), cap)
        except OSError as exc:
            notes.append(f"{rec.path}: not kept ({exc.strerror or type(exc).__name__})")
    return notes


def _clear_the_folders(root: Path) -> list[str]:
    """``evidence`` and ``evidence/sha256`` as real folders of the store: a file planted in their place
    would stop every copy, a symlink would keep them outside the store. Either is moved aside."""
    notes = []
    for relative in ("evidence", EVIDENCE_DIR):
        path = root / relative
        if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
            kind = "a symlink" if path.is_symlink() else "not a folder"
            notes.append(f"{relative} was {kind}: moved aside to {_displace(path)}")
    return notes


def _move_aside(folder: Path, sha: str) -> list[str]:
    """Whatever stands under a blob's name that is not a regular file (a directory, a symlink: planted,
    it would stop the copy and make the signed record say "omitted") is moved aside: the copy then
    takes its place."""
    blob = folder / sha
    if not os.path.lexists(blob):
        return []
    kind = "a symlink" if blob.is_symlink() else "a directory" if blob.is_dir() else "a special file"
    return [f"{EVIDENCE_DIR}/{sha[:16]}... held {kind}, not a kept copy: moved aside to {_displace(blob)}"]


def _displace(path: Path) -> str:
    """Rename ``path`` to a dot name beside it (nothing is lost); the new name. In ``evidence/sha256/`` verify
    notes such names (:data:`SET_ASIDE`) and reads none of them."""
    aside = path.with_name(f".{path.name}.displaced.{uuid.uuid4().hex}")
    os.rename(path, aside)
    return aside.name


def _keep_one(folder: Path, source, rec, path: str, cap: int) -> list[str]:
    tmp = folder / f".{rec.sha256}.{uuid.uuid4().hex}.tmp"
    digest, size = hashlib.sha256(), 0
    with source.open(path) as stream:
        if stream is None:
            return [f"{rec.path}: not kept (absent when re-read)"]
        with open(tmp, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > cap:
                    break
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    if size > cap:
        tmp.unlink()
        metrics = {k: m.value for k, m in rec.parsed.metrics.items()} if rec.parsed else {}
        stub = {"sha256": rec.sha256, "path": rec.path, "format": rec.format, "omitted": f"larger than the {cap} bytes kept",
                "metrics": metrics}
        stub_tmp = folder / f".{rec.sha256}.omitted.{uuid.uuid4().hex}.tmp"
        stub_tmp.write_text(json.dumps(stub, sort_keys=True, indent=2) + "\n")
        os.replace(stub_tmp, folder / f"{rec.sha256}.omitted.json")  # replaces a planted symlink, never writes through it
        return []
    if digest.hexdigest() != rec.sha256:
        tmp.unlink()
        return [f"{rec.path}: not kept (its bytes changed since they were judged)"]
    os.replace(tmp, folder / rec.sha256)
    return []


def check_evidence(reader: StoreReader, required: dict[str, tuple] | None = None,
                   notes: list[str] | None = None) -> tuple[Problem | None, int]:
    """(the first name in ``evidence/sha256/`` that is neither a blob nor a stub, or kept blob that does not
    hash to its name, or else the first file a signed record says was kept that is not there; the number
    of blobs checked).

    Content-addressed: every blob the signed statements reference is named by the digest they
    sign, so checking each blob against its own name checks every referenced one. ``required``:
    sha256 -> (decision id, seq, line, path) of the first entry whose signed record says it kept it.
    The folder holds only ``<hex>`` blobs and ``<hex>.omitted.json`` stubs (lower-case SHA-256, regular
    files), and what the gate sets aside (:data:`SET_ASIDE`, counted in ``notes``); any other name
    (an upper-case copy of a blob's name, a symlink, a folder, another dot name) is an ``unexpected entry``."""
    required = required or {}
    try:
        folder = reader.folder(EVIDENCE_DIR)
    except FileNotFoundError:
        return _missing(required, set(), set()), 0
    except Refused as exc:
        return refusal_problem(exc), 0
    checked, present, stubs, aside = 0, set(), set(), 0
    try:
        for name in sorted(os.listdir(folder)):
            if SET_ASIDE.match(name):
                aside += 1
                continue
            if not HEX64.match(name):
                what = what_is(name, folder)
                if STUB.match(name) and what == "a file":
                    stubs.add(name[:-len(".omitted.json")])
                    continue
                return Problem(Kind.unexpected, f"{EVIDENCE_DIR}/{shown(name)}: {what}, not a kept blob: {EVIDENCE_DIR}/ holds only "
                                                "files named by their lower-case SHA-256 and their <hex>.omitted.json stubs"), checked
            found = _hash_blob(folder, name)
            if found is None:
                continue
            checked += 1
            present.add(name)
            if found != name:
                return Problem(Kind.edited, f"{EVIDENCE_DIR}/{name[:16]}... does not hash to its name (sha256 {found[:16]}...): "
                                            "the kept evidence was changed"), checked
    except Refused as exc:
        return refusal_problem(exc), checked
    finally:
        os.close(folder)
    if aside and notes is not None:
        notes.append(f"{EVIDENCE_DIR}: {aside} name{'' if aside == 1 else 's'} the gate set aside (something planted under a "
                     "blob's name, moved aside as .<hex>.displaced.<id>, or an interrupted copy's .tmp): not evidence, not read")
    return _missing(required, present, stubs), checked


def _missing(required: dict[str, tuple], present: set[str], stubs: set[str]) -> Problem | None:
    gone = [(place, sha) for sha, place in required.items() if sha not in present]
    if not gone:
        return None
    (decision_id, seq, line, path), sha = min(gone, key=lambda g: g[0][2])
    stub = f": a stub ({sha[:16]}....omitted.json) stands in its place" if sha in stubs else ""
    return Problem(Kind.missing, f"kept evidence {path} (sha256 {sha[:16]}...): the signed record says it was kept, but "
                                 f"{EVIDENCE_DIR}/{sha} is gone{stub}", line=line, seq=seq, decision_id=decision_id)


def _hash_blob(folder: int, sha: str) -> str | None:
    try:
        fd = open_regular(sha, folder, f"{EVIDENCE_DIR}/{sha}")
    except FileNotFoundError:
        return None
    digest = hashlib.sha256()
    try:
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return digest.hexdigest()
