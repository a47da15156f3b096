"""Inspect AI log parser: .json and zipped .eval logs, versions 1 and 2.

Fixture shapes: UKGovernmentBEIS/inspect_ai src/inspect_ai/log/_log.py (EvalLog: version,
status, eval{task, model, created, dataset{name, samples}, packages}, results{total_samples,
completed_samples, scores[{name, scorer, reducer, scored_samples, metrics{accuracy{name, value}}}]};
EvalResults.convert_scorer_to_scorers for the version 1 {scorer, metrics} shape), a real log in
tests/log/test_list_logs/ of that repository, and log/_recorders/eval.py for the .eval zip
(header.json, _journal/start.json, samples/<id>_epoch_<n>.json, summaries.json,
reductions.json; zstd members; the first layout with start.json + results.json at the root).
The .eval fixtures are built by fixtures/evidence/make_inspect_eval.py.
"""

import io
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from promotion_gate.checklists.evidence import inspect_ai, read_evidence
from promotion_gate.checklists.evidence.base import EvidenceError

if sys.version_info >= (3, 14):
    import zipfile
else:
    from backports.zstd import zipfile

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
V2_METRICS = {
    "model_graded_fact/accuracy": (0.8, 10, 8, 2, 0.13333333333333333),
    "model_graded_fact/stderr": (0.13333333333333333, 10, None, None, None),
    "includes/accuracy": (0.6, 10, 6, 4, None),
    "pass_rate": (0.8, 10, 8, 2, None),
}


def parse(name: str):
    with (FIXTURES / name).open("rb") as f:
        return read_evidence("inspect", f)[0]


def parse_bytes(data: bytes):
    return read_evidence("inspect", io.BytesIO(data))[0]


def row(m):
    return (m.value, m.n, m.passed, m.failed, m.stderr)


def eval_zip(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def header() -> dict:
    return json.loads((FIXTURES / "inspect__eval_header.json").read_text())


@pytest.mark.parametrize(
    "name, expected",
    [
        ("inspect__v2_accuracy_0.8.json", V2_METRICS),
        ("inspect__nan_in_a_sample_only_accuracy_0.8.json", V2_METRICS),
        ("inspect__eval_zstd_accuracy_0.8.eval", V2_METRICS),
        ("inspect__eval_legacy_root_layout_accuracy_0.8.eval", V2_METRICS),
        ("inspect__eval_header.json", V2_METRICS),
        ("inspect__v1_single_scorer_accuracy_0.75.json", {
            "model_graded_fact/accuracy": (0.75, None, None, None, None),
            "model_graded_fact/bootstrap_std": (0.0952, None, None, None, None),
        }),
    ],
)
def test_metrics_per_fixture(name, expected):
    parsed = parse(name)
    assert {k: row(m) for k, m in parsed.metrics.items()} == expected
    assert parsed.format == "inspect"


def test_provenance():
    prov = parse("inspect__eval_zstd_accuracy_0.8.eval").provenance
    assert (prov.tool, prov.tool_version, prov.model, prov.dataset) == ("inspect_ai", "0.3.88", "openai/gpt-4o-2024-08-06", "security_guide")
    assert prov.created_at == datetime(2025, 3, 3, 9, 12, 45, tzinfo=timezone.utc)
    v1 = parse("inspect__v1_single_scorer_accuracy_0.75.json").provenance
    assert (v1.tool_version, v1.model, v1.created_at) == ("0.3.2", "openai/gpt-4", datetime(2024, 4, 10, 10, 1, 2))


@pytest.mark.parametrize(
    "name, reason",
    [
        ("inspect__nan_score.json", "scorer model_graded_fact metric accuracy is nan, not a finite number"),
        ("inspect__bad__status_error.json", "the eval's status is 'error', not 'success': RateLimitError('Error code: 429')"),
        ("inspect__bad__eval_unfinished.eval", "no header.json: the eval has not finished"),
        ("lm_eval__v0.4_hellaswag_acc_0.6.json", "no 'eval' object: not an Inspect eval log"),
        ("junit__pytest_with_xfail.xml", "Inspect log is not valid JSON"),
    ],
)
def test_bad_files_are_refused_with_the_reason(name, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse(name)


def _with(**changes) -> bytes:
    log = header()
    for path, value in changes.items():
        node = log
        *parents, last = path.split("__")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    return json.dumps(log).encode()


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "Inspect log is empty"),
        (_with(status="cancelled"), "status is 'cancelled'"),
        (_with(status="started", results=None), "status is 'started'"),
        (_with(version=3), "log version 3 is not one this parser knows"),
        (_with(results__scores=[]), "the log has no scores"),
        (_with(results=None), "the log has no results"),
        (_with(results__scores__0__metrics__stderr__value=float("inf")), "metric stderr is inf"),
        (_with(results__scores__1__metrics__accuracy__value="high"), "metric accuracy has no numeric value ('high')"),
        (_with(results__scores__0__name=None), "has no name or metrics"),
        (_with(eval__created="last tuesday"), "eval.created 'last tuesday' is not an ISO 8601"),
        (b'{"eval": ' * 30_000 + b"1" + b"}" * 30_000, "nested too deeply"),
        (b"PK\x03\x04 not really a zip", "not a readable .eval zip: BadZipFile"),
        (eval_zip({"samples/1_epoch_1.json": b"{}"}), "the zip has no header.json: not an Inspect .eval log"),
        (eval_zip({"header.json": b'{"version": 2, "status": "success", "eval": '}), "header.json in the .eval log is not valid JSON"),
        (eval_zip({"header.json": b"\xff\xfe"}), "header.json in the .eval log is not UTF-8"),
    ],
)
def test_malformed_bytes_are_refused(data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(data)


def test_duplicate_score_names_are_told_apart_by_reducer():
    log = header()
    log["results"]["scores"][1]["name"] = "model_graded_fact"
    metrics = parse_bytes(json.dumps(log).encode()).metrics
    assert "model_graded_fact[mean]/accuracy" in metrics and "model_graded_fact/accuracy" in metrics


def test_without_scored_samples_n_is_completed_samples():
    log = header()
    for score in log["results"]["scores"]:
        del score["scored_samples"]
    log["results"]["completed_samples"] = 9
    metrics = parse_bytes(json.dumps(log).encode()).metrics
    assert row(metrics["model_graded_fact/accuracy"])[:4] == (0.8, 9, 7, 2)
    assert row(metrics["pass_rate"]) == (7 / 9, 9, 7, 2, None)  # the rate of the rounded counts


def test_zip_bomb_member_is_refused_by_its_real_size(monkeypatch):
    monkeypatch.setattr(inspect_ai, "MAX_MEMBER_BYTES", 1 << 20)
    bomb = b'{"version": 2, "pad": "' + b" " * (4 << 20) + b'"}'
    with pytest.raises(EvidenceError, match="over the 1 MiB cap"):
        parse_bytes(eval_zip({"header.json": bomb}))


def test_zip_bomb_with_a_lying_size_stops_at_the_declared_size(monkeypatch):
    monkeypatch.setattr(inspect_ai, "MAX_MEMBER_BYTES", 1 << 20)
    data = bytearray(eval_zip({"header.json": b'{"pad": "' + b" " * (4 << 20) + b'"}'}))
    real = (4 << 20) + 11
    for at in (22, data.rfind(b"PK\x01\x02") + 24):  # uncompressed size in local and central headers
        assert int.from_bytes(data[at:at + 4], "little") == real
        data[at:at + 4] = (100).to_bytes(4, "little")
    with pytest.raises(EvidenceError, match="Bad CRC-32 for file 'header.json'"):  # read stopped at 100 bytes
        parse_bytes(bytes(data))


def test_compression_ratio_is_capped():
    bomb = b'{"pad": "' + b" " * (8 << 20) + b'"}'
    with pytest.raises(EvidenceError, match="expands more than 500:1"):
        parse_bytes(eval_zip({"header.json": bomb}))


def test_a_huge_central_directory_is_refused(monkeypatch):
    monkeypatch.setattr(inspect_ai, "MAX_DIRECTORY_BYTES", 1000)
    members = {f"samples/{i}_epoch_1.json": b"{}" for i in range(100)}
    with pytest.raises(EvidenceError, match="zip directory is .* over the"):
        parse_bytes(eval_zip({**members, "header.json": json.dumps(header()).encode()}))


def test_deflate_and_zstd_eval_logs_read_alike():
    members = {"header.json": json.dumps(header()).encode()}
    for compression in (zipfile.ZIP_DEFLATED, zipfile.ZIP_ZSTANDARD, zipfile.ZIP_STORED):
        assert row(parse_bytes(eval_zip(members, compression)).metrics["pass_rate"]) == (0.8, 10, 8, 2, None)
