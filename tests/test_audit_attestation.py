"""The DSSE envelope and in-toto statement: verified by code that is not the project's.

Two independent verifiers: a minimal PAE written here from the DSSE spec, and securesystemslib's
``dsse.Envelope`` (the reference Python implementation used by in-toto and TUF).
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization

from promotion_gate.checklists.attestation import PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, key_id, pae
from promotion_gate.audit_store.store import AuditStore
from tests.audit_support import decision, every_kind, signing_key


def spec_pae(payload_type: str, body: bytes) -> bytes:
    """PAE(type, body) = "DSSEv1" + SP + LEN(type) + SP + type + SP + LEN(body) + SP + body (DSSE v1 protocol)."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1" + b" " + str(len(t)).encode() + b" " + t + b" " + str(len(body)).encode() + b" " + body


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    key = signing_key()
    store = AuditStore(tmp_path_factory.mktemp("attest") / "store", key)
    recorded = {kind: store.record(d) for kind, d in every_kind().items()}
    return store.root, key, recorded


def envelope_of(folder) -> dict:
    return json.loads((folder / "attestation.dsse.json").read_bytes())


def test_pae_matches_the_spec_test_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    for kind, body in (("application/vnd.in-toto+json", b""), ("t\u00e9st", "\u00e9\n".encode())):
        assert pae(kind, body) == spec_pae(kind, body)


def test_every_envelope_verifies_with_a_minimal_independent_pae(store) -> None:
    root, _, recorded = store
    for rec in recorded.values():
        env = envelope_of(rec.folder)
        assert env["payloadType"] == "application/vnd.in-toto+json"
        (sig,) = env["signatures"]
        public = serialization.load_pem_public_key((root / "keys" / f"{sig['keyid']}.pub.pem").read_bytes())
        public.verify(base64.b64decode(sig["sig"]), spec_pae(env["payloadType"], base64.b64decode(env["payload"])))
        assert rec.entry.signature == sig["sig"] and rec.entry.key_id == sig["keyid"]


def test_securesystemslib_verifies_every_envelope(store) -> None:
    from securesystemslib import dsse
    from securesystemslib.signer import SSlibKey

    root, key, recorded = store
    public = serialization.load_pem_public_key((root / "keys" / f"{key.key_id}.pub.pem").read_bytes())
    sslib_key = SSlibKey.from_crypto(public, keyid=key.key_id)
    for rec in recorded.values():
        envelope = dsse.Envelope.from_dict(envelope_of(rec.folder))
        assert envelope.payload_type == PAYLOAD_TYPE
        assert set(envelope.verify([sslib_key], 1)) == {key.key_id}


def test_securesystemslib_rejects_an_envelope_signed_by_another_key(store) -> None:
    from securesystemslib import dsse
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    root, key, recorded = store
    other = signing_key("other").private_key.public_key()
    envelope = dsse.Envelope.from_dict(envelope_of(recorded["promoted"].folder))
    with pytest.raises(VerificationError):
        envelope.verify([SSlibKey.from_crypto(other, keyid=key.key_id)], 1)


def test_the_statement_names_the_files_commit_and_manifest(store) -> None:
    root, key, recorded = store
    rec = recorded["blocked"]
    statement = json.loads(base64.b64decode(envelope_of(rec.folder)["payload"]))
    assert statement["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE
    subjects = {s["name"]: s["digest"] for s in statement["subject"]}
    for name in ("decision.json", "report.md", "report.html"):
        digest = hashlib.sha256((rec.folder / name).read_bytes()).hexdigest()
        assert subjects[f"decisions/{rec.entry.decision_id}/{name}"] == {"sha256": digest} == {"sha256": rec.entry.files[name]}
    d = json.loads((rec.folder / "decision.json").read_bytes())
    assert subjects[d["request"]["repository"]] == {"gitCommit": d["request"]["commit"]}
    assert subjects["ai-systems/support-assistant/promotion.yaml"] == {"sha256": d["checklist"]["manifest_sha256"]}
    pred = statement["predicate"]
    assert pred["verdict"] == "blocked" and pred["ledger"] == {"seq": rec.entry.seq, "prev": rec.entry.prev}
    assert {r["id"] for r in pred["checklist"] if r["outcome"] == "fail"} == {"PG-FALLBACK-001", "PG-FALLBACK-003"}
    assert pred["policy"]["sha256"] == d["checklist"]["policy_digest"]
    assert all(e["sha256"] for e in pred["evidence"])


def test_an_error_decision_without_a_checklist_has_no_manifest_subject(store) -> None:
    rec = store[2]["error_without_checklist"]
    statement = json.loads(base64.b64decode(envelope_of(rec.folder)["payload"]))
    assert not any(s["name"].endswith("promotion.yaml") for s in statement["subject"])
    assert statement["predicate"]["tier"] is None and statement["predicate"]["checklist"] == []


def test_key_id_is_the_sha256_of_the_der_public_key() -> None:
    key = signing_key()
    der = key.private_key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.key_id == key_id(key.private_key.public_key()) == hashlib.sha256(der).hexdigest()


def test_sign_offs_and_waivers_are_in_the_signed_predicate(tmp_path) -> None:
    rec = AuditStore(tmp_path, signing_key()).record(decision("waived"))
    pred = json.loads(base64.b64decode(envelope_of(rec.folder)["payload"]))["predicate"]
    assert {(s["identity"], s["role"]) for s in pred["signoffs"]} == {("sam", "security"), ("rene", "risk")}
    assert [r["identity"] for r in pred["refused"]] == ["dana"]
    (waived,) = [r for r in pred["checklist"] if r["waiver"]]
    assert waived["id"] == "PG-REVIEW-001" and waived["outcome"] == "waived" and waived["waiver"]["expires"]
