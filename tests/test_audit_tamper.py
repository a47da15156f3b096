"""Tampering with the audit store: each kind is detected, at the right entry, and named."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from promotion_gate.checklists.attestation import encode_envelope, pae
from promotion_gate.checklists.ledger import Kind, LedgerEntry, encode_entry, line_hash
from promotion_gate.flows.audit_store import AuditStore
from tests.audit_support import every_kind, signing_key
from tests.conftest import ROOT

KEY = signing_key("tamper")
DECISIONS = list(every_kind().values())[:6]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "promotion_gate.flows.cli", "audit", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("pristine") / "store"
    store = AuditStore(root, KEY)
    for d in DECISIONS:
        store.record(d)
    return root


@pytest.fixture()
def store(pristine, tmp_path) -> AuditStore:
    root = tmp_path / "store"
    shutil.copytree(pristine, root)
    return AuditStore(root, KEY)


def lines(store: AuditStore) -> list[bytes]:
    return store.ledger_path.read_bytes().splitlines(keepends=True)


def write_lines(store: AuditStore, new: list[bytes]) -> None:
    store.ledger_path.write_bytes(b"".join(new))


def flip(path, offset: int = -40) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def entry(store: AuditStore, seq: int) -> LedgerEntry:
    return LedgerEntry.model_validate_json(lines(store)[seq - 1])


def folder(store: AuditStore, seq: int):
    return store.decision_dir(entry(store, seq).decision_id)


def test_the_pristine_store_verifies(store) -> None:
    v = store.verify()
    assert v.ok and v.entries == len(DECISIONS) and v.head == line_hash(lines(store)[-1]) and v.notes == []


@pytest.mark.parametrize("name", ["report.md", "report.html", "decision.json"])
def test_one_byte_of_a_file_is_detected_and_named(store, name) -> None:
    flip(folder(store, 3) / name)
    problem = store.verify().problem
    assert (problem.kind, problem.seq, problem.decision_id) == (Kind.edited, 3, entry(store, 3).decision_id)
    assert f"{name} was changed after it was recorded" in problem.detail


def test_one_byte_of_the_envelope_is_detected(store) -> None:
    flip(folder(store, 2) / "attestation.dsse.json", 30)
    problem = store.verify().problem
    assert (problem.kind, problem.seq) == (Kind.edited, 2) and "attestation.dsse.json was changed" in problem.detail


def test_every_single_byte_edit_of_a_ledger_line_is_caught_at_that_line(store) -> None:
    original = lines(store)
    target = original[2].rstrip(b"\n")
    for offset in range(len(target)):
        edited = bytearray(target)
        edited[offset] ^= 0x01
        write_lines(store, original[:2] + [bytes(edited) + b"\n"] + original[3:])
        problem = store.verify().problem
        assert problem is not None and problem.line == 3, (offset, chr(target[offset]), problem)
        assert problem.kind in (Kind.edited, Kind.forged, Kind.missing), (offset, problem)


@pytest.mark.parametrize(("field", "value", "says"), [
    ("verdict", "promoted", "verdict is 'promoted' in the line"),
    ("decision_sha256", "0" * 64, "decision_sha256 differs"),
    ("decided_at", "2026-11-24T12:00:01Z", "decided_at differs"),
])
def test_a_rewritten_ledger_field_contradicts_the_signature(store, field, value, says) -> None:
    original = lines(store)
    body = json.loads(original[3])
    body[field] = value
    write_lines(store, original[:3] + [json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"] + original[4:])
    problem = store.verify().problem
    assert (problem.kind, problem.seq, problem.line) == (Kind.edited, 4, 4) and says in problem.detail


def test_a_deleted_middle_line_is_named_removed(store) -> None:
    original = lines(store)
    write_lines(store, original[:2] + original[3:])
    problem = store.verify().problem
    assert (problem.kind, problem.line, problem.seq) == (Kind.removed, 3, 4) and "seq 3" in problem.detail


def test_two_swapped_lines_are_named_reordered(store) -> None:
    original = lines(store)
    write_lines(store, [original[0], original[2], original[1], *original[3:]])
    problem = store.verify().problem
    assert (problem.kind, problem.line, problem.seq) == (Kind.reordered, 2, 3)


def test_a_rechained_ledger_with_a_line_removed_still_contradicts_the_signatures(store) -> None:
    """The attacker removes line 3 and rewrites seq and prev after it: the signed places disagree."""
    kept = [LedgerEntry.model_validate_json(ln) for i, ln in enumerate(lines(store)) if i != 2]
    out, prev = [], "0" * 64
    for seq, e in enumerate(kept, start=1):
        line = encode_entry(e.model_copy(update={"seq": seq, "prev": prev}))
        out.append(line)
        prev = line_hash(line)
    write_lines(store, out)
    problem = store.verify().problem
    assert (problem.kind, problem.line) == (Kind.removed, 3) and "signed as seq 4" in problem.detail


def test_a_cut_tail_passes_without_the_anchor_but_not_with_it(store) -> None:
    anchor = store.head()
    original = lines(store)
    write_lines(store, original[:-2])
    for name in (LedgerEntry.model_validate_json(ln).decision_id for ln in original[-2:]):
        shutil.rmtree(store.decision_dir(name))
    v = store.verify()
    assert v.ok and v.entries == len(DECISIONS) - 2 and v.head == line_hash(original[-3]) != anchor
    problem = store.verify(anchor=anchor).problem
    assert problem.kind == Kind.truncated and "not in the chain" in problem.detail
    out = cli("verify", str(store.root), "--anchor", anchor)
    assert out.returncode == 1 and "truncated" in out.stdout
    plain = cli("verify", str(store.root))
    assert plain.returncode == 0 and v.head in plain.stdout


def test_a_cut_tail_that_left_its_folders_is_noted(store) -> None:
    write_lines(store, lines(store)[:-1])
    v = store.verify()
    assert v.ok and len(v.notes) == 1 and "has no ledger line" in v.notes[0]


def test_an_older_anchor_is_reported_unless_newer_entries_are_allowed(store) -> None:
    older = line_hash(lines(store)[2])
    problem = store.verify(anchor=older).problem
    assert problem.kind == Kind.newer and "3 newer entries" in problem.detail
    assert store.verify(anchor=older, allow_newer=True).ok
    assert store.verify(anchor=store.head()).ok


def _resign(store: AuditStore, seq: int, signer) -> None:
    """An attacker re-signs every envelope from ``seq`` on with its own key and re-chains the ledger."""
    entries = [LedgerEntry.model_validate_json(ln) for ln in lines(store)]
    out, prev = [encode_entry(e) for e in entries[:seq - 1]], line_hash(encode_entry(entries[seq - 2]))
    for e in entries[seq - 1:]:
        path = store.decision_dir(e.decision_id) / "attestation.dsse.json"
        env = json.loads(path.read_bytes())
        statement = json.loads(base64.b64decode(env["payload"]))
        statement["predicate"]["ledger"]["prev"] = prev
        payload = json.dumps(statement).encode()
        sig = base64.b64encode(signer.private_key.sign(pae(env["payloadType"], payload))).decode()
        env.update(payload=base64.b64encode(payload).decode(), signatures=[{"keyid": signer.key_id, "sig": sig}])
        path.write_bytes(encode_envelope(env))
        files = dict(e.files, **{"attestation.dsse.json": hashlib.sha256(path.read_bytes()).hexdigest()})
        line = encode_entry(e.model_copy(update={"signature": sig, "key_id": signer.key_id, "files": files, "prev": prev}))
        out.append(line)
        prev = line_hash(line)
    write_lines(store, out)


def test_a_signature_by_another_key_under_the_same_key_id_is_forged(store) -> None:
    impostor = signing_key("impostor")
    impostor = type(impostor)(impostor.private_key, KEY.key_id, "impostor")
    _resign(store, 3, impostor)
    problem = store.verify().problem
    assert (problem.kind, problem.seq) == (Kind.forged, 3) and "does not verify" in problem.detail


def test_another_key_published_in_the_store_is_refused_when_the_auditor_pins_the_key(store, tmp_path) -> None:
    from promotion_gate.flows.signing_keys import publish_public_key

    impostor = signing_key("impostor")
    _resign(store, 3, impostor)
    publish_public_key(store.root, impostor)
    v = store.verify()
    assert v.ok and v.keys == {KEY.key_id: 2, impostor.key_id: len(DECISIONS) - 2}  # visible: two keys signed
    pinned = tmp_path / "gate.pub.pem"
    shutil.copy(store.root / "keys" / f"{KEY.key_id}.pub.pem", pinned)
    out = cli("verify", str(store.root), "--key", str(pinned))
    assert out.returncode == 1 and "forged signature" in out.stdout and "seq 3" in out.stdout


def test_a_ledger_signature_swapped_for_another_keys_is_named(store) -> None:
    original = lines(store)
    body = json.loads(original[1])
    body["signature"] = base64.b64encode(signing_key("x").private_key.sign(b"anything")).decode()
    write_lines(store, [original[0], json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n", *original[2:]])
    problem = store.verify().problem
    assert (problem.kind, problem.seq) == (Kind.edited, 2) and "signature is not the envelope's" in problem.detail


@pytest.mark.parametrize("name", ["report.html", "decision.json", "attestation.dsse.json"])
def test_a_missing_file_is_named(store, name) -> None:
    (folder(store, 5) / name).unlink()
    problem = store.verify().problem
    assert (problem.kind, problem.seq) == (Kind.missing, 5) and name in problem.detail


def test_the_cli_names_the_first_bad_entry_and_exits_1(store) -> None:
    flip(folder(store, 2) / "report.md")
    flip(folder(store, 4) / "report.md")
    out = cli("verify", str(store.root))
    bad = entry(store, 2)
    assert out.returncode == 1, out.stdout + out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("FAIL seq 2") and bad.decision_id in first and "edited: report.md" in first


def test_a_missing_ledger_is_removed_and_an_unusable_path_exits_2(store, tmp_path) -> None:
    store.ledger_path.unlink()
    assert store.verify().problem.kind == Kind.removed
    assert cli("verify", str(tmp_path / "nowhere")).returncode == 2
    (tmp_path / "file").write_text("x")
    assert cli("verify", str(tmp_path / "file")).returncode == 2
    (tmp_path / "empty").mkdir()
    assert cli("verify", str(tmp_path / "empty")).returncode == 2


def test_a_torn_last_line_is_detected_and_blocks_further_appends(store) -> None:
    from promotion_gate.flows.audit_store import LedgerError

    data = store.ledger_path.read_bytes()
    store.ledger_path.write_bytes(data[:-30])
    assert store.verify().problem.line == len(DECISIONS)
    with pytest.raises(LedgerError, match="does not end with a newline"):
        store.record(list(every_kind().values())[-1])
