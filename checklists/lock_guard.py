"""The lock-file guard: was this ``production.lock.json`` written by the gate for a promoted decision? Pure.

The gate signs every lock it writes: the lock carries ``envelope``, a DSSE envelope whose payload
is the canonical JSON of the lock *without* the envelope (``lock_payload``), signed with the
gate's Ed25519 signing key. A lock passes only if all of these hold:

1. it parses as a lock (schema v1, nothing unknown; no key twice in one object, which parsers read
   differently, and no NaN or Infinity: ``candidate.parse_lock``) and sits in its own system's folder;
2. it carries an envelope of the lock payload type, signed by a pinned (trusted) key;
3. the signed payload is byte for byte the canonical form of the lock as it stands, so any field
   edited by hand (a metric, the model, the decision id) breaks it;
4. its decision id is in the ledger as a ``promoted`` decision of the same system at the same
   commit (``RecordedPromotion``, looked up by the shell: audit_store/lookup.py verifies that entry
   as ``audit verify`` does), and the lock's signer was trusted at that entry's place in the ledger
   (a key retired before the decision, or rotated in after it, signs no lock of it);
5. it is the lock its recorded decision implies (``decision.build_lock`` of the verified
   ``decision.json``), field by field: a key that signs locks (a leaked one, a retired one) cannot
   make a lock say another model, other evidence or other metrics than the decision judged.

A deleted lock fails (taking a system out of production is not a promotion: an administrator
merges it with a bypass, which GitHub records). A genuine lock of an earlier promotion passes: it
was promoted, and restoring it is a rollback that the ledger explains.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Callable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from promotion_gate.checklists.attestation import EnvelopeError, open_envelope, pae, signature_holds
from promotion_gate.checklists.candidate import LOCK_FILE, ProductionLock, parse_lock

LOCK_PAYLOAD_TYPE = "application/vnd.promotion-gate.lock+json"
LOCK_PATH_PREFIX = "ai-systems/"


@dataclass(frozen=True)
class RecordedPromotion:
    """What the ledger says about a decision id: its verdict, system and candidate commit."""

    verdict: str
    system: str
    commit: str | None
    repository: str | None = None  # the repository the decision was requested for (None: unknown, an older lookup)
    problem: str | None = None  # the ledger entry is there but does not verify (audit_store/lookup.py): why
    signers: frozenset[str] | None = None  # the keys trusted to sign at the entry's place (None: any trusted key)
    lock: ProductionLock | None = None  # the lock the recorded decision implies (decision.build_lock), which the lock must be
    lock_problem: str | None = None  # why no lock could be built from the recorded decision


@dataclass(frozen=True)
class LockFinding:
    path: str
    ok: bool
    reason: str
    decision_id: str | None = None
    deleted: bool = False


Lookup = Callable[[str], "RecordedPromotion | None"]


def lock_payload(lock: ProductionLock) -> bytes:
    """The bytes the gate signs: the lock without its envelope, keys sorted, no spaces."""
    body = lock.model_dump(mode="json", exclude={"envelope"})
    for evidence in body["evidence"]:  # added in 0.3.0: a lock written before them signed no such keys
        if evidence.get("role") is None:
            evidence.pop("role", None)
        if not evidence.get("max_regression"):
            evidence.pop("max_regression", None)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_signed_lock(lock: ProductionLock, private_key: Ed25519PrivateKey, keyid: str) -> bytes:
    """The lock file's text: the lock with a DSSE envelope over its payload."""
    payload = lock_payload(lock)
    signature = private_key.sign(pae(LOCK_PAYLOAD_TYPE, payload))
    envelope = {"payload": base64.b64encode(payload).decode(), "payloadType": LOCK_PAYLOAD_TYPE,
                "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}]}
    return lock.model_copy(update={"envelope": envelope}).model_dump_json(indent=2).encode() + b"\n"


def is_lock_path(path: str) -> bool:
    parts = path.split("/")
    return len(parts) == 3 and path.startswith(LOCK_PATH_PREFIX) and parts[2] == LOCK_FILE


def verify_lock(path: str, data: bytes | None, trusted: Mapping[str, Ed25519PublicKey], recorded: Lookup,
                repository: str | None = None) -> LockFinding:
    """One changed lock file (``data`` None: deleted) against the pinned keys and the ledger; with
    ``repository`` (the one guarded), the decision must have been made for it: a genuine lock of a
    promotion in another repository the gate serves (a sandbox, whose low tier needs no sign-off) is
    not a promotion here."""
    if data is None:
        return LockFinding(path, False, "the lock was deleted: removing a system from production is not a promotion",
                           deleted=True)
    try:
        lock = parse_lock(data, path)
    except ValueError as exc:
        return LockFinding(path, False, f"not a lock file: {exc}")
    return judge_lock(path, lock, trusted, recorded, repository)


def judge_lock(path: str, lock: ProductionLock, trusted: Mapping[str, Ed25519PublicKey], recorded: Lookup,
               repository: str | None = None) -> LockFinding:
    """A parsed lock at ``path``: the checks of :func:`verify_lock` after parsing (re-certification
    judges the locks production runs with it)."""
    folder = path.split("/")[1] if path.count("/") == 2 else None
    if folder != lock.system:
        return LockFinding(path, False, f"the lock is for system {lock.system!r}, not for the folder it sits in", lock.decision_id)
    problem, signed_by = _signature_problem(lock, trusted)
    if problem:
        return LockFinding(path, False, problem, lock.decision_id)
    record = recorded(lock.decision_id)
    if record is None:
        return LockFinding(path, False, f"decision {lock.decision_id} is not in the ledger", lock.decision_id)
    if record.problem:
        return LockFinding(path, False, f"decision {lock.decision_id}: its ledger entry does not verify ({record.problem})",
                           lock.decision_id)
    if record.signers is not None and not signed_by & record.signers:
        return LockFinding(path, False, f"the lock is signed by key {min(signed_by)[:16]}..., which was not trusted when decision "
                           f"{lock.decision_id} was recorded (retired before it, or rotated in after it)", lock.decision_id)
    if record.verdict != "promoted":
        return LockFinding(path, False, f"decision {lock.decision_id} was {record.verdict}, not promoted", lock.decision_id)
    if repository is not None and record.repository is not None and record.repository.lower() != repository.lower():
        return LockFinding(path, False, f"decision {lock.decision_id} promoted {record.system} in repository {record.repository}, "
                           f"not in {repository}", lock.decision_id)
    if repository is not None and record.repository is None:
        return LockFinding(path, False, f"decision {lock.decision_id}: the repository it was made for cannot be read "
                           "from the store", lock.decision_id)
    if record.system != lock.system or (record.commit is not None and record.commit != lock.source_commit):
        return LockFinding(path, False, f"decision {lock.decision_id} promoted {record.system} at "
                           f"{(record.commit or '?')[:7]}, not this lock's {lock.system} at {lock.source_commit[:7]}",
                           lock.decision_id)
    if record.lock_problem:
        return LockFinding(path, False, f"decision {lock.decision_id}: {record.lock_problem}", lock.decision_id)
    if record.lock is not None and (field := lock_difference(lock, record.lock)):
        return LockFinding(path, False, f"the lock's {field} is not what decision {lock.decision_id} recorded: the lock must be the "
                           "one its decision implies (a key that signs locks is not enough to write one)", lock.decision_id)
    return LockFinding(path, True, f"written by the gate for promoted decision {lock.decision_id}", lock.decision_id)


def lock_difference(lock: ProductionLock, expected: ProductionLock) -> str | None:
    """The first field in which ``lock`` is not ``expected`` (the lock its recorded decision implies:
    for a decision recorded before 0.3.0, without roles and tolerances, as such a lock was written),
    or None; compared as the gate signs them (``lock_payload``)."""
    got, want = json.loads(lock_payload(lock)), json.loads(lock_payload(expected))
    return next((key for key in sorted(set(got) | set(want)) if got.get(key) != want.get(key)), None)


def _signature_problem(lock: ProductionLock, trusted: Mapping[str, Ed25519PublicKey]) -> tuple[str | None, frozenset[str]]:
    """(why the lock's signature does not count, or None; the trusted keys whose signature on it holds)."""
    if lock.envelope is None:
        return "the lock carries no signature: it was not written by the gate", frozenset()
    try:
        envelope = open_envelope(json.dumps(lock.envelope).encode())
    except EnvelopeError as exc:
        return f"the lock's signature is unreadable: {exc}", frozenset()
    if envelope.payload_type != LOCK_PAYLOAD_TYPE:
        return f"the lock's envelope is of type {envelope.payload_type!r}, not a lock", frozenset()
    holds = frozenset(kid for kid, raw, _ in envelope.signatures if kid in trusted and signature_holds(envelope, trusted[kid], raw))
    if not holds:
        return "the lock's signature does not verify with the gate's pinned key", holds
    if envelope.payload != lock_payload(lock):
        return "the lock was edited after the gate signed it (its content differs from the signed content)", holds
    return None, holds


def summarize(findings: list[LockFinding]) -> tuple[bool, str]:
    """(passes, one line): every changed lock must pass; no lock changed passes."""
    if not findings:
        return True, "no production.lock.json changed"
    bad = [f for f in findings if not f.ok]
    if not bad:
        return True, f"{len(findings)} lock file(s) written by the gate for promoted decisions"
    return False, f"{len(bad)} of {len(findings)} lock file(s) not written by the gate for a promoted decision"
