"""A key rotation is a ledger entry, signed by the old key, naming the new one.

``promotion-gate audit rotate-key STORE --new-key NEW.pub.pem`` records it with the key the gate
signs with now (the old one): a folder ``decisions/key-rotation-<seq>-<key16>/`` whose
``decision.json`` names the new key (id and PEM), with the same four files and the same signed
statement shape as a decision (verdict ``key-rotation``), so the chain, the digests and the
signature are checked like any entry. ``audit verify`` follows it: an auditor who pinned the
old key trusts the new one from the entry after the rotation on, and never before it; a rotation
signed by a key that is not trusted at that point is not followed. The rotation also **retires**
the old key: any entry it signs after its hand-over (a decision, or a second rotation to a key of
its holder's choosing) is an ``untrusted`` finding, and a retired key is never trusted again. The
store refuses to sign with a retired key (``refuse_retired``), so a gate still configured with it
fails its record instead of writing an entry that verify rejects.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from promotion_gate.audit_store.safe_read import Refused, StoreReader
from promotion_gate.checklists import store_json
from promotion_gate.checklists.attestation import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    encode_envelope,
    encode_statement,
    key_id,
    open_envelope,
    parse_public_pem,
    public_pem,
    sign_envelope,
    signature_holds,
    subject_name,
)
from promotion_gate.checklists.ledger import ENVELOPE_FILE, GENESIS, Kind, Problem, encode_entry, line_hash, next_entry, parse_entry
from promotion_gate.checklists.trust import mark_of

ROTATION = "key-rotation"
ROTATION_SYSTEM = "key-rotation"
_IS_ROTATION = re.compile(rb'"verdict":"key-rotation"')


def record_rotation(store, new_public_pem: bytes, at: datetime):
    """Append a key-rotation entry signed by ``store.signing_key`` (the old key); the Recorded entry."""
    from promotion_gate.audit_store.signing_keys import publish_public_key
    from promotion_gate.audit_store.store import Recorded, _sha256, _write, clear_temporaries

    new_key = parse_public_pem(new_public_pem)
    new_id, old = key_id(new_key), store.signing_key
    if new_id == old.key_id:
        raise ValueError("the new key is the key the gate signs with now")
    with store._locked():
        refuse_retired(store, old.key_id)  # a key that handed over hands over nothing more
        handed_back = retired_at(store.ledger_path, new_id)
        if handed_back is not None:
            raise ValueError(f"the new key {new_id[:16]}... was retired at seq {handed_back[0]}: a retired key is never "
                             "trusted again; make a new key")
        publish_public_key(store.root, old)
        tail = store._tail()
        seq = 1 if tail is None else parse_entry(tail).seq + 1
        prev = GENESIS if tail is None else line_hash(tail)
        did = f"{ROTATION}-{seq}-{new_id[:16]}"
        body = {"kind": ROTATION, "decision_id": did, "decided_at": at.isoformat(), "old_key_id": old.key_id,
                "new_key_id": new_id, "new_public_key": public_pem(new_key).decode()}
        text = f"Key rotation at ledger entry {seq}: key {old.key_id} hands over to key {new_id}.\n"
        files = {"decision.json": (json.dumps(body, indent=2, sort_keys=True) + "\n").encode(), "report.md": text.encode(),
                 "report.html": f"<!doctype html><meta charset=utf-8><title>key rotation</title><p>{text}</p>\n".encode()}
        digests = {name: _sha256(data) for name, data in files.items()}
        statement = {"_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE,
                     "subject": [{"name": subject_name(did, f), "digest": {"sha256": digests[f]}} for f in files],
                     "predicate": {"decisionId": did, "verdict": ROTATION, "system": ROTATION_SYSTEM, "decidedAt": at.isoformat(),
                                   "ledger": {"seq": seq, "prev": prev}, "follows": store_previous(store),
                                   "signingKey": {"kind": mark_of(old.demo, old.key_id).kind, "keyId": old.key_id},
                                   "rotation": {"newKeyId": new_id, "newPublicKey": body["new_public_key"]}}}
        envelope = sign_envelope(encode_statement(statement), old.private_key, old.key_id)
        files[ENVELOPE_FILE] = encode_envelope(envelope)
        digests[ENVELOPE_FILE] = _sha256(files[ENVELOPE_FILE])
        folder = store.decision_dir(did)
        folder.mkdir(parents=True, exist_ok=True)
        clear_temporaries(folder)
        for name, data in files.items():
            _write(folder / name, data, store.durable)
        entry = next_entry(tail, decision_id=did, system=ROTATION_SYSTEM, verdict=ROTATION, decided_at=at,
                           decision_sha256=digests["decision.json"], files=digests, signature=envelope["signatures"][0]["sig"],
                           key_id=old.key_id, follows=store_previous(store))
        line = encode_entry(entry)
        store._append(line, True, folder)
        return Recorded(entry, folder, line_hash(line))


def store_previous(store) -> str | None:
    from promotion_gate.audit_store.findings import previous_of

    return previous_of(store.ledger_path, ROTATION_SYSTEM)


@dataclass
class Rotations:
    """What the rotations in a ledger say, followed from the pinned keys (ledger positions are 1-based lines)."""

    keys: dict  # the pinned keys plus every key a trusted, unretired key handed over to
    since: dict[str, int] = field(default_factory=dict)  # a rotated-in key -> the line of the rotation that made it trusted
    retired: dict[str, tuple[int, str]] = field(default_factory=dict)  # a key that handed over -> (that line, the new key)


def follow_rotations(lines: list[bytes], trusted: dict, reader: StoreReader) -> Rotations:
    """Every rotation a trusted key signed, in ledger order: the new key is trusted after it, the old one retired.

    Only the rotation entries are read here (their envelope); the walk then judges them like any
    entry, so an edited rotation is still named. A rotation is not followed when its signer is not
    trusted at that point: not pinned nor handed over to, handed over to only later, or retired by an
    earlier rotation of its own (a retired key hands over nothing: :func:`judge_rotated` names it).
    A retired key is never trusted again, even when a later rotation names it."""
    found = Rotations(dict(trusted))
    for index, line in enumerate(lines):
        if not _IS_ROTATION.search(line):
            continue
        position = index + 1
        try:
            entry = parse_entry(line)
            opened = open_envelope(reader.read(f"decisions/{entry.decision_id}/{ENVELOPE_FILE}"))
        except (ValueError, OSError, Refused):
            continue  # the walk names what is wrong with it
        signer = found.keys.get(entry.key_id)
        if signer is None or found.since.get(entry.key_id, 0) >= position or entry.key_id in found.retired:
            continue
        if not any(kid == entry.key_id and signature_holds(opened, signer, raw) for kid, raw, _ in opened.signatures):
            continue
        try:
            rotation = store_json.loads(opened.payload)["predicate"]["rotation"]
            new_key = parse_public_pem(rotation["newPublicKey"].encode())
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        new_id = key_id(new_key)
        if new_id != rotation.get("newKeyId") or new_id == entry.key_id:
            continue
        found.retired[entry.key_id] = (position, new_id)
        if new_id not in found.keys:
            found.keys[new_id], found.since[new_id] = new_key, position
    return found


_KEY_ID = re.compile(rb'"key_id":"([0-9a-f]{64})"')


def key_of(line: bytes) -> str | None:
    found = _KEY_ID.search(line)
    return found.group(1).decode() if found else None


def judge_rotated(lines: list[bytes], rotations: Rotations) -> Problem | None:
    """The first entry, in ledger order, signed by a key that was not trusted for it: a rotated-in key at or
    before its rotation, or a key after the rotation that retired it (a decision, or a second hand-over)."""
    if not rotations.since and not rotations.retired:
        return None
    for index, line in enumerate(lines):
        found = _KEY_ID.search(line)
        if found is None:
            continue  # the walk names a line that is not an entry
        kid, position = found.group(1).decode(), index + 1
        detail = untrusted_at(rotations, kid, position)
        if detail is None:
            continue
        try:
            entry = parse_entry(line)
        except ValueError:
            continue
        return Problem(Kind.untrusted, detail, line=position, seq=entry.seq, decision_id=entry.decision_id)
    return None


def untrusted_at(rotations: Rotations, kid: str, position: int) -> str | None:
    """Why key ``kid`` was not trusted to sign the entry at ledger line ``position``, or None when it was
    (as far as the rotations go: whether ``kid`` is trusted at all is the signature check's)."""
    start, retired = rotations.since.get(kid), rotations.retired.get(kid)
    if start is not None and position <= start:
        return f"signed with key {kid[:16]}... at seq {position}, before the rotation (seq {start}) that made it trusted"
    if retired is not None and position > retired[0]:
        return (f"signed by key {kid[:16]}..., which was retired at seq {retired[0]} (it handed over to key "
                f"{retired[1][:16]}... there): a retired key signs nothing after its hand-over, not a decision, "
                "not another rotation")
    return None


def retired_at(ledger: Path, kid: str) -> tuple[int, str] | None:
    """(the seq, the new key) of the rotation by which ``kid`` handed over in this ledger, or None.

    Read from the raw lines under the store's lock, before signing anything: a key that handed over
    signs nothing more (verify would name it ``untrusted``)."""
    try:
        data = ledger.read_bytes()
    except FileNotFoundError:
        return None
    needle = f'"key_id":"{kid}"'.encode()
    for found in _IS_ROTATION.finditer(data):  # rotations are rare: look at their lines only
        start, end = data.rfind(b"\n", 0, found.start()) + 1, data.find(b"\n", found.end())
        line = data[start:end if end >= 0 else len(data)]
        if needle in line:
            try:
                entry = parse_entry(line)
            except ValueError:
                continue
            return entry.seq, entry.decision_id.rsplit("-", 1)[-1]
    return None


def refuse_retired(store, kid: str) -> None:
    """LedgerError when ``kid`` handed over already in ``store``'s ledger (call under the store's lock)."""
    from promotion_gate.audit_store.store import LedgerError

    retired = retired_at(store.ledger_path, kid)
    if retired is not None:
        raise LedgerError(f"the signing key {kid[:16]}... was retired at seq {retired[0]} (it handed over to key "
                          f"{retired[1]}...): configure the new key as the gate's signing key")


def run_rotate_key(store: str, new_key: str) -> int:
    """`promotion-gate audit rotate-key STORE --new-key NEW.pub.pem`: exit 0, or 2 with the reason."""
    import sys
    from datetime import timezone
    from pathlib import Path

    from promotion_gate.audit_store.signing_keys import SigningKeyError
    from promotion_gate.audit_store.store import AuditStore, LedgerError

    try:
        data = Path(new_key).read_bytes()[: 64 * 1024]
        rec = record_rotation(AuditStore(store), data, datetime.now(timezone.utc))
    except (OSError, ValueError, SigningKeyError, LedgerError) as exc:
        print(f"error: audit rotate-key: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return 2
    print(f"recorded {rec.entry.decision_id} at seq {rec.entry.seq}, signed by {rec.entry.key_id}; head {rec.head}")
    print(f"the old key is retired: it signs nothing after seq {rec.entry.seq} (verify names any such entry untrusted, and the "
          "gate refuses to sign with it); configure the new private key as the gate's signing key now. Auditors keep pinning "
          "the key they hold: verify trusts the new key from the entry after this one on")
    return 0
