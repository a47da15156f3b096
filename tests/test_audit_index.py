"""`promotion-gate audit index` and `audit verify|schema` from the command line."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import pytest

from promotion_gate.checklists.decision import Verdict
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.notifications.index import coverage, plot_blocking_items, plot_time_to_decision
from promotion_gate import __version__
from promotion_gate.notifications.index_data import COLUMNS, render_csv, render_page, row_of
from tests.audit_support import HOSTILE, signing_key, spread_store
from tests.conftest import ROOT

KEY = signing_key("index")


def pinned_pub(root) -> str:
    """The auditor's copy of the gate's public key, outside the store."""
    from promotion_gate.checklists.attestation import public_pem

    path = root.parent / "gate.pub.pem"
    path.write_bytes(public_pem(KEY.private_key.public_key()))
    return str(path)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "promotion_gate.cli", "audit", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("index") / "store"
    decisions = spread_store(root, KEY)
    out = cli("index", str(root), "--key", pinned_pub(root))
    assert out.returncode == 0, out.stderr
    return root, decisions, (root / "index.html").read_text()


def columns_of(root) -> dict:
    text = (root / "data" / "columns.js").read_text()
    assert text.startswith("PG.columns(") and text.endswith(");\n")
    return json.loads(text[len("PG.columns("):-3])


def test_the_index_lists_every_decision_with_filter_data(indexed) -> None:
    root, decisions, html = indexed
    cols = columns_of(root)
    assert cols["rows"] == len(decisions) and all(len(cols[k]) == len(decisions) for k in ("system", "owner", "tier", "verdict", "day"))
    assert set(cols["values"]["verdict"]) == {d.verdict.value for d in decisions} and len(cols["values"]["verdict"]) >= 4
    page = (root / "data" / "page-0001.js").read_text()
    for d in decisions:
        assert f'"decisions/{d.decision_id}/report.html"' in page
    for key in ("system", "owner", "tier", "verdict"):
        assert f'id="filter-{key}"' in html
    assert 'type="date" id="filter-from"' in html and "Ledger verified" in html
    assert len(html) < 60_000  # the page is small: its rows are in data/


def test_the_table_is_exported_as_csv_and_json(indexed) -> None:
    root, decisions, html = indexed
    assert 'href="index.csv"' in html and 'href="index.json"' in html
    rows = list(csv.DictReader(io.StringIO((root / "index.csv").read_text())))
    as_json = json.loads((root / "index.json").read_text())
    assert len(rows) == len(as_json) == len(decisions)
    assert [r["id"] for r in rows] == [r["id"] for r in as_json]
    assert [r["decided_at"] for r in rows] == sorted((r["decided_at"] for r in rows), reverse=True)
    assert {r["verdict"] for r in as_json} == {d.verdict.value for d in decisions}
    # each row names the release that recorded it: the store stamps it, whatever the caller claimed
    assert {r["gate_version"] for r in rows} == {r["gate_version"] for r in as_json} == {__version__}
    assert '<th>Recorded by</th>' in html


def test_a_decision_recorded_before_releases_were_stamped_shows_not_recorded(indexed) -> None:
    root, decisions, html = indexed
    older = decisions[0].model_copy(update={"gate_version": None})
    assert row_of(older)[COLUMNS.index("gate_version")] == ""
    assert row_of(decisions[0].model_copy(update={"gate_version": "0.1.9"}))[COLUMNS.index("gate_version")] == "0.1.9"
    assert 'r[12] ? "promotion-gate " + r[12] : "not recorded"' in html


#   a cell value, how the CSV shows it (a spreadsheet must not run a formula from a manifest)
CSV_CELLS = [("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
             ("plain", "plain"), ("a=b", "a=b")]


@pytest.mark.parametrize("value, shown", CSV_CELLS)
def test_csv_cells_never_run_as_formulas(value, shown) -> None:
    row = (value,) * len(COLUMNS)
    assert next(csv.reader(io.StringIO(render_csv([row]).splitlines()[1]))) == [shown] * len(COLUMNS)


def test_data_scripts_cannot_end_a_script_early() -> None:
    text = render_page(1, [("</script><script>alert(1)</script>",) * len(COLUMNS)])
    assert "</script>" not in text and "<" not in text


def test_the_index_is_self_contained(indexed) -> None:
    html = indexed[2]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html  # the page may not fetch anything
    assert html.count("<svg") == 3


def test_hostile_text_is_escaped_in_the_index(indexed) -> None:
    html = indexed[2]
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # the page's own filter script


def test_the_coverage_matrix_shows_each_systems_last_promotion(indexed) -> None:
    _, decisions, html = indexed
    cov = coverage(decisions)
    assert set(cov["last"]) == {"helpdesk-summarizer", "support-assistant"}  # loan-prescreener was never promoted
    assert "never promoted" in html
    support = cov["cells"]["support-assistant"]
    assert support["EU-AI-ACT:Art.14"] == "waived"  # human review was waived at its last promotion
    assert support["EU-AI-ACT:Art.15"] == "pass"
    assert "NIST-AI-RMF:MEASURE-4.2" not in support  # the regression item was not applicable: not evidenced


def test_the_plots_count_blocking_items_and_waits(indexed) -> None:
    _, decisions, _ = indexed
    counts = [(item, n) for _, item, n in plot_blocking_items(decisions)["bars"]]
    assert len(counts) == 10 and counts[0][1] == 3 and dict(counts)["PG-FALLBACK-001"] == 3
    assert [n for _, n in counts] == sorted((n for _, n in counts), reverse=True)
    assert "PG-EVAL-001" in {item for _, item, _ in plot_blocking_items(decisions, top=20)["bars"]}
    waits = {label: n for _, label, n in plot_time_to_decision(decisions)["bars"]}
    assert sum(waits.values()) == len(decisions) and waits["1-3 d"] == 1


def test_the_index_flags_a_store_that_does_not_verify(tmp_path) -> None:
    decisions = spread_store(tmp_path / "s", KEY, hostile=False)
    report = tmp_path / "s" / "decisions" / decisions[2].decision_id / "report.md"
    report.write_text(report.read_text() + "\nedited\n")
    out = cli("index", str(tmp_path / "s"))
    assert out.returncode == 0 and "does not verify" in out.stderr
    html = (tmp_path / "s" / "index.html").read_text()
    assert "Ledger verification FAILED" in html and "report.md was changed" in html


def test_verify_prints_the_head_and_accepts_it_as_anchor(indexed) -> None:
    root = indexed[0]
    head = AuditStore(root).head()
    key = ("--key", pinned_pub(root))
    assert cli("verify", str(root)).returncode == 3  # untrusted: no pinned key
    out = cli("verify", str(root), *key)
    assert out.returncode == 0 and f"head {head}" in out.stdout and "OK:" in out.stdout
    anchored = cli("verify", str(root), *key, "--anchor", head)
    assert anchored.returncode == 0 and "anchor: the head" in anchored.stdout
    older = AuditStore(root).lines()
    from promotion_gate.checklists.ledger import line_hash

    ancestor = line_hash(older[3])
    assert cli("verify", str(root), *key, "--anchor", ancestor).returncode == 1
    assert cli("verify", str(root), *key, "--anchor", ancestor, "--allow-newer").returncode == 0
    assert cli("verify", str(root), "--anchor", "not-a-hash").returncode == 2


def test_verify_with_the_right_pinned_key_passes_and_a_stranger_fails(indexed, tmp_path) -> None:
    root = indexed[0]
    pinned = root / "keys" / f"{KEY.key_id}.pub.pem"
    assert cli("verify", str(root), "--key", str(pinned)).returncode == 0
    from promotion_gate.checklists.attestation import public_pem

    stranger = tmp_path / "stranger.pub.pem"
    stranger.write_bytes(public_pem(signing_key("stranger").private_key.public_key()))
    out = cli("verify", str(root), "--key", str(stranger))
    assert out.returncode == 1 and ("forged signature" in out.stdout or "untrusted" in out.stdout) and "seq 1" in out.stdout
    assert cli("verify", str(root), "--key", str(tmp_path / "absent.pem")).returncode == 2


def test_schema_prints_the_decision_json_schema_and_index_publishes_it(indexed) -> None:
    out = cli("schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert schema["$id"].endswith("decision-v1.json") and schema["title"].startswith("promotion-gate decision")
    assert (indexed[0] / "decision.schema.json").read_text() == out.stdout


def test_the_hostile_decision_is_in_the_store(indexed) -> None:
    assert any(d.checklist and d.checklist.owner == HOSTILE for d in indexed[1])


def written_index(root, data, problems) -> dict:
    """Every file the index writes, for a fixed time and verification (what the data decides, nothing else)."""
    from datetime import datetime, timezone

    from promotion_gate.audit_store.index_build import write_index

    write_index(root, data, generated_at=datetime(2026, 12, 1, tzinfo=timezone.utc),
                verification={"ok": True, "summary": "fixed", "head": "-", "entries": 0, "states": []})
    files = {name: (root / name).read_bytes() for name in ("index.html", "inventory.html", "index.csv", "index.json")}
    files |= {f"data/{p.name}": p.read_bytes() for p in sorted((root / "data").iterdir())}
    return files | {"problems": repr(problems).encode()}


@pytest.mark.parametrize("workers", [1, 2])
def test_the_index_parsed_by_the_walk_is_the_one_read_afresh_byte_for_byte(tmp_path, monkeypatch, workers) -> None:
    """audit index parses each decision.json in the verify walk (the bytes it hashed), in chunks on a pool:
    the pages are exactly those a serial read of every decision writes."""
    from promotion_gate.audit_store import walk
    from promotion_gate.audit_store.index_build import gather, read_index_data

    root = tmp_path / "store"
    spread_store(root, KEY)
    monkeypatch.setattr(walk, "PARALLEL_FROM", 1)
    monkeypatch.setattr(walk, "INDEX_CHUNK", 3)  # 10 decisions: four chunks, merged in ledger order
    v = AuditStore(root).verify(trusted={KEY.key_id: KEY.private_key.public_key()}, workers=workers, collect_index=True)
    assert v.ok and v.index is not None and len(v.index[0]) == (1 if workers == 1 else 4)
    fused = written_index(root, gather(v.index[0]), v.index[1])
    serial = written_index(root, *read_index_data(root))
    assert fused.keys() == serial.keys() and len(fused) > 6
    assert [name for name in fused if fused[name] != serial[name]] == []


def test_a_decision_that_is_not_a_decision_is_named_by_the_walk_as_by_the_serial_read(tmp_path, monkeypatch) -> None:
    """A decision.json that is not a Decision is a named problem (its line), whichever path parses it; a sound store has none."""
    from promotion_gate.audit_store import walk
    from promotion_gate.audit_store.index_build import add_decision, read_index_data
    from promotion_gate.notifications.index_data import IndexData

    data, problems = IndexData(), []
    add_decision(data, problems, 7, b'{"decision_id": "x"}')
    add_decision(data, problems, 8, b"not json")
    assert problems == ["line 7: ValidationError", "line 8: ValidationError"] and data.rows == []
    root = tmp_path / "store"
    spread_store(root, KEY, hostile=False)
    monkeypatch.setattr(walk, "PARALLEL_FROM", 1)
    monkeypatch.setattr(walk, "INDEX_CHUNK", 4)
    v = AuditStore(root).verify(trusted={KEY.key_id: KEY.private_key.public_key()}, workers=2, collect_index=True)
    assert v.index[1] == read_index_data(root)[1] == []


def test_a_tampered_store_is_indexed_in_full_and_the_edit_named(tmp_path) -> None:
    """The walk stops at the edited decision: the index then reads every decision again, lists them all, and names the edit."""
    decisions = spread_store(tmp_path / "s", KEY, hostile=False)
    target = tmp_path / "s" / "decisions" / decisions[4].decision_id / "decision.json"
    target.write_bytes(target.read_bytes().replace(b'"reasons": ', b'"reasons":  ', 1))
    v = AuditStore(tmp_path / "s").verify(trusted={KEY.key_id: KEY.private_key.public_key()}, collect_index=True)
    assert v.problem is not None and v.problem.kind.value == "edited" and v.index is None
    out = cli("index", str(tmp_path / "s"), "--key", pinned_pub(tmp_path / "s"))
    assert out.returncode == 0 and "does not verify" in out.stderr and "decision.json was changed" in out.stderr
    assert columns_of(tmp_path / "s")["rows"] == len(decisions)
    assert "decision.json was changed" in (tmp_path / "s" / "index.html").read_text()
