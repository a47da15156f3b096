"""`audit verify` on a hostile store: whoever can write the store plants links, special files and
huge lines. Each row is what they plant and what verify must answer: the exit code, the named kind,
the path; never a traceback, never a hang, bounded memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from promotion_gate.checklists.attestation import public_pem
from promotion_gate.cli import audit as audit_cli
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.audit_store.safe_read import Limits, Refused, StoreReader
from tests.audit_support import commit_of, decision, signing_key
from tests.conftest import ROOT

KEY = signing_key("safety")
SYSTEMS = ("alpha", "bravo", "charlie")


PINNED = Path(tempfile.mkdtemp(prefix="pg-pinned-")) / "auditor.pub.pem"  # the auditor's own copy, outside the store
PINNED.write_bytes(public_pem(KEY.private_key.public_key()))


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`audit verify|index STORE ...` with the auditor's pinned key."""
    return subprocess.run([sys.executable, "-m", "promotion_gate.cli", "audit", *args, "--key", str(PINNED)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def build(root: Path) -> list[str]:
    """Three decisions, one per system; returns their ids in ledger order."""
    store = AuditStore(root, KEY, durable=False)
    ids = []
    for i, system in enumerate(SYSTEMS):
        d = decision("error_without_checklist", system=system, commit=commit_of(f"safety{i}"))
        store.record(d)
        ids.append(d.decision_id)
    return ids


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("pristine") / "store"
    return root, build(root)


@pytest.fixture
def store(pristine, tmp_path) -> tuple[Path, list[str]]:
    root = tmp_path / "store"
    shutil.copytree(pristine[0], root, symlinks=True)
    return root, pristine[1]


def link_to_zero(root: Path, ids: list[str]) -> str:
    target = root / "decisions" / ids[1] / "report.md"
    target.unlink()
    target.symlink_to("/dev/zero")
    return f"decisions/{ids[1]}/report.md"


def fifo_decision(root: Path, ids: list[str]) -> str:
    target = root / "decisions" / ids[1] / "decision.json"
    target.unlink()
    os.mkfifo(target)
    return f"decisions/{ids[1]}/decision.json"


def link_outside_same_bytes(root: Path, ids: list[str]) -> str:
    """The insider moves a report out of the store and links it back: same bytes, same digest."""
    target = root / "decisions" / ids[0] / "report.html"
    outside = root.parent / "outside-report.html"
    shutil.move(target, outside)
    target.symlink_to(outside)
    return f"decisions/{ids[0]}/report.html"


def link_folder_outside(root: Path, ids: list[str]) -> str:
    folder = root / "decisions" / ids[2]
    outside = root.parent / "outside-folder"
    shutil.move(folder, outside)
    folder.symlink_to(outside, target_is_directory=True)
    return f"decisions/{ids[2]}"


def link_decisions_folder(root: Path, ids: list[str]) -> str:
    outside = root.parent / "outside-decisions"
    shutil.move(root / "decisions", outside)
    (root / "decisions").symlink_to(outside, target_is_directory=True)
    return "decisions"


def link_ledger_outside(root: Path, ids: list[str]) -> str:
    outside = root.parent / "outside-ledger.jsonl"
    shutil.move(root / "ledger.jsonl", outside)
    (root / "ledger.jsonl").symlink_to(outside)
    return "ledger.jsonl"


def ledger_to_zero(root: Path, ids: list[str]) -> str:
    (root / "ledger.jsonl").unlink()
    (root / "ledger.jsonl").symlink_to("/dev/zero")
    return "ledger.jsonl"


def fifo_ledger(root: Path, ids: list[str]) -> str:
    (root / "ledger.jsonl").unlink()
    os.mkfifo(root / "ledger.jsonl")
    return "ledger.jsonl"


def folder_as_envelope(root: Path, ids: list[str]) -> str:
    target = root / "decisions" / ids[0] / "attestation.dsse.json"
    target.unlink()
    target.mkdir()
    return f"decisions/{ids[0]}/attestation.dsse.json"


def huge_line_sparse(root: Path, ids: list[str]) -> str:
    """200 MB of zero bytes with no newline after the last line (a sparse file: no disk, no time)."""
    with open(root / "ledger.jsonl", "r+b") as fh:
        fh.truncate(fh.seek(0, os.SEEK_END) + 200 * 2**20)
    return "ledger.jsonl line 4"


def huge_line_in_the_middle(root: Path, ids: list[str]) -> str:
    lines = (root / "ledger.jsonl").read_bytes().splitlines(keepends=True)
    lines.insert(1, b"x" * (2 * 2**20) + b"\n")
    (root / "ledger.jsonl").write_bytes(b"".join(lines))
    return "ledger.jsonl line 2"


def huge_report(root: Path, ids: list[str]) -> str:
    with open(root / "decisions" / ids[2] / "report.md", "r+b") as fh:
        fh.truncate(40 * 2**20)  # past the 32 MiB cap, sparse
    return f"decisions/{ids[2]}/report.md"


def hard_link_report_outside(root: Path, ids: list[str]) -> str:
    """A second name for a report, outside the store: whoever can write that name rewrites the recorded file."""
    os.link(root / "decisions" / ids[1] / "report.md", root.parent / "outside-report.md")
    return f"decisions/{ids[1]}/report.md"


def hard_link_ledger_outside(root: Path, ids: list[str]) -> str:
    os.link(root / "ledger.jsonl", root.parent / "outside-ledger.jsonl")
    return "ledger.jsonl"


def hard_link_envelope_inside(root: Path, ids: list[str]) -> str:
    """Two names inside the store (a hard-link "backup" next to the record): still a second name that can rewrite it."""
    os.link(root / "decisions" / ids[2] / "attestation.dsse.json", root / "decisions" / ids[2] / "attestation.backup")
    return f"decisions/{ids[2]}/attestation.dsse.json"


def case_twin_report(root: Path, ids: list[str]) -> str:
    """A case-only twin of report.md: on a case-insensitive copy (macOS, Windows) it replaces the signed one."""
    (root / "decisions" / ids[0] / "REPORT.md").write_text("# Promoted. All checks passed.\n")
    return f"decisions/{ids[0]}/REPORT.md"


def numbered_copy_report(root: Path, ids: list[str]) -> str:
    (root / "decisions" / ids[1] / "report (1).html").write_text("<h1>promoted</h1>")
    return f"decisions/{ids[1]}/report (1).html"


def extra_link_in_folder(root: Path, ids: list[str]) -> str:
    os.symlink("/etc/passwd", root / "decisions" / ids[2] / "report.pdf")
    return f"decisions/{ids[2]}/report.pdf"


def subfolder_in_folder(root: Path, ids: list[str]) -> str:
    (root / "decisions" / ids[0] / "sub").mkdir()
    return f"decisions/{ids[0]}/sub"


def newline_in_a_name(root: Path, ids: list[str]) -> str:
    """A name holding a newline: printed as is, it would add a line of its own to verify's output."""
    (root / "decisions" / ids[0] / "x\nOK: the chain, every file digest and every signature hold").write_text("")
    return f"decisions/{ids[0]}/" + ascii("x\nOK: the chain, every file digest and every signature hold")


def dot_named_decision_copy(root: Path, ids: list[str]) -> str:
    """A copy of a real decision under a dot name (hidden from ls), with a forged report."""
    fake = root / "decisions" / f".{ids[0]}"
    shutil.copytree(root / "decisions" / ids[0], fake)
    (fake / "report.md").write_text("# Promoted (forged)\n")
    return f"decisions/.{ids[0]}"


def _evidence(root: Path) -> Path:
    folder = root / "evidence" / "sha256"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def uppercase_blob_name(root: Path, ids: list[str]) -> str:
    name = "AB" * 32  # a blob name in upper case: not a digest verify checks, other bytes
    (_evidence(root) / name).write_bytes(b"forged evidence")
    return f"evidence/sha256/{name}"


def link_among_blobs(root: Path, ids: list[str]) -> str:
    os.symlink("/etc/shadow", _evidence(root) / "notes.txt")
    return "evidence/sha256/notes.txt"


def dot_name_among_blobs(root: Path, ids: list[str]) -> str:
    (_evidence(root) / ".hidden").write_bytes(b"not a name the gate writes")
    return "evidence/sha256/.hidden"


def stub_named_in_upper_case(root: Path, ids: list[str]) -> str:
    name = "CD" * 32 + ".omitted.json"
    (_evidence(root) / name).write_text("{}")
    return f"evidence/sha256/{name}"


def deeply_nested_envelope(root: Path, ids: list[str]) -> str:
    (root / "decisions" / ids[0] / "attestation.dsse.json").write_text("[" * 200_000)
    return "attestation.dsse.json was changed after it was recorded (attestation.dsse.json is not a DSSE envelope (not JSON: nested too deep"


def nested_junk_line_and_a_removed_line(root: Path, ids: list[str]) -> str:
    lines = (root / "ledger.jsonl").read_bytes().splitlines()
    shutil.rmtree(root / "decisions" / ids[0])
    (root / "ledger.jsonl").write_bytes(b"\n".join(lines[1:] + [b"[" * 900_000]) + b"\n")
    return "the entries before it (seq 1) are missing"


#   name, what the insider does, extra flags, exit code, kind named
TAMPER = [
    ("report.md -> /dev/zero", link_to_zero, (), 1, "refused symlink"),
    ("FIFO as decision.json", fifo_decision, (), 1, "refused special file"),
    ("report linked outside, same bytes", link_outside_same_bytes, (), 1, "refused symlink"),
    ("decision folder linked outside", link_folder_outside, (), 1, "refused symlink"),
    ("decisions/ linked outside", link_decisions_folder, (), 1, "refused symlink"),
    ("ledger linked outside, same bytes", link_ledger_outside, (), 1, "refused symlink"),
    ("ledger -> /dev/zero", ledger_to_zero, (), 1, "refused symlink"),
    ("FIFO as ledger", fifo_ledger, (), 1, "refused special file"),
    ("a folder as the envelope", folder_as_envelope, (), 1, "refused special file"),
    ("200 MB line at the end (sparse)", huge_line_sparse, (), 1, "refused oversized line"),
    ("2 MiB line in the middle", huge_line_in_the_middle, (), 1, "refused oversized line"),
    ("2 MiB line under a lower cap", huge_line_in_the_middle, ("--max-line-bytes", "4096"), 1, "refused oversized line"),
    ("40 MiB report (sparse)", huge_report, (), 1, "refused oversized file"),
    ("report hard-linked from outside, same bytes", hard_link_report_outside, (), 1, "refused hard link"),
    ("ledger hard-linked from outside, same bytes", hard_link_ledger_outside, (), 1, "refused hard link"),
    ("envelope hard-linked inside the store", hard_link_envelope_inside, (), 1, "refused hard link"),
    ("REPORT.md beside report.md (case-only twin)", case_twin_report, (), 1, "unexpected entry"),
    ("report (1).html beside report.html", numbered_copy_report, (), 1, "unexpected entry"),
    ("report.pdf -> /etc/passwd in a decision folder", extra_link_in_folder, (), 1, "unexpected entry"),
    ("a subfolder in a decision folder", subfolder_in_folder, (), 1, "unexpected entry"),
    ("a name holding a newline and a fake OK line", newline_in_a_name, (), 1, "unexpected entry"),
    ("a dot-named copy of a decision, report forged", dot_named_decision_copy, (), 1, "decision without a ledger line"),
    ("an upper-case blob name, other bytes", uppercase_blob_name, (), 1, "unexpected entry"),
    ("notes.txt -> /etc/shadow among the blobs", link_among_blobs, (), 1, "unexpected entry"),
    ("a dot name the gate never writes among the blobs", dot_name_among_blobs, (), 1, "unexpected entry"),
    ("an upper-case stub name", stub_named_in_upper_case, (), 1, "unexpected entry"),
    ("envelope nested 200,000 deep", deeply_nested_envelope, (), 1, "edited"),
    ("a line nested 900,000 deep, and a line removed", nested_junk_line_and_a_removed_line, (), 1, "removed"),
]


@pytest.mark.parametrize("name, tamper, flags, code, kind", TAMPER, ids=[row[0] for row in TAMPER])
def test_a_hostile_store_is_refused_by_name(store, name, tamper, flags, code, kind) -> None:
    root, ids = store
    path = tamper(root, ids)
    out = cli("verify", str(root), *flags)  # a hang fails here with TimeoutExpired
    assert out.returncode == code, out.stdout + out.stderr
    assert f"{kind}: {path}" in out.stdout, out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    assert not any(line.startswith("OK") for line in out.stdout.splitlines()), out.stdout


NESTED = [row for row in TAMPER if "nested" in row[0]]


@pytest.mark.parametrize("name, tamper, flags, code, kind", NESTED, ids=[row[0] for row in NESTED])
def test_index_on_a_deeply_nested_store_names_the_finding(store, name, tamper, flags, code, kind) -> None:
    root, ids = store
    path = tamper(root, ids)
    out = cli("index", str(root))
    assert out.returncode == 0 and "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert f"warning: the ledger does not verify: " in out.stderr and f"{kind}: {path}" in out.stderr, out.stderr


def emptied(root: Path, ids: list[str]) -> None:
    """Every decision and all evidence removed, the ledger emptied: nothing inside the store shows a cut."""
    shutil.rmtree(root / "decisions")
    shutil.rmtree(root / "evidence", ignore_errors=True)
    (root / "ledger.jsonl").write_bytes(b"")


def emptied_but_decisions_folder(root: Path, ids: list[str]) -> None:
    emptied(root, ids)
    (root / "decisions").mkdir()


#   name, what the insider does, the anchor given (the head before), exit code, what is said
EMPTIED = [
    ("emptied, no anchor", emptied, False, 2, "0 entries: nothing to verify; without an anchor a cut to nothing cannot be seen"),
    ("emptied, an empty decisions/ left, no anchor", emptied_but_decisions_folder, False, 2,
     "0 entries: nothing to verify; without an anchor a cut to nothing cannot be seen"),
    ("emptied, the old head as --anchor", emptied, True, 1, "truncated"),
]


@pytest.mark.parametrize("name, tamper, anchored, code, says", EMPTIED, ids=[row[0] for row in EMPTIED])
def test_an_emptied_store_is_not_an_ok(store, name, tamper, anchored, code, says) -> None:
    root, ids = store
    head = AuditStore(root).head()
    tamper(root, ids)
    out = cli("verify", str(root), *(("--anchor", head) if anchored else ()))
    assert out.returncode == code, out.stdout + out.stderr
    assert says in out.stdout and "OK:" not in out.stdout and "Traceback" not in out.stdout + out.stderr, out.stdout
    if not anchored:
        assert "anchor: none given: truncation cannot be seen" in out.stdout, out.stdout
        index = cli("index", str(root))
        assert index.returncode == 0 and "warning: 0 entries: nothing to verify" in index.stderr, index.stdout + index.stderr


def displaced_blob(root: Path, ids: list[str]) -> None:
    """What evidence._move_aside leaves: something planted under a blob's name, renamed to a dot name."""
    os.symlink("/etc/passwd", _evidence(root) / f".{'ab' * 32}.displaced.{'0' * 32}")


def interrupted_copy(root: Path, ids: list[str]) -> None:
    """What evidence._keep_one leaves when the copy is cut off: its temporary files."""
    (_evidence(root) / f".{'ab' * 32}.{'1' * 32}.tmp").write_bytes(b"part of a copy")
    (_evidence(root) / f".{'ab' * 32}.omitted.{'2' * 32}.tmp").write_bytes(b"{")


def displaced_folders(root: Path, ids: list[str]) -> None:
    """What evidence._clear_the_folders leaves at the root and in evidence/."""
    (root / f".evidence.displaced.{'3' * 32}").write_bytes(b"was in the way")
    _evidence(root)
    (root / "evidence" / f".sha256.displaced.{'4' * 32}").mkdir()


#   what the gate itself leaves in a store (under dot names): still verifies, and says what it set aside
GATE_LEAVES = [("the ledger's lock file", lambda root, ids: (root / ".ledger.lock").touch(), None),
               ("a planted blob moved aside", displaced_blob, "evidence/sha256: 1 name the gate set aside"),
               ("an interrupted evidence copy", interrupted_copy, "evidence/sha256: 2 names the gate set aside"),
               ("planted evidence folders moved aside", displaced_folders, None)]


@pytest.mark.parametrize("name, leave, note", GATE_LEAVES, ids=[row[0] for row in GATE_LEAVES])
def test_what_the_gate_itself_leaves_still_verifies(store, name, leave, note) -> None:
    root, ids = store
    leave(root, ids)
    out = cli("verify", str(root))
    assert out.returncode == 0 and "OK:" in out.stdout, out.stdout + out.stderr
    assert note is None or note in out.stdout, out.stdout


def test_a_record_interrupted_mid_write_leaves_no_temporary_file_behind(tmp_path) -> None:
    """A crash between writing a decision's file and renaming it leaves ``.NAME.<hex>.tmp``; the re-run records
    the decision and removes it, so the folder holds only what its ledger entry records."""
    root = tmp_path / "store"
    d = decision("error_without_checklist", system="alpha", commit=commit_of("interrupted"))
    folder = root / "decisions" / d.decision_id
    folder.mkdir(parents=True)
    (folder / f".report.md.{'5' * 32}.tmp").write_text("half a report")
    AuditStore(root, KEY, durable=False).record(d)
    assert sorted(os.listdir(folder)) == ["attestation.dsse.json", "decision.json", "report.html", "report.md"]
    assert cli("verify", str(root)).returncode == 0


def test_a_hard_link_names_its_link_count(store) -> None:
    root, ids = store
    path = hard_link_report_outside(root, ids)
    out = cli("verify", str(root))
    assert f"FAIL seq 2, decision {ids[1]}, line 2: refused hard link: {path}: the file has 2 names" in out.stdout, out.stdout
    (root.parent / "outside-report.md").unlink()  # the second name removed: the store's own file verifies again
    assert cli("verify", str(root)).returncode == 0


def test_the_pristine_copy_verifies(store) -> None:
    out = cli("verify", str(store[0]))
    assert out.returncode == 0 and "OK:" in out.stdout, out.stdout + out.stderr


def test_the_first_bad_entry_is_named_with_its_place(store) -> None:
    root, ids = store
    link_to_zero(root, ids)
    out = cli("verify", str(root))
    assert f"FAIL seq 2, decision {ids[1]}, line 2: refused symlink: decisions/{ids[1]}/report.md" in out.stdout


def test_a_lower_file_cap_refuses_a_normal_decision(store) -> None:
    root, ids = store
    out = cli("verify", str(root), "--max-file-bytes", "100")
    assert out.returncode == 1 and f"refused oversized file: decisions/{ids[0]}/" in out.stdout
    bad = cli("verify", str(root), "--max-line-bytes", "0")
    assert bad.returncode == 2 and "--max-line-bytes: must be a positive number" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_200_mb_line_costs_bounded_memory(store) -> None:
    root, ids = store
    huge_line_sparse(root, ids)
    probe = ("import resource, subprocess, sys; r = subprocess.run([sys.executable, '-m', 'promotion_gate.cli.main', 'audit', "
             f"'verify', {str(root)!r}, '--key', {str(PINNED)!r}], capture_output=True, text=True); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    code, max_rss_kib = map(int, out.stdout.split())
    assert code == 1
    assert max_rss_kib < 200 * 1024  # the line is 200 MiB; the reader holds at most 1 MiB of it


def test_a_key_file_linked_to_dev_zero_is_refused_not_read(store) -> None:
    root, ids = store
    (root / "keys" / "planted.pub.pem").symlink_to("/dev/zero")
    out = cli("verify", str(root))
    assert out.returncode == 0, out.stdout + out.stderr  # the store's real key still verifies every entry
    assert "keys/planted.pub.pem: refused" in out.stdout


def test_index_on_a_hostile_store_refuses_and_finishes(store) -> None:
    root, ids = store
    fifo_decision(root, ids)
    out = cli("index", str(root))
    assert out.returncode == 0 and "Traceback" not in out.stdout + out.stderr
    assert "refused special file" in out.stderr
    assert (root / "index.html").is_file()


def test_an_unexpected_error_is_one_line_and_exit_2(store, monkeypatch, capsys) -> None:
    def broken(self, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(AuditStore, "verify", broken)
    assert audit_cli.run_verify(str(store[0])) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: audit verify: unexpected RuntimeError: disk on fire second line (no verdict was reached)"


def test_the_reader_refuses_links_at_every_level(store) -> None:
    root, ids = store
    link_folder_outside(root, ids)
    with StoreReader(root) as reader:
        assert reader.read(f"decisions/{ids[0]}/report.md")
        with pytest.raises(Refused) as refused:
            reader.read(f"decisions/{ids[2]}/report.md")
        assert refused.value.kind == "refused symlink" and refused.value.path == f"decisions/{ids[2]}"
        with pytest.raises(FileNotFoundError):
            reader.read("decisions/absent/report.md")
        for escape in ("../ledger.jsonl", "decisions/../../x", "/etc/passwd", "decisions//x"):
            with pytest.raises(ValueError):
                reader.read(escape)
    with pytest.raises(ValueError):
        Limits(max_line_bytes=-1)


def _line_deleted(root: Path, ids: list[str]) -> None:
    lines = (root / "ledger.jsonl").read_bytes().splitlines(keepends=True)
    (root / "ledger.jsonl").write_bytes(b"".join(lines[:4] + lines[5:]))


def _report_edited(root: Path, ids: list[str]) -> None:
    (root / "decisions" / ids[7] / "report.md").write_text("edited\n")


def _fifo_late(root: Path, ids: list[str]) -> None:
    target = root / "decisions" / ids[9] / "decision.json"
    target.unlink()
    os.mkfifo(target)


def _twin_late(root: Path, ids: list[str]) -> None:
    (root / "decisions" / ids[6] / "REPORT.md").write_text("# Promoted\n")


#   what was done to a 12-entry store; the pool (chunks of 3) must name exactly what one walk names
PARALLEL = [("pristine", None), ("line 5 deleted", _line_deleted), ("entry 8 report edited", _report_edited),
            ("FIFO at entry 10", _fifo_late), ("REPORT.md twin at entry 7", _twin_late)]


@pytest.fixture(scope="module")
def twelve(tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("twelve") / "store"
    store = AuditStore(root, KEY, durable=False)
    ids = []
    for i in range(12):
        d = decision("error_without_checklist", system=SYSTEMS[i % 3], commit=commit_of(f"twelve{i}"))
        store.record(d)
        ids.append(d.decision_id)
    return root, ids


@pytest.mark.parametrize("name, tamper", PARALLEL, ids=[p[0] for p in PARALLEL])
def test_the_pool_names_the_same_first_problem_as_one_walk(twelve, tmp_path, monkeypatch, name, tamper) -> None:
    from promotion_gate.audit_store import walk as ledger_walk

    root = tmp_path / "store"
    shutil.copytree(twelve[0], root)
    if tamper:
        tamper(root, twelve[1])
    monkeypatch.setattr(ledger_walk, "PARALLEL_FROM", 4)
    monkeypatch.setattr(ledger_walk, "CHUNK", 3)
    one, pool = AuditStore(root).verify(workers=1), AuditStore(root).verify(workers=2)
    assert str(pool.problem) == str(one.problem) and (one.problem is None) == (tamper is None)
    assert (pool.keys, pool.head_decision, pool.entries) == (one.keys, one.head_decision, one.entries)
