"""The audit store: what record writes and returns, idempotency, keys (file, environment, Secret block, demo)."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from promotion_gate.checklists.ledger import GENESIS, line_hash
from promotion_gate.audit_store.store import AuditStore, Recorded
from promotion_gate.audit_store.signing_keys import SigningKeyError, load_signing_key, signing_key_from_settings
from tests.audit_support import decision, every_kind, signing_key, write_key_pem


def test_record_writes_four_files_one_line_and_returns_the_new_head(tmp_path) -> None:
    key = signing_key()
    store = AuditStore(tmp_path, key)
    assert store.head() == GENESIS
    rec = store.record(decision("blocked"))
    assert isinstance(rec, Recorded)
    assert sorted(p.name for p in rec.folder.iterdir()) == ["attestation.dsse.json", "decision.json", "report.html", "report.md"]
    (line,) = store.lines()
    assert rec.head == line_hash(line) == store.head()
    assert rec.entry.seq == 1 and rec.entry.prev == GENESIS and rec.entry.key_id == key.key_id
    assert (tmp_path / "keys" / f"{key.key_id}.pub.pem").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    entry, folder = rec  # the flow unpacks it as before
    assert (entry, folder) == (rec.entry, rec.folder)


def test_reports_name_their_ledger_place_and_key(tmp_path) -> None:
    key = signing_key()
    store = AuditStore(tmp_path, key)
    first = store.record(decision("blocked"))
    second = store.record(decision("promoted"))
    md = (second.folder / "report.md").read_text()
    assert f"entry 2, after head {first.head}" in md and key.key_id[:16] in md
    assert first.head in (second.folder / "report.html").read_text()


def test_each_record_names_the_release_that_recorded_it_inside_what_is_signed(tmp_path) -> None:
    """An auditor asks which code judged a decision: the release is stamped when recorded (a
    caller's own claim is not kept), signed with the rest, shown in both reports; changed after the
    fact, verify names the decision."""
    from promotion_gate import __version__

    store = AuditStore(tmp_path, signing_key())
    rec = store.record(decision("blocked").model_copy(update={"gate_version": "9.9.9"}))
    assert json.loads((rec.folder / "decision.json").read_text())["gate_version"] == __version__
    pred = json.loads(base64.b64decode(json.loads((rec.folder / "attestation.dsse.json").read_bytes())["payload"]))["predicate"]
    assert pred["gateVersion"] == __version__
    for name in ("report.md", "report.html"):
        assert f"promotion-gate {__version__}" in (rec.folder / name).read_text(), name
    assert store.verify().ok
    path = rec.folder / "decision.json"
    path.write_text(path.read_text().replace(f'"gate_version": "{__version__}"', '"gate_version": "0.1.0"'))
    assert '"gate_version": "0.1.0"' in path.read_text()
    found = store.verify()
    assert not found.ok and rec.entry.decision_id in str(found.problem) and "decision.json" in str(found.problem)


def test_recording_the_same_decision_twice_is_one_entry(tmp_path) -> None:
    store = AuditStore(tmp_path, signing_key())
    d = decision("promoted")
    first = store.record(d)
    again = store.record(d)
    assert again.entry == first.entry and again.head == first.head and len(store.lines()) == 1
    assert store.find(d.decision_id) == first.entry and store.find("nope-0000000-0000000000") is None


def test_an_interrupted_record_is_completed_by_the_retry(tmp_path) -> None:
    store = AuditStore(tmp_path, signing_key())
    d = decision("blocked")
    store.record(d)
    store.ledger_path.write_bytes(b"")  # the crash came before the line was appended
    rec = store.record(d)
    assert rec.entry.seq == 1 and store.verify().ok


def test_record_many_gives_the_same_chain_as_record(tmp_path) -> None:
    key = signing_key()
    ds = list(every_kind().values())
    one, many = AuditStore(tmp_path / "a", key), AuditStore(tmp_path / "b", key, durable=False)
    for d in ds:
        one.record(d)
    many.record_many(ds)
    assert one.lines() == many.lines() and many.verify().ok


def test_every_decision_json_validates_against_its_model(tmp_path) -> None:
    from promotion_gate.checklists.decision import Decision

    store = AuditStore(tmp_path, signing_key())
    for d in every_kind().values():
        rec = store.record(d)
        stored = Decision.model_validate_json((rec.folder / "decision.json").read_bytes())
        assert stored.model_copy(update={"follows": None, "signing_key": None, "gate_version": None}) == d  # the store adds only these three
        assert stored.signing_key.kind == "configured" and stored.follows == rec.entry.follows


def test_the_key_comes_from_a_pem_file_or_the_environment(tmp_path, monkeypatch) -> None:
    key = signing_key()
    pem = write_key_pem(tmp_path / "signing.pem", key)
    monkeypatch.setenv("PROMOTION_GATE_SIGNING_KEY_PATH", str(pem))
    assert signing_key_from_settings(tmp_path / "store").key_id == key.key_id
    monkeypatch.delenv("PROMOTION_GATE_SIGNING_KEY_PATH")
    monkeypatch.setenv("PROMOTION_GATE_SIGNING_KEY", pem.read_text())
    loaded = signing_key_from_settings(tmp_path / "store")
    assert loaded.key_id == key.key_id and not loaded.demo
    assert pem.read_text().splitlines()[1] not in repr(loaded)
    assert not (tmp_path / "store").exists()


def test_a_bad_key_file_names_the_setting_and_never_the_content(tmp_path) -> None:
    secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRETTOPSECRETTOPSECRET\n-----END PRIVATE KEY-----\n"
    (tmp_path / "bad.pem").write_text(secret)
    with pytest.raises(SigningKeyError) as err:
        load_signing_key(tmp_path, key_path=str(tmp_path / "bad.pem"))
    assert "PROMOTION_GATE_SIGNING_KEY_PATH" in str(err.value) and "TOPSECRET" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_signing_key(tmp_path, key_path=str(tmp_path / "absent.pem"))


def test_an_rsa_key_is_refused(tmp_path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_signing_key(tmp_path, key_pem=pem.decode())


def test_without_a_configured_key_a_demo_key_is_made_once_outside_the_store_and_marked_in_the_statement(tmp_path, monkeypatch) -> None:
    for name in ("PROMOTION_GATE_SIGNING_KEY_PATH", "PROMOTION_GATE_SIGNING_KEY", "PROMOTION_GATE_SIGNING_KEY_BLOCK",
                 "PROMOTION_GATE_DEMO_KEY_DIR"):
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "store"
    store = AuditStore(root)
    rec = store.record(decision("blocked"))
    key_file = tmp_path / "demo-keys" / "demo-signing-key.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert not list(root.rglob("*signing-key*")), "the demo key's private half must not live in the store"
    demo_pub = (tmp_path / "demo-keys" / "demo-signing-key.pub.pem").read_bytes()
    assert demo_pub.startswith(b"promotion-gate DEMO key: what it signs is not evidence\n")  # says so to whoever pins it
    assert demo_pub.endswith((root / "keys" / f"{rec.entry.key_id}.pub.pem").read_bytes())
    assert AuditStore(root).signing_key.key_id == rec.entry.key_id  # reused, not regenerated
    pred = json.loads(base64.b64decode(json.loads((rec.folder / "attestation.dsse.json").read_bytes())["payload"]))["predicate"]
    assert pred["signingKey"] == {"kind": "demo", "keyId": rec.entry.key_id}
    for name in ("report.md", "report.html", "decision.json"):
        assert "signed with a DEMO key: not evidence" in (rec.folder / name).read_text(), name
    v = store.verify()
    assert v.ok and v.demo_signed == {rec.entry.key_id: 1} and not v.trusted


def test_a_demo_key_folder_inside_the_store_is_refused(tmp_path) -> None:
    with pytest.raises(SigningKeyError, match="PROMOTION_GATE_DEMO_KEY_DIR: .* inside the audit store"):
        load_signing_key(tmp_path / "store", demo_dir=tmp_path / "store" / "keys")


def test_the_key_comes_from_a_prefect_secret_block(tmp_path, prefect_harness) -> None:
    from prefect.blocks.system import Secret

    key = signing_key()
    pem = write_key_pem(tmp_path / "k.pem", key).read_text()
    Secret(value=pem).save("audit-test-signing-key", overwrite=True)
    loaded = load_signing_key(tmp_path, block="audit-test-signing-key")
    assert loaded.key_id == key.key_id and "Secret block" in loaded.source
    with pytest.raises(SigningKeyError, match="cannot load it"):
        load_signing_key(tmp_path, block="no-such-block")


def test_a_signing_key_cannot_be_pickled() -> None:
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(signing_key())


def test_the_published_decision_schema_is_current() -> None:
    from promotion_gate.notifications.report import render_json_schema
    from tests.conftest import ROOT

    published = ROOT / "docs" / "decision.schema.json"
    assert published.read_text() == render_json_schema(), "regenerate: promotion-gate audit schema > docs/decision.schema.json"
    schema = json.loads(published.read_text())
    assert schema["properties"]["schema_version"]["default"] == 1 and "verdict" in schema["required"]
