"""One decision's ledger entry, judged as ``audit verify`` judges it: for the lock guard and the deployment rule.

The guard passes a lock only for a decision the ledger records as promoted. Whoever can write the
store could append a line of their own (signed with a key they publish in ``keys/``), edit a line,
put a line with the same decision id before the genuine one, or swap a decision's files. So the
entry is judged like any entry of the walk (:func:`checklists.ledger.judge_entry`): signed by a key
pinned outside the store, or by one a pinned key handed over to in a signed rotation, and trusted at
its place (not before its rotation, not after its own hand-over); linked to the line before it; every
file's digest as signed. The commit, the repository and the lock the decision implies
(``decision.build_lock``, which the lock must equal) come from the ``decision.json`` whose digest it
signs. The whole chain stays ``audit verify``'s: this judges one entry and its neighbour.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from promotion_gate.audit_store.key_rotation import Rotations, follow_rotations, untrusted_at
from promotion_gate.audit_store.safe_read import Refused, StoreReader
from promotion_gate.audit_store.walk import DECISION_FILE, entry_files, read_ledger, refusal_problem, systems_before
from promotion_gate.checklists.decision import Decision, Verdict, build_lock
from promotion_gate.checklists.ledger import GENESIS, judge_entry, line_hash, parse_entry
from promotion_gate.checklists.lock_guard import RecordedPromotion

LEDGER = "ledger.jsonl"


@dataclass(frozen=True)
class TrustedLedger:
    """The ledger's lines as read once for one guard run, and the keys the pins lead to."""

    root: Path
    lines: list[bytes]
    rotations: Rotations
    problem: str | None = None  # the ledger itself could not be read (a symlink, an over-long line)

    @property
    def keys(self) -> dict:
        """The pinned keys and every key they handed over to: the keys a lock may be signed with."""
        return self.rotations.keys

    def recorded(self, decision_id: str) -> RecordedPromotion | None:
        """What the verified entry of ``decision_id`` says; None when the ledger has no such entry; its
        ``problem`` set when the entry is there but does not verify."""
        index = self._index_of(decision_id)
        if index is None:
            return None if self.problem is None else _failed(self.problem)
        line = self.lines[index]
        entry = parse_entry(line)
        try:
            with StoreReader(self.root) as reader:
                decisions = reader.folder("decisions")
                try:
                    kept: dict[str, bytes] = {}
                    digests, envelope = entry_files(decisions, decision_id, reader.limits, kept)
                finally:
                    os.close(decisions)
        except FileNotFoundError:
            return _failed("the store has no decisions/ folder")
        except Refused as exc:
            return _failed(refusal_problem(exc).detail)
        prev = GENESIS if index == 0 else line_hash(self.lines[index - 1])
        before = systems_before(self.lines, [index])[0].get(entry.system)
        problem = judge_entry(self.lines, index, entry, prev, digests, envelope, self.keys, system_previous=before)
        if problem is not None:
            return _failed(f"{problem.kind.value}: {problem.detail}")
        untrusted = untrusted_at(self.rotations, entry.key_id, index + 1)
        if untrusted:
            return _failed(f"untrusted: {untrusted}")
        signers = frozenset(kid for kid in self.keys if untrusted_at(self.rotations, kid, index + 1) is None)
        try:
            decision = Decision.model_validate_json(kept[DECISION_FILE])
        except ValueError as exc:
            return RecordedPromotion(entry.verdict, entry.system, "unreadable decision.json", None, signers=signers,
                                     lock_problem=f"its decision.json cannot be read by this release ({_first_error(exc)})")
        lock = lock_problem = None
        if decision.verdict == Verdict.promoted:
            try:
                lock = build_lock(decision)
            except ValueError as exc:
                lock_problem = f"no lock can be built from its recorded decision ({exc})"
        if lock is not None and _before_roles(decision.gate_version):  # its lock was written without them
            lock = lock.model_copy(update={"evidence": [e.model_copy(update={"role": None, "max_regression": {}}) for e in lock.evidence]})
        return RecordedPromotion(entry.verdict, entry.system, decision.request.commit, decision.request.repository,
                                 signers=signers, lock=lock, lock_problem=lock_problem)

    def _index_of(self, decision_id: str) -> int | None:
        """The first line whose entry is ``decision_id`` (parsed, not matched as text); a later line with
        the same id is the walk's to name."""
        needle = f'"decision_id":"{decision_id}"'.encode()
        for index, line in enumerate(self.lines):
            if needle in line:
                try:
                    if parse_entry(line).decision_id == decision_id:
                        return index
                except ValueError:
                    continue
        return None


def _before_roles(version: str | None) -> bool:
    """Whether a decision was recorded by a release before 0.3.0, whose locks carry no evidence roles
    or tolerances (a decision that names no release is older still)."""
    found = re.match(r"(\d+)\.(\d+)", version or "")
    return found is None or (int(found.group(1)), int(found.group(2))) < (0, 3)


def _first_error(exc: ValueError) -> str:
    lines = str(exc).splitlines()
    return " ".join(lines[1:3]).strip()[:200] if len(lines) > 1 else str(exc)[:200]


def _failed(problem: str) -> RecordedPromotion:
    return RecordedPromotion("unverified", "?", None, None, problem=problem)


def read_trusted(root: str | Path, pinned: dict) -> TrustedLedger:
    """The ledger under ``root`` read once, its rotations followed from the ``pinned`` keys."""
    root = Path(root)
    try:
        with StoreReader(root) as reader:
            try:
                ledger = read_ledger(reader, LEDGER)
            except FileNotFoundError:
                return TrustedLedger(root, [], Rotations(dict(pinned)))
            rotations = follow_rotations(ledger.lines, pinned, reader)
    except FileNotFoundError:
        return TrustedLedger(root, [], Rotations(dict(pinned)))
    except Refused as exc:
        return TrustedLedger(root, [], Rotations(dict(pinned)), problem=refusal_problem(exc).detail)
    problem = ledger.problem.detail if ledger.problem else None
    return TrustedLedger(root, ledger.lines, rotations, problem)
