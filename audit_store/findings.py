"""What ``audit verify`` finds beyond each entry: a ledger that is not complete, kept evidence that
changed, and which entries a demo key signed (read from each signed statement, never a side file).

The ledger must account for every decision: an empty or missing ledger while ``decisions/``
holds decisions, or one decision folder without a ledger line, is a finding (``removed``,
``decision without a ledger line``), not a note.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from promotion_gate.audit_store.evidence import check_evidence
from promotion_gate.audit_store.safe_read import Refused, StoreReader
from promotion_gate.audit_store.signing_keys import OLD_DEMO_KEY_FILE
from promotion_gate.audit_store.walk import refusal_problem, shown
from promotion_gate.checklists.ledger import Kind, Problem

_ID = re.compile(rb'"decision_id":"([a-z0-9][a-z0-9.-]{0,127})"')
_SYSTEM = re.compile(rb'"system":"([a-z0-9][a-z0-9-]{0,62})"')
SHOWN = 5


def decision_folders(reader: StoreReader) -> list[str]:
    """Every name in ``decisions/``, dot names included: the gate writes nothing else there (no decision id
    starts with "."), so a hidden copy of a decision is a decision without a ledger line like any other."""
    try:
        return sorted(reader.listdir("decisions"))
    except FileNotFoundError:
        return []


def judge_store(root: Path, reader: StoreReader, lines: list[bytes], result) -> Problem | None:
    """After a clean walk: completeness, then the kept evidence; fills ``result.demo_signed``."""
    result.demo_signed = Counter(f.get("key_id") for _, f in result.facts if f.get("key_kind") == "demo")
    for legacy in result.demo_keys & set(result.keys):  # a store from before the mark was signed: its side file still counts
        result.demo_signed[legacy] = max(result.demo_signed.get(legacy, 0), result.keys[legacy])
    if (root / OLD_DEMO_KEY_FILE).exists():
        result.notes.append(f"{OLD_DEMO_KEY_FILE}: a private key lies inside the store (an older demo): whoever can read "
                            "the store can sign as the gate; delete it and configure PROMOTION_GATE_SIGNING_KEY_PATH")
    try:
        folders = decision_folders(reader)
    except Refused as exc:
        return refusal_problem(exc)
    if not lines and folders:
        return Problem(Kind.removed, f"ledger.jsonl is empty but decisions/ holds {len(folders)} decisions "
                                     f"({', '.join(map(shown, folders[:SHOWN]))}{', ...' if len(folders) > SHOWN else ''})")
    orphans = sorted(set(folders) - set(result.seen))
    if orphans:
        names = ", ".join(f"decisions/{shown(n)}" for n in orphans[:SHOWN]) + (f" and {len(orphans) - SHOWN} more" if len(orphans) > SHOWN else "")
        return Problem(Kind.unrecorded, f"{names} {'has' if len(orphans) == 1 else 'have'} no ledger line "
                                        "(its line was cut, or a record was interrupted: re-run the gate to complete it)",
                       decision_id=orphans[0])
    required: dict[str, tuple] = {}  # audit_store/evidence_record.py: what each signed record says it kept
    for decision_id, facts in result.facts:
        if facts.get("evidence_unchecked"):
            result.evidence_unchecked += 1
            continue
        result.evidence_omitted += facts.get("omitted", 0)
        for sha, path in facts.get("kept", ()):
            result.evidence_required += 1
            required.setdefault(sha, (decision_id, facts["seq"], facts["line"], path))
    if result.evidence_unchecked:
        n = result.evidence_unchecked
        result.notes.append(f"evidence: {n} decision{' was' if n == 1 else 's were'} recorded before the signed record named the "
                            f"evidence it kept: {'its' if n == 1 else 'their'} evidence could not be checked for completeness "
                            "(only the kept files present were hashed)")
    problem, result.evidence_checked = check_evidence(reader, required, result.notes)
    return problem


def previous_of(ledger: Path, system: str) -> str | None:
    """The decision id of ``system``'s latest ledger line (what a new decision of it follows)."""
    try:
        data = ledger.read_bytes()
    except FileNotFoundError:
        return None
    needle = f'"system":"{system}"'.encode()
    at = data.rfind(needle)
    if at < 0:
        return None
    start = data.rfind(b"\n", 0, at) + 1
    found = _ID.search(data, start, data.find(b"\n", at) if data.find(b"\n", at) >= 0 else len(data))
    return found.group(1).decode() if found else None


def latest_by_system(ledger: Path) -> dict[str, str]:
    """Each system's latest decision id in the ledger (one pass; ``record_many``)."""
    out: dict[str, str] = {}
    try:
        fh = open(ledger, "rb")
    except FileNotFoundError:
        return out
    with fh:
        for line in fh:
            found_id, found_system = _ID.search(line), _SYSTEM.search(line)
            if found_id and found_system:
                out[found_system.group(1).decode()] = found_id.group(1).decode()
    return out


def ledger_states(root: Path) -> list[dict]:
    """Each system's state from the ledger alone (:func:`checklists.ledger.system_states`), as rows for the index."""
    from promotion_gate.checklists.ledger import parse_entry, system_states

    def readable(reader: StoreReader):  # streamed: 100,000 parsed entries at once cost 250 MB
        for line in reader.lines("ledger.jsonl"):
            try:
                yield parse_entry(line.rstrip(b"\n"))
            except ValueError:
                continue  # verify names the bad line; the state shows what the readable lines say

    try:
        with StoreReader(root) as reader:
            states = system_states(readable(reader))
    except (FileNotFoundError, Refused):
        return []
    return [{"system": s.system, "latest": s.latest, "verdict": s.verdict, "decided_at": s.decided_at.strftime("%Y-%m-%d %H:%M"),
             "superseded": s.superseded, "superseded_verdict": s.superseded_verdict, "decisions": s.decisions,
             "last_promoted": s.last_promoted} for s in states.values()]
