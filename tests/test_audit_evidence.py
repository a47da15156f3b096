"""The kept evidence is complete: each signed record says which evidence files were kept (by digest)
and which were omitted (and why), and verify requires exactly that.

A table of the ways an insider removes or replaces kept evidence, each with its outcome, then the
record's own words (kept, omitted and why), and stores written before the record said so."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys

import pytest

from promotion_gate.audit_store import evidence_record
from promotion_gate.audit_store.evidence import EVIDENCE_DIR, blob_path, keep_evidence
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.checklists.attestation import public_pem
from tests.audit_support import Overlay, every_kind, signing_key
from tests.conftest import ROOT

KEY = signing_key("evidence")
TRUSTED = {KEY.key_id: KEY.private_key.public_key()}
KINDS = every_kind()
PROMOTED, WAIVED = KINDS["promoted"], KINDS["waived"]  # two files each: promptfoo + junit, promptfoo + fallback drill


class Down:
    """A source that cannot be read: the forge is down when the evidence is copied."""

    def open(self, path):
        raise OSError(111, "Connection refused")


def _record(root, decision, source=Overlay(), cap=64 * 1024 * 1024):
    keep_evidence(root, source, decision.checklist, cap)
    return AuditStore(root, KEY).record(decision)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("evidence") / "store"
    _record(root, PROMOTED)
    _record(root, WAIVED)
    return root


def _sha256_of(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sha(decision, index: int) -> str:
    return decision.checklist.evidence[index].sha256


def _stub(root, sha):
    blob_path(root, sha).unlink()
    (root / EVIDENCE_DIR / f"{sha}.omitted.json").write_text(json.dumps(
        {"sha256": sha, "path": "x", "format": "generic-json", "omitted": "larger than the 67108864 bytes kept",
         "metrics": {"accuracy": 0.99}}))


def _signed_predicate(root, decision_id) -> dict:
    envelope = json.loads((root / "decisions" / decision_id / "attestation.dsse.json").read_bytes())
    return json.loads(base64.b64decode(envelope["payload"]))["predicate"]


CASES = [
    # (case, change to a copy of the pristine store, the finding's kind or None, what it says)
    ("pristine", lambda root: None, None, ""),
    ("a kept file deleted", lambda root: blob_path(root, _sha(PROMOTED, 1)).unlink(), "missing file",
     f"evals/junit.xml (sha256 {_sha(PROMOTED, 1)[:16]}...): the signed record says it was kept, but "
     f"{EVIDENCE_DIR}/{_sha(PROMOTED, 1)} is gone"),
    ("a kept file replaced by a made-up omitted stub", lambda root: _stub(root, _sha(PROMOTED, 0)), "missing file",
     f"the signed record says it was kept, but {EVIDENCE_DIR}/{_sha(PROMOTED, 0)} is gone: a stub "
     f"({_sha(PROMOTED, 0)[:16]}....omitted.json) stands in its place"),
    ("the whole evidence folder removed", lambda root: shutil.rmtree(root / "evidence"), "missing file",
     "evals/promptfoo.json"),
    ("a kept file's bytes changed", lambda root: blob_path(root, _sha(WAIVED, 1)).write_bytes(b"{}"), "edited",
     "does not hash to its name"),
    ("a kept file swapped for another kept file's bytes",
     lambda root: blob_path(root, _sha(WAIVED, 1)).write_bytes(blob_path(root, _sha(PROMOTED, 1)).read_bytes()), "edited",
     "does not hash to its name"),
    ("the second decision's own file deleted", lambda root: blob_path(root, _sha(WAIVED, 1)).unlink(), "missing file",
     "evals/fallback-drill.xml"),
]


@pytest.mark.parametrize(("case", "change", "kind", "says"), CASES, ids=[c[0] for c in CASES])
def test_each_way_around_the_kept_evidence_has_its_outcome(pristine, tmp_path, case, change, kind, says) -> None:
    root = tmp_path / "store"
    shutil.copytree(pristine, root)
    change(root)
    v = AuditStore(root).verify(trusted=TRUSTED)
    if kind is None:
        assert v.problem is None and v.evidence_required == 4, (v.problem, v.evidence_required)
        return
    assert v.problem is not None and v.problem.kind.value == kind and says in v.problem.detail, v.problem
    if kind == "missing file":  # named: the decision (and its place) whose signed record says the file was kept
        owner = PROMOTED if "junit" in says or "promptfoo" in says or "whole" in case or "stub" in case else WAIVED
        assert (v.problem.decision_id, v.problem.seq) == (owner.decision_id, 1 if owner is PROMOTED else 2), v.problem


def test_the_probe_deleted_and_stubbed_evidence_fails_on_the_command_line(pristine, tmp_path) -> None:
    root, pem = tmp_path / "store", tmp_path / "k.pub.pem"
    shutil.copytree(pristine, root)
    pem.write_bytes(public_pem(KEY.private_key.public_key()))
    _stub(root, _sha(PROMOTED, 0))
    out = subprocess.run([sys.executable, "-m", "promotion_gate.cli", "audit", "verify", str(root), "--key", str(pem)],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.startswith(f"FAIL seq 1, decision {PROMOTED.decision_id}, line 1: missing file: kept evidence "
                                 "evals/promptfoo.json"), out.stdout


def test_the_signed_record_says_what_was_kept_and_what_was_omitted_and_why(tmp_path) -> None:
    kept, capped, down = tmp_path / "kept", tmp_path / "capped", tmp_path / "down"
    _record(kept, PROMOTED)
    _record(capped, PROMOTED, cap=10)  # both files above the cap: only their stubs
    _record(down, PROMOTED, source=Down())  # the forge is down: nothing copied
    said = {name: _signed_predicate(root, PROMOTED.decision_id)["evidenceKept"] for name, root in
            (("kept", kept), ("capped", capped), ("down", down))}
    assert said["kept"] == [{"path": e.path, "sha256": e.sha256, "kept": True} for e in PROMOTED.checklist.evidence]
    assert said["capped"] == [{"path": e.path, "sha256": e.sha256, "kept": False, "omitted": "larger than the 10 bytes kept"}
                              for e in PROMOTED.checklist.evidence]
    assert [s["kept"] for s in said["down"]] == [False, False]
    assert all(s["omitted"].startswith("no copy in the store when the decision was recorded") for s in said["down"])
    for root in (kept, capped, down):  # each holds as recorded: omitted files are not required
        v = AuditStore(root).verify(trusted=TRUSTED)
        assert v.problem is None and v.evidence_required == (2 if root is kept else 0), (root, v.problem)
        assert v.evidence_omitted == (0 if root is kept else 2)
    shutil.rmtree(capped / "evidence")  # an omitted file's stub is not evidence: its loss is not a finding
    assert AuditStore(capped).verify(trusted=TRUSTED).problem is None


def test_evidence_kept_later_for_a_decision_that_omitted_it_does_not_change_its_verdict(tmp_path) -> None:
    root = tmp_path / "store"
    _record(root, PROMOTED, source=Down())  # omitted: the forge was down
    _record(root, KINDS["expired"])  # kept (other files)
    keep_evidence(root, Overlay(), PROMOTED.checklist)  # a later run keeps the files the first one could not
    v = AuditStore(root).verify(trusted=TRUSTED)
    assert v.problem is None and v.evidence_omitted == 2, v.problem


def test_a_store_recorded_before_the_record_said_what_was_kept_still_verifies_and_says_so(tmp_path, monkeypatch) -> None:
    root = tmp_path / "store"
    monkeypatch.setattr(evidence_record, "kept_record", lambda root, checklist: None)  # an older gate: no evidenceKept
    _record(root, PROMOTED)
    monkeypatch.undo()
    _record(root, KINDS["error_without_checklist"])  # no evidence at all: nothing to say about it
    assert "evidenceKept" not in _signed_predicate(root, PROMOTED.decision_id)
    blob_path(root, _sha(PROMOTED, 0)).unlink()  # cannot be told from a file never kept: not a finding
    v = AuditStore(root).verify(trusted=TRUSTED)
    assert v.problem is None, v.problem
    assert v.evidence_unchecked == 1
    assert any("1 decision was recorded before the signed record named the evidence it kept" in n for n in v.notes), v.notes
    from promotion_gate.audit_store.verify_outcome import conclude

    lines, code = conclude(v, anchor=None, anchor_ref=None, kept=[])
    assert code == 0 and any("could not be checked for completeness" in line for line in lines), lines


def _plant_stub(blob):
    blob.with_name(f"{blob.name}.omitted.json").write_text(json.dumps(
        {"sha256": blob.name, "path": "x", "format": "promptfoo", "omitted": "larger than the 67108864 bytes kept", "metrics": {}}))


def _plant_dir(blob):
    (blob / "x").mkdir(parents=True)
    _plant_stub(blob)


def _plant_link(blob):  # to other bytes outside the store (a file planted beside the blobs is a finding of its own)
    (blob.parents[3] / "elsewhere").write_bytes(b"not the evidence")
    blob.symlink_to(blob.parents[3] / "elsewhere")
    _plant_stub(blob)


def _plant_dangling_link(blob):
    blob.symlink_to("/nonexistent/evidence")


def _plant_file_as_folder(blob):  # a file where the folder of blobs goes: mkdir fails, every copy with it
    shutil.rmtree(blob.parent)
    blob.parent.write_bytes(b"in the way")


def _plant_file_as_evidence(blob):
    shutil.rmtree(blob.parent.parent)
    blob.parent.parent.write_bytes(b"in the way")


def _plant_folder_link(blob):  # the folder of blobs a symlink to a folder elsewhere: copies kept outside the store
    elsewhere = blob.parent.parent.parent / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(blob.parent)
    blob.parent.symlink_to(elsewhere)


def test_a_stub_name_planted_as_a_symlink_is_not_written_through(tmp_path) -> None:
    """The size cap writes `<sha>.omitted.json`: planted as a symlink to a file outside the store, the
    stub replaces the link; the file it pointed at is untouched."""
    root = tmp_path / "store"
    sha = _sha(PROMOTED, 0)
    (root / EVIDENCE_DIR).mkdir(parents=True)
    precious = tmp_path / "precious"
    precious.write_bytes(b"not the gate's to write")
    (root / EVIDENCE_DIR / f"{sha}.omitted.json").symlink_to(precious)
    keep_evidence(root, Overlay(), PROMOTED.checklist, cap=10)
    stub = root / EVIDENCE_DIR / f"{sha}.omitted.json"
    assert precious.read_bytes() == b"not the gate's to write"
    assert not stub.is_symlink() and json.loads(stub.read_text())["sha256"] == sha


@pytest.mark.parametrize("plant", [_plant_stub, _plant_dir, _plant_link, _plant_dangling_link, _plant_file_as_folder,
                                   _plant_file_as_evidence, _plant_folder_link],
                         ids=["a stub", "a directory under the blob's name, and a stub", "a symlink to other bytes, and a stub",
                              "a dangling symlink", "a file in place of evidence/sha256", "a file in place of evidence",
                              "evidence/sha256 a symlink to a folder outside the store"])
def test_what_is_planted_before_the_record_does_not_stop_the_copy(tmp_path, plant) -> None:
    """Whoever can write the store before the gate records plants, under the name of a file well under
    the cap, something that is not its copy: the gate moves it aside (kept, under a dot name verify notes
    and never reads), copies the file, and the signed record says it was kept, not the planter's reason."""
    root = tmp_path / "store"
    sha = _sha(PROMOTED, 0)
    (root / EVIDENCE_DIR).mkdir(parents=True)
    plant(blob_path(root, sha))
    notes = keep_evidence(root, Overlay(), PROMOTED.checklist)
    AuditStore(root, KEY).record(PROMOTED)
    blob = blob_path(root, sha)
    assert blob.is_file() and not blob.is_symlink() and _sha256_of(blob) == sha
    assert not blob.parent.is_symlink() and not blob.parent.parent.is_symlink()
    if plant in (_plant_dir, _plant_link, _plant_dangling_link):
        assert any("moved aside" in n and sha[:16] in n for n in notes), notes
        assert any(p.name.startswith(f".{sha}.displaced.") for p in blob.parent.iterdir())
    elif plant is not _plant_stub:
        assert any("moved aside" in n for n in notes), notes
    said = _signed_predicate(root, PROMOTED.decision_id)["evidenceKept"]
    assert [s["kept"] for s in said] == [True, True], said
    v = AuditStore(root).verify(trusted=TRUSTED)
    assert v.problem is None and v.evidence_required == 2, v.problem
