"""What a decision's signed statement says about its kept evidence: ``predicate.evidenceKept``.

``keep_evidence`` copies the evidence judged into ``evidence/sha256/`` before the decision is
recorded; the record then looks at what is there and signs, for each evidence file judged (path,
SHA-256), ``kept: true`` (its copy is in the store) or ``kept: false`` with ``omitted``, why: the
reason its ``<hex>.omitted.json`` stub gives (above the size cap), or that no copy was made (the
forge was down, the bytes changed since they were judged). ``audit verify`` then requires exactly
that: every file a record says was kept is present (and hashes to its name); an omitted one is not
required. Records written before this field have none: verify says their evidence could not be
checked for completeness, and does not fail them.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from promotion_gate.checklists import store_json

EVIDENCE_DIR = "evidence/sha256"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
FIELD = "evidenceKept"
NOT_COPIED = "no copy in the store when the decision was recorded (the copy failed or its bytes had changed: see the run's log)"
_STUB_MAX = 64 * 1024


def kept_record(root: str | Path, checklist) -> list[dict] | None:
    """For each evidence file judged (with a digest), whether its copy is in the store, else why not.

    Called by the store under its lock, after ``keep_evidence``; the list goes into the signed statement."""
    if checklist is None:
        return []
    folder = Path(root) / EVIDENCE_DIR
    out = []
    for rec in checklist.evidence:
        if not rec.sha256 or not HEX64.match(rec.sha256):
            continue  # nothing was judged (the file was missing): there is nothing to keep
        if is_regular(folder / rec.sha256):
            out.append({"path": rec.path, "sha256": rec.sha256, "kept": True})
        else:
            out.append({"path": rec.path, "sha256": rec.sha256, "kept": False,
                        "omitted": _stub_reason(folder / f"{rec.sha256}.omitted.json") or NOT_COPIED})
    return out


def is_regular(path: Path) -> bool:
    """A regular file under that name, not a symlink to one."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _stub_reason(path: Path) -> str | None:
    if not is_regular(path):
        return None
    try:
        with open(path, "rb") as fh:
            reason = store_json.loads(fh.read(_STUB_MAX)).get("omitted")
    except (OSError, ValueError, AttributeError):
        return None
    return " ".join(reason.split())[:200] if isinstance(reason, str) and reason.strip() else None


def signed_kept(predicate: dict) -> tuple[tuple[tuple[str, str], ...], int] | None:
    """From the predicate of a statement whose signature was just verified (``judge_entry`` hands it
    over: the envelope is not opened twice): ((sha256, path) of each file it says was kept, the number
    it says were omitted); ``((), 0)`` when it judged no evidence; None when it judged evidence but has
    no ``evidenceKept`` (recorded before the field: completeness cannot be checked)."""
    said = predicate.get(FIELD)
    if said is None:
        return None if any(isinstance(e, dict) and e.get("sha256") for e in predicate.get("evidence") or ()) else ((), 0)
    if not isinstance(said, list):
        return None
    kept, omitted = [], 0
    for item in said:
        if not isinstance(item, dict) or not isinstance(item.get("sha256"), str) or not HEX64.match(item["sha256"]):
            return None
        if item.get("kept") is True:
            kept.append((item["sha256"], str(item.get("path"))))
        else:
            omitted += 1
    return tuple(kept), omitted
