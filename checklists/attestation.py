"""A decision as an in-toto Statement v1 in a DSSE envelope, signed with Ed25519.

Pure computation: the statement is built from the decision and the digests of its files, the
envelope signs the DSSE pre-authentication encoding (PAE) of the statement's bytes. The key is an
object handed in by the shell (``audit_store/signing_keys.py`` loads it); nothing here reads a file.

Standard tooling verifies the envelope: ``payloadType`` is ``application/vnd.in-toto+json``, the
signature is over ``PAE(payloadType, payload)`` exactly as the DSSE v1 spec defines it, and the
key id is the SHA-256 of the public key's DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from promotion_gate.checklists import store_json
from promotion_gate.checklists.decision import Decision

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://promotion-gate.dev/attestation/promotion-decision/v1"
SUBJECT_FILES = ("decision.json", "report.md", "report.html")
"""The decision's files named as subjects of its statement (the envelope cannot name itself)."""


class EnvelopeError(ValueError):
    """The bytes are not a usable DSSE envelope."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def key_id(public_key: Ed25519PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def parse_public_pem(data: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def subject_name(decision_id: str, file: str) -> str:
    return f"decisions/{decision_id}/{file}"


def build_statement(decision: Decision, file_digests: dict[str, str], seq: int, prev: str) -> dict[str, Any]:
    """The in-toto Statement of one decision; ``file_digests`` holds the SHA-256 of each subject file.

    Subjects: the decision's files, the candidate commit (``gitCommit``) and the manifest. The
    predicate repeats what an auditor asks first, and binds the entry's place in the ledger
    (``seq`` and ``prev``), so a line cannot be moved without re-signing it.
    """
    did, req, cl = decision.decision_id, decision.request, decision.checklist
    subject = [{"name": subject_name(did, f), "digest": {"sha256": file_digests[f]}} for f in SUBJECT_FILES]
    subject.append({"name": req.repository, "digest": {"gitCommit": req.commit}})
    if cl is not None and cl.manifest_sha256:
        subject.append({"name": f"ai-systems/{req.system}/promotion.yaml", "digest": {"sha256": cl.manifest_sha256}})
    predicate = {
        "decisionId": did, "decisionSchemaVersion": decision.schema_version,
        "verdict": decision.verdict.value, "reasons": list(decision.reasons),
        "system": req.system, "repository": req.repository, "commit": req.commit,
        "pullRequest": req.pull_request, "requester": req.requester,
        "requestedAt": req.requested_at.isoformat(), "decidedAt": decision.decided_at.isoformat(),
        "owner": cl.owner if cl else None, "tier": cl.tier.value if cl else None,
        "policy": {"version": cl.policy_version, "sha256": cl.policy_digest} if cl else None,
        "approvedDigest": cl.digest if cl else None,
        "checklist": [_result(r) for r in cl.results] if cl else [],
        "evidence": [{"path": e.path, "format": e.format, "sha256": e.sha256,
                      "metrics": {k: m.value for k, m in e.parsed.metrics.items()} if e.parsed else {}}
                     for e in cl.evidence] if cl else [],
        "signoffs": [{"identity": s.identity, "role": s.role, "action": s.action.value,
                      "at": s.at.isoformat(), "digest": s.digest, "channel": s.channel,
                      "authentication": s.authentication} for s in decision.signoffs],
        "refused": [{"identity": c.identity, "action": c.action.value, "at": c.at.isoformat(), "reason": c.reason}
                    for c in decision.refused],
        "ledger": {"seq": seq, "prev": prev},
        "follows": decision.follows,
        "signingKey": {"kind": decision.signing_key.kind, "keyId": decision.signing_key.key_id} if decision.signing_key else None,
        "gateVersion": decision.gate_version,
    }
    return {"_type": STATEMENT_TYPE, "subject": subject, "predicateType": PREDICATE_TYPE, "predicate": predicate}


def _result(r) -> dict[str, Any]:
    waiver = None
    if r.waiver is not None:
        waiver = {"approver": r.waiver.approver, "expires": r.waiver.expires.isoformat(), "waived": r.waiver.waived_outcome.value}
    return {"id": r.id, "outcome": r.outcome.value, "controls": list(r.controls), "waiver": waiver}


def encode_statement(statement: dict[str, Any]) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_envelope(payload: bytes, private_key: Ed25519PrivateKey, keyid: str) -> dict[str, Any]:
    """A DSSE envelope (JSON form) holding ``payload``, signed once."""
    signature = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}],
    }


def encode_envelope(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, indent=2, sort_keys=True).encode() + b"\n"


@dataclass(frozen=True)
class OpenedEnvelope:
    payload_type: str
    payload: bytes
    signatures: list[tuple[str, bytes, str]]
    """(keyid, raw signature, the signature as written in base64)"""


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise EnvelopeError("a base64 field is not a string")
    try:  # DSSE accepts standard or URL-safe base64, padded or not
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("a base64 field does not decode") from None


def open_envelope(data: bytes) -> OpenedEnvelope:
    try:
        body = store_json.loads(data)
    except store_json.NotJSON as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    except ValueError:
        raise EnvelopeError("not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("signatures"), list) or not isinstance(body.get("payloadType"), str):
        raise EnvelopeError("not a DSSE envelope (payload, payloadType, signatures)")
    signatures: list[tuple[str, bytes, str]] = []
    for sig in body["signatures"]:
        if not isinstance(sig, dict):
            raise EnvelopeError("a signature is not an object")
        signatures.append((str(sig.get("keyid", "")), _b64(sig.get("sig")), sig["sig"]))  # _b64 raised unless "sig" is a string
    return OpenedEnvelope(body["payloadType"], _b64(body.get("payload")), signatures)


def signature_holds(envelope: OpenedEnvelope, public_key: Ed25519PublicKey, signature: bytes) -> bool:
    try:
        public_key.verify(signature, pae(envelope.payload_type, envelope.payload))
    except InvalidSignature:
        return False
    return True
