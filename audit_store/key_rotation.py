"""A key rotation is a ledger entry, signed by the old key, naming the new one.

``promotion-gate audit rotate-key STORE --new-key NEW.pub.pem`` records it with the key the gate
signs with now (the old one): a folder ``decisions/key-rotation-<seq>-<key16>/`` whose
``decision.json`` names the new key (id and PEM), with the same four files and the same signed
statement shape as a decision (verdict ``key-rotation``), so the chain, the digests and the
signature are checked like any entry. ``audit verify`` follows it: an auditor who pinned the
old key trusts the new one from the entry after the rotation on, and never before it; a rotation
signed by a key that is not trusted at that point is not followed.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from promotion_gate.audit_store.safe_read import Refused, StoreReader
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
    from promotion_gate.audit_store.store import Recorded, _sha256, _write

    new_key = parse_public_pem(new_public_pem)
    new_id, old = key_id(new_key), store.signing_key
    if new_id == old.key_id:
        raise ValueError("the new key is the key the gate signs with now")
    with store._locked():
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


def follow_rotations(lines: list[bytes], trusted: dict, reader: StoreReader) -> tuple[dict, dict[str, int]]:
    """(the trusted keys plus every key a trusted key handed over to, key id -> the seq of its rotation).

    Only the rotation entries are read here (their envelope); the walk then judges them like any
    entry, so an edited rotation is still named. A rotation by a key not trusted at that point is
    not followed."""
    keys, since = dict(trusted), {}
    for line in lines:
        if not _IS_ROTATION.search(line):
            continue
        try:
            entry = parse_entry(line)
            opened = open_envelope(reader.read(f"decisions/{entry.decision_id}/{ENVELOPE_FILE}"))
        except (ValueError, OSError, Refused):
            continue  # the walk names what is wrong with it
        signer = keys.get(entry.key_id)
        if signer is None or entry.key_id in since and since[entry.key_id] >= entry.seq:
            continue
        if not any(kid == entry.key_id and signature_holds(opened, signer, raw) for kid, raw, _ in opened.signatures):
            continue
        try:
            rotation = json.loads(opened.payload)["predicate"]["rotation"]
            new_key = parse_public_pem(rotation["newPublicKey"].encode())
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        new_id = key_id(new_key)
        if new_id == rotation.get("newKeyId") and new_id not in keys:
            keys[new_id], since[new_id] = new_key, entry.seq
    return keys, since


def judge_rotated(lines: list[bytes], since: dict[str, int]) -> Problem | None:
    """An entry signed by a rotated-in key at or before its rotation: that key was not trusted yet."""
    for kid, start in since.items():
        needle = f'"key_id":"{kid}"'.encode()
        for index, line in enumerate(lines[:start]):
            if needle in line:
                entry = parse_entry(line)
                return Problem(Kind.untrusted, f"signed with key {kid[:16]}... at seq {entry.seq}, before the rotation "
                                               f"(seq {start}) that made it trusted", line=index + 1, seq=entry.seq,
                               decision_id=entry.decision_id)
    return None


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
    print("now configure the new private key as the gate's signing key; auditors keep pinning the old key")
    return 0
