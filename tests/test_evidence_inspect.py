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
HEADER_ONLY = {  # no per-sample records: no n, so no counts and no pass_rate
    "model_graded_fact/accuracy": (0.8, None, None, None, 0.13333333333333333),
    "model_graded_fact/stderr": (0.13333333333333333, None, None, None, None),
    "includes/accuracy": (0.6, None, None, None, None),
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
        ("inspect__eval_header.json", HEADER_ONLY),
        ("inspect__v1_single_scorer_accuracy_0.75.json", {
            "model_graded_fact/accuracy": (0.75, 4, 3, 1, None),
            "model_graded_fact/bootstrap_std": (0.0952, 4, None, None, None),
            "pass_rate": (0.75, 4, 3, 1, None),
        }),
    ],
)
def test_metrics_per_fixture(name, expected):
    parsed = parse(name)
    assert {k: row(m) for k, m in parsed.metrics.items()} == expected
    assert parsed.format == "inspect"
    assert len(parsed.groups) == 1 and parsed.groups[0].metrics == parsed.metrics
    assert parsed.notes == (() if expected is not HEADER_ONLY else (inspect_ai.NO_SAMPLES_NOTE,))


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
        (b'{"eval": ' * 30_000 + b"1" + b"}" * 30_000, "nested deeper than 512 levels"),
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


def test_without_per_sample_records_completed_samples_is_not_taken_for_n():
    log = header()
    for score in log["results"]["scores"]:
        del score["scored_samples"]
    log["results"]["completed_samples"] = 9
    parsed = parse_bytes(json.dumps(log).encode())
    assert row(parsed.metrics["model_graded_fact/accuracy"])[:4] == (0.8, None, None, None)
    assert "pass_rate" not in parsed.metrics and parsed.notes == (inspect_ai.NO_SAMPLES_NOTE,)


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
        assert row(parse_bytes(eval_zip(members, compression)).metrics["includes/accuracy"]) == (0.6, None, None, None, None)


# --- unique samples, the log's own totals, older shapes, hostile numbers -------------------------


def log_with_samples(ids=10, epochs=1, correct=8, **results) -> dict:
    log = header()
    log["eval"]["config"]["epochs"] = epochs
    log["samples"] = [{"id": i, "epoch": e, "scores": {"model_graded_fact": {"value": "C" if i <= correct else "I"},
                                                      "includes": {"value": "C" if i <= 6 else "I"}}}  # the header's 0.6
                      for i in range(1, ids + 1) for e in range(1, epochs + 1)]
    log["results"].update(total_samples=ids * epochs, completed_samples=ids * epochs, **results)
    for score in log["results"]["scores"]:
        score["scored_samples"] = ids
    log["results"]["scores"][1]["metrics"]["accuracy"]["value"] = min(ids, 6) / ids  # includes: C for ids 1..6
    return log


def as_bytes(log: dict) -> bytes:
    return json.dumps(log).encode()


def test_three_epochs_over_ten_samples_is_n_10():
    metrics = parse_bytes(as_bytes(log_with_samples(ids=10, epochs=3))).metrics
    assert row(metrics["model_graded_fact/accuracy"])[:4] == (0.8, 10, 8, 2)
    assert {m.n for m in metrics.values()} == {10}


def test_three_epochs_in_an_eval_zip_is_n_10_from_the_reductions():
    log = log_with_samples(ids=10, epochs=3)
    samples = log.pop("samples")
    members = {f"samples/{s['id']}_epoch_{s['epoch']}.json": json.dumps(s).encode() for s in samples}
    reductions = [{"scorer": "model_graded_fact", "samples": [{"value": float(i <= 8), "sample_id": i} for i in range(1, 11)]},
                  {"scorer": "includes", "reducer": "mean", "samples": [{"value": float(i <= 6), "sample_id": i} for i in range(1, 11)]}]
    members.update({"header.json": as_bytes(log), "reductions.json": json.dumps(reductions).encode()})
    metrics = parse_bytes(eval_zip(members)).metrics
    assert row(metrics["pass_rate"]) == (0.8, 10, 8, 2, None)


def test_an_eval_zip_without_reductions_or_summaries_has_records_but_no_n():
    log = log_with_samples(ids=4, epochs=2, correct=4)
    samples = log.pop("samples")
    members = {f"samples/{s['id']}_epoch_{s['epoch']}.json": b"{}" for s in samples}
    for score in log["results"]["scores"]:
        del score["scored_samples"]
    members["header.json"] = as_bytes(log)
    # member names give records (8) but not which scorer scored them: no n per scorer
    assert row(parse_bytes(eval_zip(members)).metrics["includes/accuracy"])[:2] == (1.0, None)


def _mutate(log, fn):
    fn(log)
    return as_bytes(log)


@pytest.mark.parametrize(
    "data, reason",
    [
        (_mutate(log_with_samples(), lambda l: l["results"].update(completed_samples=11)),
         "results.completed_samples 11 is more than total_samples 10"),
        (_mutate(log_with_samples(), lambda l: l["results"].update(completed_samples=9)),
         "results.completed_samples is 9 but 10 sample records hold scores"),
        (_mutate(log_with_samples(), lambda l: l["samples"].pop()),
         "results.completed_samples is 10 but 9 sample records hold scores"),
        (_mutate(log_with_samples(), lambda l: l["results"].update(total_samples=9, completed_samples=9)),
         "the log holds 10 sample records but results.total_samples is 9"),
        (_mutate(log_with_samples(), lambda l: l["results"]["scores"][0].update(scored_samples=200)),
         "scorer model_graded_fact: scored_samples is 200 but the per-sample records hold 10 scored samples"),
        (_mutate(log_with_samples(epochs=3), lambda l: l["results"]["scores"][0].update(scored_samples=30)),
         "scorer model_graded_fact: scored_samples is 30 but the per-sample records hold 10 scored samples"),
        (_mutate(log_with_samples(), lambda l: l["samples"].append(dict(l["samples"][0]))),
         "samples[11]: sample '1' epoch 1 appears twice"),
        (_mutate(log_with_samples(), lambda l: l["samples"][0].update(id=None)), "samples[1] has no usable id"),
        (_mutate(log_with_samples(), lambda l: l["results"]["scores"][0]["metrics"]["accuracy"].update(value=1.5)),
         "scorer model_graded_fact metric accuracy is 1.5: a rate outside [0, 1]"),
        (_mutate(log_with_samples(), lambda l: l["results"]["scores"][0]["metrics"]["accuracy"].update(value=-0.1)),
         "scorer model_graded_fact metric accuracy is -0.1: a rate outside [0, 1]"),
        (_mutate(log_with_samples(), lambda l: l["results"].update(completed_samples=2**70)),
         "results.completed_samples is 1180591620717411303424, not a non-negative whole number below 2**63"),
        (_mutate(log_with_samples(), lambda l: l.update(reductions=[{"samples": []}])), "reductions[1] has no scorer or samples"),
    ],
)
def test_logs_that_disagree_with_themselves_are_refused(data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(data)


def test_a_cut_eval_zip_member_list_is_caught_by_completed_samples():
    log = log_with_samples(ids=10)
    samples = log.pop("samples")[:9]  # one sample member lost
    members = {f"samples/{s['id']}_epoch_{s['epoch']}.json": b"{}" for s in samples}
    members["header.json"] = as_bytes(log)
    with pytest.raises(EvidenceError, match=re.escape("results.completed_samples is 10 but the log holds 9 sample records")):
        parse_bytes(eval_zip(members))
    members["summaries.json"] = json.dumps(samples).encode()
    with pytest.raises(EvidenceError, match=re.escape("results.completed_samples is 10 but 9 sample records hold scores")):
        parse_bytes(eval_zip(members))


def test_the_older_results_scorers_shape_is_read():
    log = log_with_samples()
    log["results"]["scorers"] = log["results"].pop("scores")
    assert row(parse_bytes(as_bytes(log)).metrics["pass_rate"]) == (0.8, 10, 8, 2, None)


def test_the_model_is_one_group_split_at_the_first_slash():
    parsed = parse_bytes(as_bytes(log_with_samples()))
    assert [(g.provider, g.model, g.version, g.raw) for g in parsed.groups] == [
        ("openai", "gpt-4o-2024-08-06", None, "openai/gpt-4o-2024-08-06")]
    log = log_with_samples()
    log["eval"]["model"] = "hf/meta-llama/Llama-3.1-8B"
    assert (lambda g: (g.provider, g.model))(parse_bytes(as_bytes(log)).groups[0]) == ("hf", "meta-llama/Llama-3.1-8B")
    log["eval"]["model"] = "mockllm"
    assert (lambda g: (g.provider, g.model))(parse_bytes(as_bytes(log)).groups[0]) == (None, "mockllm")


@pytest.mark.parametrize(
    "value, reason",
    [
        ("NaN", "metric accuracy is nan, not a finite number"),
        ("Infinity", "metric accuracy is inf, not a finite number"),
        ("-Infinity", "metric accuracy is -inf, not a finite number"),
        ("1e999", "metric accuracy is inf, not a finite number"),
        ("1" + "0" * 5000, "not usable JSON: Exceeds the limit (4300 digits)"),
    ],
)
def test_hostile_numbers_are_refused(value, reason):
    text = as_bytes(log_with_samples()).replace(b'"value": 0.8', b'"value": ' + value.encode(), 1)
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(text)


def test_a_byte_order_mark_changes_nothing():
    data = (FIXTURES / "inspect__v2_accuracy_0.8.json").read_bytes()
    assert parse_bytes(b"\xef\xbb\xbf" + data) == parse_bytes(data)


def test_a_json_log_past_the_cap_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(inspect_ai, "MAX_JSON_BYTES", 1000)
    with pytest.raises(EvidenceError, match=re.escape("Inspect .json log is larger than the 0 MiB this format is read whole up to; write the log as .eval")):
        parse("inspect__v2_accuracy_0.8.json")


def test_a_json_log_cannot_claim_the_member_list_of_a_zip():
    log = log_with_samples()
    log.pop("samples")
    log["_summaries"] = [{"id": i, "scores": {"model_graded_fact": {}}} for i in range(1, 11)]
    log["_sample_members"] = [[str(i), "1"] for i in range(1, 11)]
    metrics = parse_bytes(as_bytes(log)).metrics
    assert metrics["model_graded_fact/accuracy"].n is None and "pass_rate" not in metrics


# --- the stated accuracy against the per-sample scores ---------------------------------------------


def _mutate_log(log, accuracy):
    log["results"]["scores"][0]["metrics"]["accuracy"]["value"] = accuracy
    return log


def all_incorrect(n=200, accuracy=0.99) -> dict:
    log = log_with_samples(ids=n, correct=0)
    for sample in log["samples"]:
        sample["scores"]["includes"]["value"] = "C" if sample["id"] <= n * 0.6 else "I"
    log["results"]["scores"][0]["metrics"]["accuracy"]["value"] = accuracy
    return log


def set_values(log, values, scorer="model_graded_fact"):
    for sample, value in zip(log["samples"], values):
        sample["scores"][scorer]["value"] = value
    return log


def eval_with_reductions(log, reduced) -> bytes:
    samples = log.pop("samples")
    members = {f"samples/{s['id']}_epoch_{s['epoch']}.json": json.dumps(s).encode() for s in samples}
    reductions = [{"scorer": "model_graded_fact", "samples": [{"value": v, "sample_id": s["id"]} for s, v in zip(samples, reduced)]},
                  {"scorer": "includes", "reducer": "mean",
                   "samples": [{"value": float(s["scores"]["includes"]["value"] == "C"), "sample_id": s["id"]} for s in samples]}]
    members.update({"header.json": as_bytes(log), "reductions.json": json.dumps(reductions).encode()})
    return eval_zip(members)


MISSTATED = [
    ("200 samples all scored I, accuracy stated 0.99 (the review's 0.990)", as_bytes(all_incorrect()),
     "scorer model_graded_fact: accuracy is 0.99 but its 200 per-sample scores give 0 "
     "(value_to_float: C 1, P 0.5, I and N 0, numbers as they are)"),
    ("one correct answer too many claimed", as_bytes(_mutate_log(log_with_samples(), accuracy=0.9)),
     "scorer model_graded_fact: accuracy is 0.9 but its 10 per-sample scores give 0.8"),
    ("the second scorer misstated", _mutate(log_with_samples(), lambda l: l["results"]["scores"][1]["metrics"]["accuracy"].update(value=1.0)),
     "scorer includes: accuracy is 1.0 but its 10 per-sample scores give 0.6"),
    ("one unreadable (NaN) sample to hide 199 wrong answers", as_bytes(set_values(all_incorrect(), [float("nan")])),
     "scorer model_graded_fact: accuracy is 0.99 but its 200 per-sample scores give between 0 and 0.005 (1 of them not readable)"),
    ("partial credit counted as full", as_bytes(set_values(_mutate_log(log_with_samples(ids=4, correct=0), accuracy=1.0), ["P"] * 4)),
     "scorer model_graded_fact: accuracy is 1.0 but its 4 per-sample scores give 0.5"),
    ("numeric scores", as_bytes(set_values(_mutate_log(log_with_samples(ids=4, correct=0), accuracy=0.75), [0.25, 0.25, 0.5, 0])),
     "scorer model_graded_fact: accuracy is 0.75 but its 4 per-sample scores give 0.25"),
    ("three epochs of I, no reductions", as_bytes(_mutate_log(log_with_samples(ids=10, epochs=3, correct=0), accuracy=0.8)),
     "scorer model_graded_fact: accuracy is 0.8 but its 10 per-sample scores give 0"),
    (".eval: reductions all 0, accuracy stated 0.99", eval_with_reductions(all_incorrect(), [0.0] * 200),
     "scorer model_graded_fact: accuracy is 0.99 but its 200 per-sample scores give 0"),
    (".eval: summaries all I, no reductions", None, "scorer model_graded_fact: accuracy is 0.99 but its 200 per-sample scores give 0"),
]


def _summaries_only() -> bytes:
    log = all_incorrect()
    samples = log.pop("samples")
    members = {f"samples/{s['id']}_epoch_{s['epoch']}.json": b"{}" for s in samples}
    members.update({"header.json": as_bytes(log), "summaries.json": json.dumps(samples).encode()})
    return eval_zip(members)


MISSTATED[-1] = (MISSTATED[-1][0], _summaries_only(), MISSTATED[-1][2])


@pytest.mark.parametrize("case, data, reason", MISSTATED, ids=[m[0] for m in MISSTATED])
def test_an_accuracy_its_samples_contradict_is_refused(case, data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(data)


@pytest.mark.parametrize(
    "values, accuracy",
    [
        (["C", "I", "P", "N"], 0.375),
        (["yes", "No", "TRUE", "false"], 0.5),
        (["1.0", "0.5", 0, True], 0.625),
        ([1, 0.5, False, "unreadable"], 0.375),  # Inspect's value_to_float counts an unreadable value 0
        ([None, "C", "C", "I"], 0.5),  # null could be anything in [0, 1]: 0.5 lies within [0.5, 0.75]
        ([{"model_graded_fact": "C"}, "C", "C", "I"], 0.75),  # a dict value read at the score's name
    ],
)
def test_per_sample_values_are_read_as_inspect_reads_them(values, accuracy):
    log = set_values(_mutate_log(log_with_samples(ids=4, correct=0), accuracy=accuracy), values)
    assert parse_bytes(as_bytes(log)).metrics["model_graded_fact/accuracy"].value == accuracy


def test_three_epochs_are_reduced_by_their_mean_before_the_accuracy():
    log = _mutate_log(log_with_samples(ids=2, epochs=3, correct=0), accuracy=0.5)
    set_values(log, ["C", "C", "I", "C", "I", "I"])  # sample 1: 2/3, sample 2: 1/3
    assert parse_bytes(as_bytes(log)).metrics["model_graded_fact/accuracy"].value == 0.5


def test_an_accuracy_within_rounding_is_read():
    log = _mutate_log(log_with_samples(ids=3, correct=2), accuracy=0.6666666666666666)
    assert parse_bytes(as_bytes(log)).metrics["model_graded_fact/accuracy"].value == pytest.approx(2 / 3)


# --- epochs reduced by another reducer: the accuracy must lie within what the epochs allow ------------


def epochs_log(reducer, accuracy, values, n=100, epochs=2):
    """n samples x epochs, sample i's epoch values ``values(i)``, one scorer naming ``reducer``, no reductions."""
    log = log_with_samples(ids=n, epochs=epochs, correct=0)
    for sample in log["samples"]:
        sample["scores"]["model_graded_fact"]["value"] = values(sample["id"])[sample["epoch"] - 1]
        sample["scores"]["includes"]["value"] = "C" if sample["id"] <= n * 0.6 else "I"
    log["results"]["scores"][1]["metrics"]["accuracy"]["value"] = 0.6
    score = log["results"]["scores"][0]
    score["metrics"]["accuracy"]["value"] = accuracy
    if reducer is not None:
        score["reducer"] = reducer
    return as_bytes(log)


REDUCED = [
    ("100 x 2 epochs all I, reducer max, accuracy 1.0 (the review's a6)", epochs_log("max", 1.0, lambda i: ["I", "I"]),
     "scorer model_graded_fact: accuracy is 1.0 but its 100 per-sample scores (epochs reduced by max) give 0"),
    ("reducer pass_at_2 over all I", epochs_log("pass_at_2", 1.0, lambda i: ["I", "I"]),
     "scorer model_graded_fact: accuracy is 1.0 but its 100 per-sample scores (epochs reduced by pass_at_2) give 0"),
    ("reducer at_least_2 over all I", epochs_log("at_least_2", 0.5, lambda i: ["I", "I"]),
     "(epochs reduced by at_least_2) give 0"),
    ("a custom reducer over all I", epochs_log("my_reducer", 0.9, lambda i: ["I", "I"]),
     "(epochs reduced by my_reducer) give 0"),
    ("max over half the samples right once: at most 0.5", epochs_log("max", 0.9, lambda i: ["C", "I"] if i <= 50 else ["I", "I"]),
     "(epochs reduced by max) give between 0 and 0.5"),
    ("median over all C cannot be below 1", epochs_log("median", 0.2, lambda i: ["C", "C"]),
     "(epochs reduced by median) give 1"),
]


@pytest.mark.parametrize("case, data, reason", REDUCED, ids=[r[0] for r in REDUCED])
def test_an_accuracy_outside_what_its_epochs_allow_is_refused_whatever_the_reducer(case, data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(data)


@pytest.mark.parametrize(
    "reducer, accuracy, values",
    [
        ("max", 1.0, lambda i: ["C", "I"]),  # each sample right once: max 1
        ("max", 0.0, lambda i: ["I", "I"]),
        ("mode", 0.5, lambda i: ["C", "I"]),
        ("pass_at_2", 1.0, lambda i: ["I", "C"]),
        ("at_least_2", 1.0, lambda i: [0.5, 0.5]),  # a threshold reducer may give 1 over values below 1
        ("at_least_2", 0.0, lambda i: [0.5, 0.5]),  # or 0 over values above 0
        ("median", 0.25, lambda i: [0.25, 0.25]),
    ],
)
def test_an_accuracy_within_what_its_epochs_allow_is_read(reducer, accuracy, values):
    assert parse_bytes(epochs_log(reducer, accuracy, values)).metrics["model_graded_fact/accuracy"].value == accuracy


# --- reductions against the sample records; counts against total_samples ---------------------------


def reduction(ids, value, scorer="model_graded_fact", reducer=None) -> dict:
    """One ``reductions`` entry: sample id -> ``value(id)`` for every id in ``ids``."""
    entry = {"scorer": scorer, "samples": [{"value": value(i), "sample_id": i} for i in ids]}
    return {**entry, "reducer": reducer} if reducer else entry


def reduced_log(ids=100, correct=60, accuracy=1.0, reductions=(), epochs=1, **score) -> dict:
    log = _mutate_log(log_with_samples(ids=ids, correct=correct, epochs=epochs), accuracy)
    log["results"]["scores"][0].update(score)
    log["reductions"] = list(reductions)
    return log


def as_eval(log, summaries=False, drop=()) -> bytes:
    """``log`` as a .eval zip: sample members (empty, as the parser reads only their names), the
    reductions as reductions.json, the samples as summaries.json if asked; ``drop``: results keys removed."""
    samples = log.pop("samples", [])
    reductions = log.pop("reductions", None)
    for key in drop:
        log["results"].pop(key, None)
    members = {f"samples/{s['id']}_epoch_{s['epoch']}.json": b"{}" for s in samples}
    members["header.json"] = as_bytes(log)
    if reductions is not None:
        members["reductions.json"] = json.dumps(reductions).encode()
    if summaries:
        members["summaries.json"] = json.dumps(summaries if isinstance(summaries, list) else samples).encode()
    return eval_zip(members)


def _summaries_beyond_members() -> bytes:
    log = reduced_log(ids=10, correct=10, scored_samples=400)
    log["results"]["scores"] = log["results"]["scores"][:1]
    fake = [{"id": i, "epoch": 1, "scores": {"model_graded_fact": {"value": "C"}}} for i in range(1, 401)]
    return as_eval(log, summaries=fake, drop=("completed_samples", "total_samples"))


def _summary_twice() -> bytes:
    log = reduced_log(ids=10, correct=8, accuracy=0.8)
    return as_eval(log, summaries=log["samples"] + log["samples"][:1], drop=("completed_samples",))


def _header_with(**score) -> dict:
    log = header()
    log["results"]["scores"][0].update(score)
    log["results"]["total_samples"] = log["results"]["completed_samples"] = 40
    return log


RECORDS = [
    # the review's h9-3a: 100 records, 60 C and 40 I; the reductions claim all 100 C and accuracy 1.0
    ("reductions all C over 60 C / 40 I records", as_bytes(reduced_log(reductions=[reduction(range(1, 101), lambda i: "C")])),
     "reductions[1] (scorer model_graded_fact): sample '61' is reduced to 'C' but its sample records give ['I']"),
    ("reductions 1.0 over 60 C / 40 I records", as_bytes(reduced_log(reductions=[reduction(range(1, 101), lambda i: 1.0)])),
     "reductions[1] (scorer model_graded_fact): sample '61' is reduced to 1.0 but its sample records give ['I']"),
    # the review's h9-3b: 40 records, reductions over ids 1..400, scored_samples 400: n was 400
    ("reductions over 400 ids, 40 records", as_bytes(reduced_log(ids=40, correct=40, scored_samples=400,
                                                                 reductions=[reduction(range(1, 401), lambda i: "C")])),
     "reductions[1] (scorer model_graded_fact) holds 360 sample ids the sample records do not score (e.g. '41')"),
    ("reductions leave out the 40 wrong samples", as_bytes(reduced_log(scored_samples=60, reductions=[reduction(range(1, 61), lambda i: "C")])),
     "reductions[1] (scorer model_graded_fact) leaves out 40 samples the sample records score (e.g. '61')"),
    ("a second reductions entry for one scorer",
     as_bytes(reduced_log(correct=100, reductions=[reduction(range(1, 101), lambda i: "C")] * 2)),
     "reductions[2]: a second entry for scorer model_graded_fact (reducer None)"),
    ("a sample twice in one reduction", as_bytes(reduced_log(correct=100, reductions=[reduction([1, 1, *range(2, 101)], lambda i: "C")])),
     "reductions[1]: sample '1' appears twice"),
    ("3 epochs, mean reduction above the epochs' mean",
     as_bytes(set_values(reduced_log(ids=2, correct=0, accuracy=1.0, epochs=3, reductions=[reduction([1, 2], lambda i: 1.0)]),
                         ["C", "C", "I", "C", "C", "C"])),
     "reductions[1] (scorer model_graded_fact): sample '1' is reduced to 1.0 but its sample records give ['C', 'C', 'I'] (reduced by mean)"),
    (".eval: summaries 60 C / 40 I, reductions all C",
     as_eval(reduced_log(reductions=[reduction(range(1, 101), lambda i: "C")]), summaries=True),
     "reductions[1] (scorer model_graded_fact): sample '61' is reduced to 'C' but its sample records give ['I']"),
    (".eval: reductions over 400 ids, 40 sample members",
     as_eval(reduced_log(ids=40, correct=40, scored_samples=400, reductions=[reduction(range(1, 401), lambda i: "C")])),
     "reductions[1] (scorer model_graded_fact) holds 360 sample ids the log has no sample records for (e.g. '41')"),
    (".eval: summaries.json over 400 ids, 10 sample members", _summaries_beyond_members(),
     "summaries.json entry 11: sample '11' epoch 1 has no samples/11_epoch_1.json member"),
    (".eval: a sample twice in summaries.json",
     _summary_twice(),
     "summaries.json entry 11: sample '1' epoch 1 appears twice"),
    ("scored_samples above total_samples, no records", as_bytes(_header_with(scored_samples=400)),
     "scorer model_graded_fact: scored_samples 400 is more than results.total_samples 40"),
    (".eval: reductions over 400 ids, no records, total_samples 40",
     as_eval({**_header_with(scored_samples=None), "reductions": [reduction(range(1, 401), lambda i: "C" if i <= 320 else "I")]}),
     "scorer model_graded_fact: 400 samples in reductions but results.total_samples is 40"),
]


@pytest.mark.parametrize("case, data, reason", RECORDS, ids=[r[0] for r in RECORDS])
def test_reductions_and_counts_the_sample_records_contradict_are_refused(case, data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(data)


@pytest.mark.parametrize(
    "case, data, n",
    [
        ("reductions matching the records", as_bytes(reduced_log(accuracy=0.6, reductions=[reduction(range(1, 101), lambda i: float(i <= 60))])), 100),
        ("3 epochs, mean reductions", as_bytes(set_values(
            reduced_log(ids=2, correct=0, accuracy=0.5, epochs=3, reductions=[reduction([1, 2], lambda i: 2 / 3 if i == 1 else 1 / 3)]),
            ["C", "C", "I", "C", "I", "I"])), 2),
        ("3 epochs, max reductions", as_bytes(set_values(
            reduced_log(ids=2, correct=0, accuracy=1.0, epochs=3, reducer="max",
                        reductions=[reduction([1, 2], lambda i: 1.0, reducer="max")]),
            ["C", "I", "I", "I", "C", "I"])), 2),
        (".eval: summaries and reductions agreeing",
         as_eval(reduced_log(accuracy=0.6, reductions=[reduction(range(1, 101), lambda i: float(i <= 60))]), summaries=True), 100),
    ],
)
def test_reductions_the_sample_records_agree_with_are_read(case, data, n):
    metric = parse_bytes(data).metrics["model_graded_fact/accuracy"]
    assert (metric.n, metric.passed) == (n, round(metric.value * n))
