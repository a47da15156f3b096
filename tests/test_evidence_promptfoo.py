"""promptfoo parsers: results.json (streamed) and results.jsonl.

Fixture shapes: promptfoo/promptfoo src/util/output.ts (createOutputData: {evalId, results:
EvaluateSummaryV3, config, shareableUrl, metadata{promptfooVersion, evaluationCreatedAt}};
JSONL = one EvaluateResult per line via JSON.stringify), src/types/index.ts (EvaluateResult:
success, score, namedScores, failureReason 0/1/2, provider{id,label}, gradingResult;
EvaluateSummaryV2/V3), and a real results.json excerpt in a public eval snapshot.
"""

import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from promotion_gate.checklists.evidence import read_evidence
from promotion_gate.checklists.evidence.base import EvidenceError

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"


def parse(fmt: str, name: str):
    with (FIXTURES / name).open("rb") as f:
        return read_evidence(fmt, f)[0]


def parse_bytes(fmt: str, data: bytes):
    return read_evidence(fmt, io.BytesIO(data))[0]


def row(m):
    return (m.value, m.n, m.passed, m.failed)


def groups_of(parsed):
    return {g.raw: {k: row(m) for k, m in g.metrics.items()} for g in parsed.groups}


def test_the_two_model_fixture_is_split_and_never_pooled():
    parsed = parse("promptfoo", "promptfoo__v3_pass_rate_0.75.json")
    assert parsed.metrics == {}  # pooled 3/4 is offered nowhere
    assert [(g.provider, g.model, g.version, g.raw) for g in parsed.groups] == [
        ("openai", "gpt-4o-2024-08-06", None, "openai:gpt-4o-2024-08-06"),
        ("anthropic", "claude-3-5-sonnet-20241022", None, "anthropic:messages:claude-3-5-sonnet-20241022"),
    ]
    expected = {
        "openai:gpt-4o-2024-08-06": {"pass_rate": (1.0, 2, 2, 0), "score": (1.0, 2, None, None),
                                     "score:accuracy": (1.0, 2, None, None), "score:tone": (0.85, 2, None, None)},
        "anthropic:messages:claude-3-5-sonnet-20241022": {"pass_rate": (0.5, 2, 1, 1), "score": (0.5, 2, None, None),
                                                          "score:accuracy": (0.5, 2, None, None), "score:tone": (0.45, 2, None, None)},
    }
    got = groups_of(parsed)
    assert got.keys() == expected.keys()
    for raw, metrics in expected.items():
        assert got[raw] == {k: pytest.approx(v) for k, v in metrics.items()}


@pytest.mark.parametrize(
    "fmt, name, expected",
    [
        ("promptfoo", "promptfoo__v2_summary_at_top_pass_rate_0.5.json",
         {"pass_rate": (0.5, 2, 1, 1), "score": (0.625, 2, None, None)}),
        ("promptfoo-jsonl", "promptfoo__jsonl_with_error_pass_rate_0.5.jsonl",
         {"pass_rate": (0.5, 4, 2, 2), "score": (0.375, 4, None, None), "score:accuracy": (0.5, 3, None, None)}),
    ],
)
def test_metrics_per_fixture(fmt, name, expected):
    parsed = parse(fmt, name)
    assert {k: row(m) for k, m in parsed.metrics.items()} == {k: pytest.approx(v) for k, v in expected.items()}
    assert parsed.format == fmt
    assert len(parsed.groups) == 1 and parsed.groups[0].metrics == parsed.metrics


def test_provenance_of_the_v3_file():
    prov = parse("promptfoo", "promptfoo__v3_pass_rate_0.75.json").provenance
    assert prov.tool == "promptfoo"
    assert prov.tool_version == "0.107.4"  # metadata.promptfooVersion, not the summary schema version 3
    assert prov.model == "anthropic:messages:claude-3-5-sonnet-20241022,openai:gpt-4o-2024-08-06"
    assert prov.created_at == datetime(2025, 3, 4, 10, 20, 11, 482000, tzinfo=timezone.utc)


def test_provenance_of_old_and_jsonl_files():
    old = parse("promptfoo", "promptfoo__v2_summary_at_top_pass_rate_0.5.json").provenance
    assert (old.model, old.tool_version) == ("openai:gpt-3.5-turbo", None)
    assert old.created_at == datetime(2024, 2, 11, 16, 3, 12, 113000, tzinfo=timezone.utc)
    lines = parse("promptfoo-jsonl", "promptfoo__jsonl_with_error_pass_rate_0.5.jsonl").provenance
    assert (lines.model, lines.created_at) == ("openai:gpt-4o-2024-08-06", None)


@pytest.mark.parametrize(
    "fmt, name, reason",
    [
        ("promptfoo", "promptfoo__bad__no_results.json", "no promptfoo results"),
        ("promptfoo", "promptfoo__bad__result_without_success.json", "result 3: 'success' is None"),
        ("promptfoo", "junit__pytest_with_xfail.xml", "not valid JSON: lexical error: invalid char in json text"),
        ("promptfoo", "lm_eval__v0.4_hellaswag_acc_0.6.json", "no promptfoo results"),
        ("promptfoo", "promptfoo__jsonl_with_error_pass_rate_0.5.jsonl", "not valid JSON: parse error: trailing garbage"),
        ("promptfoo-jsonl", "promptfoo__v3_pass_rate_0.75.json", "line 1 is not valid JSON"),
        ("promptfoo-jsonl", "openai_evals__match_pass_rate_0.75.jsonl", "line 1: 'success' is None"),
    ],
)
def test_bad_files_are_refused_with_the_reason(fmt, name, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse(fmt, name)


@pytest.mark.parametrize(
    "fmt, data, reason",
    [
        ("promptfoo", b"", "premature EOF"),
        ("promptfoo", b'{"results": {"results": [{"success": true, "score": NaN}]}}', "NaN and Infinity are not JSON numbers"),
        ("promptfoo", b'{"results": [{"success": true}, ' + b"[" * 600 + b"]" * 600 + b"]}", "nested deeper than 512"),
        ("promptfoo", b'{"results": [{"success": true, "score": 1e999}]}', "numeric (floating point) overflow"),
        ("promptfoo", b'{"results": [{"success": true, "x": "\xff"}]}', "not valid JSON: lexical error: invalid bytes in UTF8 string"),
        ("promptfoo", b'{"results": [7]}', "result 1 is int, not a result object"),
        ("promptfoo", b'[1, 2, 3]', "no promptfoo results"),
        ("promptfoo-jsonl", b"", "no promptfoo results: the file has no result lines"),
        ("promptfoo-jsonl", b"\n\n  \n", "no promptfoo results"),
        ("promptfoo-jsonl", b'{"success": true}\n{"success": tru', "line 2 is not valid JSON: Expecting value at line 2, column 13"),
        ("promptfoo-jsonl", b'{"success": true, "score": NaN}\n', "line 1: JSON constant NaN is not a finite number"),
        ("promptfoo-jsonl", b'{"success": true}\n{"a": "\xc3\x28"}\n', "line 2 is not UTF-8: byte 0xc3 at offset 7"),
        ("promptfoo-jsonl", b"[" * 100_000 + b"\n", "line 1 is nested deeper than 512 levels"),
        ("promptfoo-jsonl", b'{"success": 1}\n', "line 1: 'success' is 1, not true or false"),
    ],
)
def test_malformed_bytes_are_refused(fmt, data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(fmt, data)


def test_errors_count_as_failures_and_named_scores_average_where_present():
    lines = [
        {"success": True, "score": 1, "namedScores": {"f": 1.0}, "provider": {"id": "p:b"}},
        {"success": False, "score": 0, "failureReason": 2, "error": "timeout", "provider": "p:a"},
        {"success": False, "score": 0.5, "namedScores": {"f": 0.0, "label": "x"}, "provider": {"id": "p:b"}},
    ]
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    parsed = parse_bytes("promptfoo-jsonl", data)
    assert parsed.metrics == {}
    assert groups_of(parsed) == {
        "p:b": {"pass_rate": (0.5, 2, 1, 1), "score": (0.75, 2, None, None), "score:f": (0.5, 2, None, None)},
        "p:a": {"pass_rate": (0.0, 1, 0, 1), "score": (0.0, 1, None, None)},
    }
    assert parsed.provenance.model == "p:a,p:b"


def test_a_long_jsonl_line_is_refused_without_reading_it_whole(monkeypatch):
    from promotion_gate.checklists.evidence import _common

    monkeypatch.setattr(_common, "MAX_LINE_BYTES", 100)
    with pytest.raises(EvidenceError, match="line 2 is longer than"):
        parse_bytes("promptfoo-jsonl", b'{"success": true}\n' + b" " * 500 + b"\n")


def test_json_streams_many_results_with_one_held_at_a_time():
    results = ",".join('{"success": %s, "score": %d, "provider": {"id": "openai:gpt-4o"}}' % (("true", 1) if i % 4 else ("false", 0)) for i in range(20_000))
    data = ('{"evalId": "e", "results": {"version": 3, "timestamp": "2025-01-01T00:00:00Z", "results": [%s]}}' % results).encode()
    assert row(parse_bytes("promptfoo", data).metrics["pass_rate"]) == (0.75, 20_000, 15_000, 5_000)


# --- one file, several models; the file's own totals; hostile numbers; CSV --------------------


CANDIDATE, OTHER = "openai:gpt-4o-2024-08-06", "anthropic:messages:claude-sonnet-4-20250514"


def result(provider, success, i, **extra):
    return {"id": f"r{i}", "testIdx": i, "promptIdx": 0, "provider": {"id": provider, "label": ""},
            "success": success, "score": float(success), "failureReason": 0 if success else 1, **extra}


def two_models(candidate_passes=160, stats=None) -> bytes:
    results = [result(CANDIDATE, i < candidate_passes, i) for i in range(200)]
    results += [result(OTHER, True, i, id=f"o{i}") for i in range(200)]  # ids are unique in the file, as promptfoo's are
    passed = candidate_passes + 200
    stats = stats if stats is not None else {"successes": passed, "failures": 400 - passed, "errors": 0}
    return json.dumps({"evalId": "e", "results": {"version": 3, "timestamp": "2026-11-20T09:30:00Z",
                                                  "results": results, "stats": stats}}).encode()


def test_two_models_candidate_alone_160_of_200_other_200_of_200_never_pooled():
    parsed = parse_bytes("promptfoo", two_models())
    assert parsed.metrics == {}  # the pooled 360/400 = 0.90 must not exist anywhere
    assert all(m.value != 0.9 for g in parsed.groups for m in g.metrics.values())
    by_raw = {g.raw: g for g in parsed.groups}
    assert (by_raw[CANDIDATE].provider, by_raw[CANDIDATE].model) == ("openai", "gpt-4o-2024-08-06")
    assert (by_raw[OTHER].provider, by_raw[OTHER].model) == ("anthropic", "claude-sonnet-4-20250514")
    assert row(by_raw[CANDIDATE].metrics["pass_rate"]) == (0.8, 200, 160, 40)
    assert row(by_raw[OTHER].metrics["pass_rate"]) == (1.0, 200, 200, 0)


@pytest.mark.parametrize(
    "provider, expected",
    [
        ("openai:gpt-4o", ("openai", "gpt-4o", None)),
        ("openai:chat:gpt-4o-mini-2024-07-18", ("openai", "gpt-4o-mini-2024-07-18", None)),
        ("anthropic:messages:claude-3-5-sonnet-20241022", ("anthropic", "claude-3-5-sonnet-20241022", None)),
        ("bedrock:us.anthropic.claude-3-5-sonnet-20241022-v2:0", (None, "bedrock:us.anthropic.claude-3-5-sonnet-20241022-v2:0", None)),
        ("file://providers/custom.py", (None, "file://providers/custom.py", None)),
        ("https://api.example.com/v1", (None, "https://api.example.com/v1", None)),
        ("echo", (None, "echo", None)),
        ("openai::gpt-4o", (None, "openai::gpt-4o", None)),
    ],
)
def test_provider_ids_are_read_without_guessing(provider, expected):
    group = parse_bytes("promptfoo-jsonl", json.dumps(result(provider, True, 0)).encode() + b"\n").groups[0]
    assert (group.provider, group.model, group.version) == expected and group.raw == provider


def test_results_naming_no_provider_are_one_group_without_a_model():
    parsed = parse_bytes("promptfoo-jsonl", b'{"success": true}\n{"success": false}\n')
    assert [(g.provider, g.model, g.raw) for g in parsed.groups] == [(None, None, None)]
    assert row(parsed.metrics["pass_rate"]) == (0.5, 2, 1, 1)


NO_VARS = "the results carry no vars: a --repeat run of a test cannot be told from another test"


def test_jsonl_records_that_truncation_cannot_be_detected():
    assert parse_bytes("promptfoo-jsonl", b'{"id": "r1", "success": true}\n').notes == (
        "jsonl format declares no total: truncation at a line boundary cannot be detected", NO_VARS)


def test_json_without_stats_says_its_totals_cannot_be_checked():
    parsed = parse_bytes("promptfoo", b'{"results": {"results": [{"id": "r1", "success": true}]}}')
    assert parsed.notes == ("the file has no stats: its results cannot be checked against its own totals", NO_VARS)


@pytest.mark.parametrize(
    "data, reason",
    [
        (two_models(stats={"successes": 399, "failures": 1, "errors": 0}), "stats.successes is 399 but the results hold 360 passing results"),
        (two_models(stats={"successes": 360, "failures": 140, "errors": 0}), "stats counts 500 results (successes + failures + errors) but the file holds 400"),
        (two_models(stats={"successes": 360, "failures": 40, "errors": 1}), "stats counts 401 results (successes + failures + errors) but the file holds 400"),
        (two_models(stats={"successes": 360}), "stats lacks successes or failures"),
        (two_models(stats={"successes": 360, "failures": -40}), "stats.failures is -40, not a non-negative whole number"),
        (two_models(stats={"successes": 360, "failures": 40.0}), "stats.failures is 40.0, not a non-negative whole number"),
        (two_models(stats={"successes": 360, "failures": 10**30}), "an integer past 64 bits is not a usable number"),
        (two_models(stats={"successes": 360, "failures": 2**63}), "an integer past 64 bits is not a usable number"),
        (two_models(stats=[1]), "stats is list, not an object"),
    ],
)
def test_stats_that_disagree_with_the_results_are_refused(data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes("promptfoo", data)


def test_a_result_deleted_from_a_file_with_stats_is_caught():
    doc = json.loads(two_models())
    del doc["results"]["results"][0]
    with pytest.raises(EvidenceError, match=re.escape("stats.successes is 360 but the results hold 359")):
        parse_bytes("promptfoo", json.dumps(doc).encode())


HOSTILE = [
    ("nan", b'{"results": [{"success": true, "score": NaN}]}', b'{"success": true, "score": NaN}\n',
     "NaN and Infinity are not JSON numbers", "JSON constant NaN is not a finite number"),
    ("infinity", b'{"results": [{"success": true, "score": -Infinity}]}', b'{"success": true, "score": Infinity}\n',
     "NaN and Infinity are not JSON numbers", "JSON constant Infinity is not a finite number"),
    ("1e999", b'{"results": [{"success": true, "score": 1e999}]}', b'{"success": true, "score": 1e999}\n',
     "numeric (floating point) overflow", "score is inf, not a finite number"),
    ("huge int", b'{"results": [{"success": true, "score": 1' + b"0" * 5000 + b'}]}', b'{"success": true, "score": 1' + b"0" * 5000 + b"}\n",
     "an integer past 64 bits is not a usable number", "not usable JSON: Exceeds the limit (4300 digits)"),
    ("huge int stats", b'{"results": {"results": [{"success": true}], "stats": {"successes": 1' + b"0" * 400 + b', "failures": 0}}}', None,
     "an integer past 64 bits is not a usable number", None),
    ("deep nesting", b'{"results": [{"success": true, "x": ' + b"[" * 600 + b"]" * 600 + b"}]}", b'{"success": true, "x": ' + b"[" * 600 + b"]" * 600 + b"}\n",
     "nested deeper than 512 levels", "line 1 is nested deeper than 512 levels"),
    ("duplicate key", b'{"results": [{"success": false, "success": true}]}', b'{"success": false, "success": true}\n',
     "key 'success' appears twice in one object", "key 'success' appears twice in one object"),
]


@pytest.mark.parametrize("case, json_doc, jsonl_doc, json_reason, jsonl_reason", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_numbers_and_shapes_are_refused_in_both_formats(case, json_doc, jsonl_doc, json_reason, jsonl_reason):
    with pytest.raises(EvidenceError, match=re.escape(json_reason)):
        parse_bytes("promptfoo", json_doc)
    if jsonl_doc is not None:
        with pytest.raises(EvidenceError, match=re.escape(jsonl_reason)):
            parse_bytes("promptfoo-jsonl", jsonl_doc)


@pytest.mark.parametrize("fmt, name", [("promptfoo", "promptfoo__v2_summary_at_top_pass_rate_0.5.json"),
                                       ("promptfoo-jsonl", "promptfoo__jsonl_with_error_pass_rate_0.5.jsonl")])
def test_a_byte_order_mark_changes_nothing_but_the_digest(fmt, name):
    data = (FIXTURES / name).read_bytes()
    assert parse_bytes(fmt, b"\xef\xbb\xbf" + data) == parse_bytes(fmt, data)


def test_a_byte_order_mark_after_the_start_is_not_json():
    with pytest.raises(EvidenceError, match="line 2 is not valid JSON"):
        parse_bytes("promptfoo-jsonl", b'{"success": true}\n\xef\xbb\xbf{"success": true}\n')


def test_one_long_string_is_read_and_one_past_the_cap_is_refused(monkeypatch):
    from promotion_gate.checklists.evidence import _jsonstream

    long = b'{"results": [{"success": true, "x": "' + b"a" * 300_000 + b'"}]}'
    assert row(parse_bytes("promptfoo", long).metrics["pass_rate"]) == (1.0, 1, 1, 0)
    monkeypatch.setattr(_jsonstream, "MAX_TOKEN_BYTES", 200_000)
    with pytest.raises(EvidenceError, match="one JSON token .* is longer than 0 MiB"):
        parse_bytes("promptfoo", long)


CSV_NEW = ('question,[openai:gpt-4o] prompt.txt,Status,Score,Named Scores,Grader Reason,Comment\n'
           'q1,Our refund policy...,PASS,1.00,,All assertions passed,\n').encode()
CSV_OLD = '"question","[openai:gpt-4o] prompt.txt"\n"q1","[PASS] Our refund policy"\n'.encode()
CSV_PLAIN = b"question,answer\nq1,a1\n"


@pytest.mark.parametrize("fmt, data", [("promptfoo", CSV_NEW), ("promptfoo", CSV_OLD), ("promptfoo-csv", CSV_NEW), ("promptfoo", CSV_PLAIN),
                                       ("promptfoo", b"\xef\xbb\xbf" + CSV_NEW)])
def test_promptfoo_csv_output_is_refused_with_the_output_to_use(fmt, data):
    with pytest.raises(EvidenceError, match=re.escape("export the run with `promptfoo eval -o results.json`")):
        parse_bytes(fmt, data)


def with_prompts(doc: dict, counts: dict) -> bytes:
    doc["results"]["prompts"] = [{"raw": "{{q}}", "label": "p", "provider": provider,
                                  "metrics": {"testPassCount": p, "testFailCount": f, "testErrorCount": 0}}
                                 for provider, (p, f) in counts.items()]
    return json.dumps(doc).encode()


def test_prompt_totals_that_agree_per_provider_are_read():
    doc = json.loads(two_models())
    parsed = parse_bytes("promptfoo", with_prompts(doc, {CANDIDATE: (160, 40), OTHER: (200, 0)}))
    assert {g.raw: g.metrics["pass_rate"].passed for g in parsed.groups} == {CANDIDATE: 160, OTHER: 200}


def test_a_failing_result_moved_to_the_other_model_is_caught_by_the_prompt_totals():
    doc = json.loads(two_models())
    moved = next(r for r in doc["results"]["results"] if r["provider"]["id"] == CANDIDATE and not r["success"])
    moved["provider"]["id"] = OTHER  # stats still agree: 360 successes of 400
    moved["testIdx"] = 10_000  # a (promptIdx, testIdx) of its own under the other model
    with pytest.raises(EvidenceError, match=re.escape(f"prompts say {CANDIDATE} passed 160 of 200 but its results hold 160 of 199")):
        parse_bytes("promptfoo", with_prompts(doc, {CANDIDATE: (160, 40), OTHER: (200, 0)}))


def test_prompt_totals_must_be_whole_numbers():
    doc = json.loads(two_models())
    with pytest.raises(EvidenceError, match=re.escape("prompts[1].metrics.testPassCount is -1, not a non-negative whole number")):
        parse_bytes("promptfoo", with_prompts(doc, {CANDIDATE: (-1, 40), OTHER: (200, 0)}))


# --- results that must not count: a result recorded twice, a success that says it failed --------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples/repo/ai-systems/support-assistant/evals/promptfoo.json"
EXAMPLE_PROVIDER = "anthropic:messages:claude-sonnet-4-20250514"


def example_with(extra: list[dict], strip=()) -> bytes:
    """The support-assistant run (340 of 400 passing here) with ``extra`` results appended, and its
    stats and prompts[].metrics made to agree, as someone padding the file would."""
    doc = json.loads(EXAMPLE.read_text())
    body = doc["results"]
    for i, r in enumerate(body["results"]):
        r["success"], r["failureReason"] = (i >= 60), (0 if i >= 60 else 1)
    for r in extra:
        for key in strip:
            r.pop(key, None)
    body["results"] += extra
    passed = sum(r["success"] for r in body["results"])
    body["stats"].update(successes=passed, failures=len(body["results"]) - passed, errors=0)
    body["prompts"][0]["metrics"].update(testPassCount=passed, testFailCount=len(body["results"]) - passed, testErrorCount=0)
    return json.dumps(doc).encode()


def copies(n: int, **changes) -> list[dict]:
    one = json.loads(EXAMPLE.read_text())["results"]["results"][100]
    assert one["success"] is True
    return [{**json.loads(json.dumps(one)), **changes} for _ in range(n)]


def jsonl(*results: dict) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in results).encode()


def test_the_padded_example_really_is_340_of_400_before_padding():
    assert row(parse_bytes("promptfoo", example_with([])).metrics["pass_rate"]) == (0.85, 400, 340, 60)


REPEATS = [
    ("3000 deep copies of one passing result, stats and prompts adjusted (the review's 0.982, n=3400)",
     "promptfoo", example_with(copies(3000)),
     f"result 401: result id '0002-00100' of provider {EXAMPLE_PROVIDER} appears twice: a result may count once"),
    ("one copy is enough",
     "promptfoo", example_with(copies(1)), "result 401: result id '0002-00100'"),
    ("copies stripped of their id keep promptIdx and testIdx; the file mixes keyed and unkeyed results",
     "promptfoo", example_with(copies(5), strip=("id",)),
     "result 401 has no id while other results have one: a copy stripped of its id cannot be told from a new result"),
    ("copies stripped of every key, beside results that have them",
     "promptfoo", example_with(copies(5), strip=("id", "promptIdx", "testIdx")),
     "result 401 has no id while other results have one"),
    ("a file without ids repeats (promptIdx, testIdx)",
     "promptfoo", json.dumps({"results": {"version": 3, "results": [
         {"promptIdx": 0, "testIdx": 0, "success": True}, {"promptIdx": 0, "testIdx": 1, "success": True},
         {"promptIdx": 0, "testIdx": 0, "success": True}]}}).encode(),
     "result 3: promptIdx 0, testIdx 0 of provider None appears twice: a result may count once"),
    ("a file without ids where one result drops its indices",
     "promptfoo", json.dumps({"results": [{"promptIdx": 0, "testIdx": 0, "success": True}, {"success": True}]}).encode(),
     "result 2 has no promptIdx and testIdx while other results have them"),
    ("jsonl: the same line pasted again",
     "promptfoo-jsonl", jsonl(*copies(1), *copies(1)),
     f"line 2: result id '0002-00100' of provider {EXAMPLE_PROVIDER} appears twice"),
    ("jsonl: a copy without its id",
     "promptfoo-jsonl", jsonl(*copies(1), *copies(1, id=None)), "line 2 has no id while other results have one"),
    ("an id that is not a string is no id",
     "promptfoo-jsonl", jsonl(*copies(1), *copies(1, id=7)), "line 2: id is 7, not a non-empty string"),
    ("3 pasted copies of each passing result with a fresh id but the same (promptIdx, testIdx) (the review's a3)",
     "promptfoo", example_with([{**c, "id": f"fresh-{k}"} for k, c in enumerate(copies(3))]),
     f"result 401: promptIdx 0, testIdx 100 of provider {EXAMPLE_PROVIDER} appears twice: a result may count once"),
    ("jsonl: a fresh id over a repeated (promptIdx, testIdx)",
     "promptfoo-jsonl", jsonl(*copies(1), *copies(1, id="fresh")),
     f"line 2: promptIdx 0, testIdx 100 of provider {EXAMPLE_PROVIDER} appears twice"),
    ("an index that is not a whole number",
     "promptfoo-jsonl", jsonl({"promptIdx": 0, "testIdx": 0.5, "success": True}),
     "line 1: testIdx is 0.5, not a non-negative whole number"),
]


@pytest.mark.parametrize("case, fmt, data, reason", REPEATS, ids=[r[0] for r in REPEATS])
def test_a_result_recorded_twice_is_refused(case, fmt, data, reason):
    with pytest.raises(EvidenceError, match=re.escape(reason)):
        parse_bytes(fmt, data)


def test_the_same_id_under_two_providers_is_two_results():
    # each provider's results are keyed on their own
    lines = jsonl(*[result(provider, True, i) for provider in (CANDIDATE, OTHER) for i in range(3)])
    assert {g.raw: g.metrics["pass_rate"].n for g in parse_bytes("promptfoo-jsonl", lines).groups} == {CANDIDATE: 3, OTHER: 3}


def repeated(tests=2, repeat=3, fails=(), provider="openai:gpt-4o", prompt=0, score=None, **extra):
    """``promptfoo eval --repeat N``: each test copied N times, every copy its own id and testIdx, the same vars."""
    out = []
    for run in range(repeat):
        for t in range(tests):
            ok = (t, run) not in fails
            r = {"id": f"{provider}-p{prompt}-u{run}-{t}", "promptIdx": prompt, "testIdx": run * tests + t, "success": ok,
                 "failureReason": 0 if ok else 1, "provider": {"id": provider}, "vars": {"question": f"q{t}", "n": t},
                 "testCase": {"vars": {"question": f"q{t}", "n": t}}, **extra}
            if score is not None:
                r["score"] = score(t, run)
            out.append(r)
    return out


def test_repeated_runs_are_one_test_each():
    # `promptfoo eval --repeat 3` gives each run of a test its own testIdx (and every result its own id), the same vars
    assert row(parse_bytes("promptfoo-jsonl", jsonl(*repeated())).metrics["pass_rate"]) == (1.0, 2, 2, 0)


def test_400_results_of_20_tests_repeated_20_times_are_n_20():
    # the review's a13: 20 distinct tests, --repeat 20, read as n=400 with a tight interval
    metrics = parse_bytes("promptfoo-jsonl", jsonl(*repeated(tests=20, repeat=20))).metrics
    assert row(metrics["pass_rate"]) == (1.0, 20, 20, 0)


def test_a_test_passes_only_when_every_repeat_passes():
    fails = {(0, 5), (1, 0), (1, 19), (2, 7)}  # 4 of 400 runs fail, spread over 3 tests
    metrics = parse_bytes("promptfoo-jsonl", jsonl(*repeated(tests=20, repeat=20, fails=fails))).metrics
    assert row(metrics["pass_rate"]) == (0.85, 20, 17, 3)


def test_scores_are_averaged_per_test_then_over_tests():
    results = repeated(tests=2, repeat=4, score=lambda t, run: 1.0 if t == 0 else (1.0 if run == 0 else 0.0))
    metric = parse_bytes("promptfoo-jsonl", jsonl(*results)).metrics["score"]
    assert (metric.value, metric.n) == ((1.0 + 0.25) / 2, 2)


def test_the_json_file_counts_tests_and_its_stats_still_count_results():
    results = repeated(tests=20, repeat=20, fails={(3, 3)})
    doc = {"results": {"version": 3, "results": results, "stats": {"successes": 399, "failures": 1, "errors": 0},
                       "prompts": [{"provider": "openai:gpt-4o", "metrics": {"testPassCount": 399, "testFailCount": 1, "testErrorCount": 0}}]}}
    assert row(parse_bytes("promptfoo", json.dumps(doc).encode()).metrics["pass_rate"]) == (0.95, 20, 19, 1)


def test_vars_in_another_key_order_are_the_same_test():
    results = repeated(tests=1, repeat=2)
    results[1]["vars"] = {"n": 0, "question": "q0"}
    assert row(parse_bytes("promptfoo-jsonl", jsonl(*results)).metrics["pass_rate"]) == (1.0, 1, 1, 0)


def test_the_same_vars_under_another_prompt_or_provider_are_another_test():
    results = repeated(tests=2, repeat=2) + repeated(tests=2, repeat=2, prompt=1)
    assert row(parse_bytes("promptfoo-jsonl", jsonl(*results)).metrics["pass_rate"]) == (1.0, 4, 4, 0)
    results = repeated(tests=2, repeat=2) + repeated(tests=2, repeat=2, provider="openai:gpt-4o-mini")
    assert {g.raw: g.metrics["pass_rate"].n for g in parse_bytes("promptfoo-jsonl", jsonl(*results)).groups} == {
        "openai:gpt-4o": 2, "openai:gpt-4o-mini": 2}


def test_a_repeat_stripped_of_its_vars_is_refused():
    results = repeated(tests=2, repeat=3)
    del results[4]["vars"]
    with pytest.raises(EvidenceError, match=re.escape(
            "line 5 has no vars while other results have them: a repeat stripped of them cannot be told from a new test")):
        parse_bytes("promptfoo-jsonl", jsonl(*results))


def test_results_without_vars_are_each_their_own_test_with_a_note():
    results = [{k: v for k, v in r.items() if k not in ("vars", "testCase")} for r in repeated()]
    parsed = parse_bytes("promptfoo-jsonl", jsonl(*results))
    assert row(parsed.metrics["pass_rate"]) == (1.0, 6, 6, 0)
    assert "the results carry no vars: a --repeat run of a test cannot be told from another test" in parsed.notes


def test_results_with_no_key_at_all_are_read_with_a_note():
    parsed = parse_bytes("promptfoo", b'{"results": {"results": [{"success": true}, {"success": true}], '
                                      b'"stats": {"successes": 2, "failures": 0, "errors": 0}}}')
    assert row(parsed.metrics["pass_rate"]) == (1.0, 2, 2, 0)
    assert parsed.notes == ("the results carry no id and no (promptIdx, testIdx): a result recorded twice cannot be detected", NO_VARS)


CONTRADICTIONS = [
    ("success true but failureReason 1 (assertion)", {"success": True, "failureReason": 1},
     "success is true but failureReason is 1 (assertion failed): the result contradicts itself"),
    ("success true but failureReason 2 (error)", {"success": True, "failureReason": 2, "error": "timeout"},
     "success is true but failureReason is 2 (error): the result contradicts itself"),
    ("success true with an unknown failureReason", {"success": True, "failureReason": 7},
     "success is true but failureReason is 7"),
    ("success true with failureReason as a string", {"success": True, "failureReason": "2"},
     "success is true but failureReason is '2'"),
]


@pytest.mark.parametrize("case, fields, reason", CONTRADICTIONS, ids=[c[0] for c in CONTRADICTIONS])
def test_a_success_that_says_it_failed_is_refused(case, fields, reason):
    doc = json.loads(EXAMPLE.read_text())
    doc["results"]["results"][5].update(fields)  # stats and prompts still agree: the result counts as a success there
    with pytest.raises(EvidenceError, match=re.escape("result 6: " + reason)):
        parse_bytes("promptfoo", json.dumps(doc).encode())
    with pytest.raises(EvidenceError, match=re.escape("line 1: " + reason)):
        parse_bytes("promptfoo-jsonl", jsonl(doc["results"]["results"][5]))


@pytest.mark.parametrize("fields", [{"success": True, "failureReason": 0}, {"success": True}, {"success": True, "failureReason": None},
                                    {"success": False, "failureReason": 0}, {"success": False, "failureReason": 1}])
def test_a_success_without_a_failure_reason_and_any_failure_are_read(fields):
    assert parse_bytes("promptfoo-jsonl", jsonl(fields)).metrics["pass_rate"].passed == int(fields["success"])


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "examples/repo").rglob("promptfoo.json")))
def test_every_example_run_parses(path):
    assert parse_bytes("promptfoo", path.read_bytes()).notes == ()
