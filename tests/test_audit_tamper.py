"""Tampering with the audit store: each kind is detected, at the right entry, and named."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from promotion_gate.checklists.attestation import encode_envelope, pae, public_pem
from promotion_gate.checklists.ledger import Kind, LedgerEntry, encode_entry, line_hash
from promotion_gate.audit_store.store import AuditStore
from tests.audit_support import every_kind, signing_key
from tests.conftest import ROOT

KEY = signing_key("tamper")
DECISIONS = list(every_kind().values())[:6]


def pinned_key(store: AuditStore):
    """The auditor's copy of the gate's public key, outside the store."""
    path = store.root.parent / "auditor-gate.pub.pem"
    path.write_bytes(public_pem(KEY.private_key.public_key()))
    return path


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "promotion_gate.cli", "audit", *args], cwd=ROOT, capture_output=True, text=True)


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
        assert problem.kind in (Kind.edited, Kind.forged, Kind.missing, Kind.untrusted), (offset, problem)


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
    plain = cli("verify", str(store.root), "--key", str(pinned_key(store)))
    assert plain.returncode == 0 and v.head in plain.stdout and "truncation cannot be seen" in plain.stdout


def test_a_cut_tail_that_left_its_folders_fails_as_unrecorded(store) -> None:
    cut = entry(store, len(DECISIONS))
    write_lines(store, lines(store)[:-1])
    problem = store.verify().problem
    assert (problem.kind, problem.decision_id) == (Kind.unrecorded, cut.decision_id) and "has no ledger line" in problem.detail


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
    from promotion_gate.audit_store.signing_keys import publish_public_key

    impostor = signing_key("impostor")
    _resign(store, 3, impostor)
    publish_public_key(store.root, impostor)
    v = store.verify()
    assert v.ok and v.keys == {KEY.key_id: 2, impostor.key_id: len(DECISIONS) - 2}  # visible: two keys signed
    pinned = tmp_path / "gate.pub.pem"
    shutil.copy(store.root / "keys" / f"{KEY.key_id}.pub.pem", pinned)
    out = cli("verify", str(store.root), "--key", str(pinned))
    assert out.returncode == 1 and "untrusted: signed with key" in out.stdout and "seq 3" in out.stdout


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
    from promotion_gate.audit_store.store import LedgerError

    data = store.ledger_path.read_bytes()
    store.ledger_path.write_bytes(data[:-30])
    assert store.verify().problem.line == len(DECISIONS)
    with pytest.raises(LedgerError, match="does not end with a newline"):
        store.record(list(every_kind().values())[-1])


# Issue 11: trust pinned outside the store, the demo mark, completeness, the anchor ref.
# Each row: what the insider did, the exit code and the named kind.

EXIT_BAD, EXIT_UNTRUSTED, EXIT_DEMO = 1, 3, 4


def test_without_a_pinned_key_verify_says_untrusted_and_exits_3(store) -> None:
    out = cli("verify", str(store.root))
    assert out.returncode == EXIT_UNTRUSTED and "untrusted: no pinned key" in out.stdout, out.stdout
    assert cli("verify", str(store.root), "--key", str(pinned_key(store))).returncode == 0


def test_history_rewritten_and_resigned_with_a_new_key_and_keys_replaced_is_untrusted(store) -> None:
    from promotion_gate.audit_store.signing_keys import publish_public_key

    pinned = pinned_key(store)
    impostor = signing_key("insider")
    flip(folder(store, 2) / "report.md")  # the change the insider wants to hide
    body = json.loads(entry(store, 2).model_dump_json())
    _resign_all_with_files(store, impostor)
    shutil.rmtree(store.root / "keys")
    publish_public_key(store.root, impostor)
    assert store.verify().ok  # the store is consistent with itself ...
    out = cli("verify", str(store.root))
    assert out.returncode == EXIT_UNTRUSTED and "untrusted: no pinned key" in out.stdout  # ... which proves nothing
    out = cli("verify", str(store.root), "--key", str(pinned))
    assert out.returncode == EXIT_BAD and out.stdout.startswith("FAIL seq 1") and "untrusted: signed with key" in out.stdout, out.stdout
    assert body["decision_id"] in store.ledger_path.read_text()


def _resign_all_with_files(store: AuditStore, signer, start: int = 1) -> None:
    """Re-hash every file into the statement and the line, re-sign every envelope from seq ``start``, re-chain."""
    entries = [LedgerEntry.model_validate_json(ln) for ln in lines(store)]
    out = lines(store)[:start - 1]
    prev = line_hash(out[-1]) if out else "0" * 64
    for e in entries[start - 1:]:
        folder_ = store.decision_dir(e.decision_id)
        path = folder_ / "attestation.dsse.json"
        env = json.loads(path.read_bytes())
        statement = json.loads(base64.b64decode(env["payload"]))
        files = {n: hashlib.sha256((folder_ / n).read_bytes()).hexdigest() for n in ("decision.json", "report.md", "report.html")}
        for subject in statement["subject"]:
            name = subject["name"].rsplit("/", 1)[-1]
            if subject["name"].startswith("decisions/") and name in files:
                subject["digest"]["sha256"] = files[name]
        statement["predicate"]["ledger"]["prev"] = prev
        payload = json.dumps(statement).encode()
        sig = base64.b64encode(signer.private_key.sign(pae(env["payloadType"], payload))).decode()
        env.update(payload=base64.b64encode(payload).decode(), signatures=[{"keyid": signer.key_id, "sig": sig}])
        path.write_bytes(encode_envelope(env))
        files["attestation.dsse.json"] = hashlib.sha256(path.read_bytes()).hexdigest()
        line = encode_entry(e.model_copy(update={"signature": sig, "key_id": signer.key_id, "files": files, "prev": prev,
                                                 "decision_sha256": files["decision.json"]}))
        out.append(line)
        prev = line_hash(line)
    write_lines(store, out)


@pytest.fixture(scope="module")
def demo_pristine(tmp_path_factory):
    from promotion_gate.audit_store.signing_keys import demo_key

    base = tmp_path_factory.mktemp("demo")
    key = demo_key(base / "store", base / "demo-keys")
    store = AuditStore(base / "store", key)
    for d in DECISIONS[:3]:
        store.record(d)
    return base


@pytest.fixture()
def demo_store(demo_pristine, tmp_path):
    shutil.copytree(demo_pristine, tmp_path / "demo", dirs_exist_ok=True)
    return tmp_path / "demo"


def test_a_demo_signed_store_is_flagged_even_with_the_demo_key_pinned(demo_store) -> None:
    out = cli("verify", str(demo_store / "store"), "--key", str(demo_store / "demo-keys" / "demo-signing-key.pub.pem"))
    assert out.returncode == EXIT_DEMO and "signed with a DEMO key: not evidence" in out.stdout, out.stdout


def test_deleting_the_demo_side_file_changes_nothing_about_the_demo_mark(demo_store) -> None:
    for mark in (demo_store / "store" / "keys").glob("*.demo"):
        mark.unlink()
    public = demo_store / "auditor.pub.pem"  # the pinned copy without the DEMO line: the mark in the statement still counts
    public.write_bytes(b"-----BEGIN" + (demo_store / "demo-keys" / "demo-signing-key.pub.pem").read_bytes().split(b"-----BEGIN", 1)[1])
    out = cli("verify", str(demo_store / "store"), "--key", str(public))
    assert out.returncode == EXIT_DEMO and "3 of them signed with a DEMO key: not evidence" in out.stdout, out.stdout


def test_a_demo_key_resign_that_drops_the_mark_is_still_flagged_by_the_pinned_demo_key(demo_store) -> None:
    from promotion_gate.audit_store.signing_keys import demo_key

    root = demo_store / "store"
    key = demo_key(root, demo_store / "demo-keys")
    store = AuditStore(root, key)
    for e in [LedgerEntry.model_validate_json(ln) for ln in lines(store)]:  # the insider holds the demo key: marks "configured"
        path = store.decision_dir(e.decision_id) / "attestation.dsse.json"
        env = json.loads(path.read_bytes())
        statement = json.loads(base64.b64decode(env["payload"]))
        statement["predicate"]["signingKey"]["kind"] = "configured"
        env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        path.write_bytes(encode_envelope(env))
    _resign_all_with_files(store, key)
    out = cli("verify", str(root), "--key", str(demo_store / "demo-keys" / "demo-signing-key.pub.pem"))
    assert out.returncode == EXIT_DEMO and "signed with a DEMO key: not evidence" in out.stdout, out.stdout


def test_an_empty_ledger_with_decisions_fails(store) -> None:
    store.ledger_path.write_bytes(b"")
    problem = store.verify().problem
    assert problem.kind == Kind.removed and "ledger.jsonl is empty but decisions/ holds 6 decisions" in problem.detail
    out = cli("verify", str(store.root), "--key", str(pinned_key(store)))
    assert out.returncode == EXIT_BAD and "removed: ledger.jsonl is empty" in out.stdout


def test_an_orphan_decision_folder_fails(store) -> None:
    shutil.copytree(folder(store, 2), store.root / "decisions" / "helpdesk-summarizer-0000000-0000000000")
    out = cli("verify", str(store.root), "--key", str(pinned_key(store)))
    assert out.returncode == EXIT_BAD and "decision without a ledger line" in out.stdout, out.stdout
    assert store.verify().problem.kind == Kind.unrecorded


def _anchored_repo(store: AuditStore, tmp_path):
    """A governed repository whose checkpoint ref holds one checkpoint per ledger line (as the flow writes them)."""
    from promotion_gate.checklists.checkpoint import build_checkpoint
    from promotion_gate.local_repo.anchor import write_local_checkpoint

    repo = tmp_path / "governed"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    commits = [write_local_checkpoint(repo, build_checkpoint(ln)) for ln in lines(store)]
    return repo, commits


def test_truncation_is_found_through_the_anchor_ref(store, tmp_path) -> None:
    repo, _ = _anchored_repo(store, tmp_path)
    key = str(pinned_key(store))
    assert cli("verify", str(store.root), "--key", key, "--anchor-ref", str(repo)).returncode == 0
    original = lines(store)
    write_lines(store, original[:-2])
    for name in (LedgerEntry.model_validate_json(ln).decision_id for ln in original[-2:]):
        shutil.rmtree(store.decision_dir(name))
    out = cli("verify", str(store.root), "--key", key, "--anchor-ref", str(repo))
    assert out.returncode == EXIT_BAD and "truncated: the ledger ends at seq 4, but seq 6" in out.stdout, out.stdout


def test_a_rewritten_entry_is_found_through_the_anchor_ref(store, tmp_path) -> None:
    repo, _ = _anchored_repo(store, tmp_path)
    (folder(store, 4) / "report.md").write_text("nothing to see\n")
    _resign_all_with_files(store, KEY, start=4)  # the operator holds the real key: re-signs a changed history ...
    assert store.verify().ok  # ... which the store cannot show
    out = cli("verify", str(store.root), "--key", str(pinned_key(store)), "--anchor-ref", str(repo))
    assert out.returncode == EXIT_BAD and "rewritten: the ledger's line at seq 4 is not the anchored one" in out.stdout, out.stdout


def test_a_rewound_anchor_ref_is_a_finding(store, tmp_path) -> None:
    repo, commits = _anchored_repo(store, tmp_path)
    subprocess.run(["git", "-C", str(repo), "update-ref", "refs/promotion-gate/ledger", commits[2]], check=True)
    out = cli("verify", str(store.root), "--key", str(pinned_key(store)), "--anchor-ref", str(repo))
    assert out.returncode == EXIT_BAD and "anchor ref rewound: refs/promotion-gate/ledger: its newest checkpoint is seq 3" in out.stdout, out.stdout


def test_a_force_pushed_anchor_ref_no_longer_holding_an_exported_checkpoint_is_a_finding(store, tmp_path, monkeypatch) -> None:
    from promotion_gate.checklists.checkpoint import build_checkpoint
    from promotion_gate.local_repo.anchor import write_local_checkpoint

    repo, commits = _anchored_repo(store, tmp_path)
    kept = tmp_path / "checkpoint.json"
    env_out = subprocess.run([sys.executable, "-m", "promotion_gate.cli", "audit", "anchor", "export", str(store.root),
                              "--anchor-ref", str(repo), "--out", str(kept)], cwd=ROOT, capture_output=True, text=True)
    assert env_out.returncode == 0, env_out.stderr
    subprocess.run(["git", "-C", str(repo), "update-ref", "-d", "refs/promotion-gate/ledger"], check=True)
    # rewritten at another time (git commits are content-addressed: the same second would rebuild the same commits)
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2001-01-01T00:00:00+00:00")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2001-01-01T00:00:00+00:00")
    for ln in lines(store):  # a fresh chain with the same checkpoints: every seq matches, the commits do not
        write_local_checkpoint(repo, build_checkpoint(ln))
    out = cli("verify", str(store.root), "--key", str(pinned_key(store)), "--anchor-ref", str(repo), "--anchor-file", str(kept))
    assert out.returncode == EXIT_BAD and "no longer contains checkpoint commit" in out.stdout, out.stdout


def test_a_checkpoint_chain_whose_seqs_do_not_increase_is_a_finding(store, tmp_path) -> None:
    from promotion_gate.checklists.checkpoint import build_checkpoint
    from promotion_gate.local_repo.anchor import write_local_checkpoint

    repo, _ = _anchored_repo(store, tmp_path)
    old = build_checkpoint(lines(store)[1])
    tip = subprocess.run(["git", "-C", str(repo), "rev-parse", "refs/promotion-gate/ledger"], capture_output=True, text=True).stdout.strip()
    blob = subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=json.dumps(old.model_dump(by_alias=True)),
                          capture_output=True, text=True).stdout.strip()
    tree = subprocess.run(["git", "-C", str(repo), "mktree"], input=f"100644 blob {blob}\tcheckpoint.json\n", capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(repo), "commit-tree", tree, "-p", tip, "-m", "replayed"], capture_output=True, text=True,
                            env={"GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@x", "GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": "x@x"}).stdout.strip()
    subprocess.run(["git", "-C", str(repo), "update-ref", "refs/promotion-gate/ledger", commit], check=True)
    out = cli("verify", str(store.root), "--key", str(pinned_key(store)), "--anchor-ref", str(repo), "--allow-newer")
    assert out.returncode == EXIT_BAD and "seqs do not increase" in out.stdout, out.stdout
    assert write_local_checkpoint  # the writer refuses nothing here: the ref was moved by hand


def test_an_unreadable_anchor_or_key_exits_2(store, tmp_path) -> None:
    assert cli("verify", str(store.root), "--anchor-ref", str(tmp_path / "nowhere")).returncode == 2
    (tmp_path / "bad.json").write_text("{}")
    assert cli("verify", str(store.root), "--anchor-file", str(tmp_path / "bad.json")).returncode == 2
    (tmp_path / "not-a-key.pem").write_text("hello")
    out = cli("verify", str(store.root), "--key", str(tmp_path / "not-a-key.pem"))
    assert out.returncode == 2 and "holds no PEM public key" in out.stderr
