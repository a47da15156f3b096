"""Properties of every evidence parser under random, mutated and truncated input.

Whatever the bytes, read_evidence either returns a result or raises EvidenceError; it never lets
another exception out. A truncated file never claims more samples than the whole file did, and
the XML/JSON document formats never accept a truncation that changes the result.
"""

import hashlib
import io
import json
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from promotion_gate.checklists.evidence import PARSERS, read_evidence
from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
GOOD = {
    "junit": ["junit__pytest_with_xfail.xml", "junit__nested_suites.xml"],
    "promptfoo": ["promptfoo__v3_pass_rate_0.75.json", "promptfoo__v2_summary_at_top_pass_rate_0.5.json"],
    "promptfoo-jsonl": ["promptfoo__jsonl_with_error_pass_rate_0.5.jsonl"],
    "lm-eval": ["lm_eval__v0.4_hellaswag_acc_0.6.json"],
    "inspect": ["inspect__v2_accuracy_0.8.json", "inspect__eval_zstd_accuracy_0.8.eval", "inspect__eval_legacy_root_layout_accuracy_0.8.eval"],
    "deepeval": ["deepeval__pass_rate_0.667.json"],
    "openai-evals": ["openai_evals__match_pass_rate_0.75.jsonl"],
    "generic-json": ["generic__pass_rate_0.93.json"],
    "generic-csv": ["generic__pass_rate_0.75.csv"],
}
CASES = [(fmt, name, (FIXTURES / name).read_bytes()) for fmt, names in GOOD.items() for name in names]
LINE_FORMATS = {"promptfoo-jsonl", "openai-evals", "generic-csv"}
FORMATS = st.sampled_from(sorted(PARSERS))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def attempt(fmt: str, data: bytes):
    """The parse, or None when the input was refused with an EvidenceError."""
    try:
        return read_evidence(fmt, io.BytesIO(data))
    except EvidenceError as exc:
        assert exc.reason and isinstance(exc.reason, str)
        return None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
keys = st.sampled_from(["results", "success", "score", "testCases", "metricsData", "metrics", "metric", "value",
                        "n", "passed", "failed", "spec", "final_report", "type", "data", "correct", "status",
                        "eval", "version", "scores", "name", "provider", "namedScores", "n-samples"])
shaped = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats() | st.sampled_from(["success", "match", "x", "none"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=40,
)


@SETTINGS
@given(fmt=FORMATS, data=st.binary(max_size=2048))
@example(fmt="inspect", data=b"PK\x03\x04")
@example(fmt="junit", data=b"<testsuite><testcase/>")
def test_random_bytes_never_escape_as_another_exception(fmt, data):
    attempt(fmt, data)


@SETTINGS
@given(fmt=FORMATS, value=st.one_of(json_values, shaped), jsonl=st.booleans())
def test_random_json_never_escapes_as_another_exception(fmt, value, jsonl):
    text = json.dumps(value, allow_nan=True)
    data = (text + "\n" + text + "\n") if jsonl else text
    attempt(fmt, data.encode())


@SETTINGS
@given(case=st.sampled_from(CASES), data=st.data())
def test_mutated_fixtures_never_escape_as_another_exception(case, data):
    fmt, _, original = case
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = data.draw(st.integers(0, 255))
    attempt(fmt, bytes(mutated))


@SETTINGS
@given(case=st.sampled_from(CASES), data=st.data())
def test_truncations_never_claim_more_than_the_whole_file(case, data):
    fmt, _, original = case
    cut = data.draw(st.integers(0, len(original) - 1))
    whole = read_evidence(fmt, io.BytesIO(original))[0]
    part = attempt(fmt, original[:cut])
    if part is None:
        return
    part = part[0]
    if fmt in LINE_FORMATS:  # a prefix of whole lines is a smaller, valid file
        for name, metric in part.metrics.items():
            if name in whole.metrics and metric.n is not None and whole.metrics[name].n is not None:
                assert metric.n <= whole.metrics[name].n
    else:  # a document cut short is refused, unless only trailing whitespace was lost
        assert original[cut:].strip() == b"" and part.metrics == whole.metrics


@SETTINGS
@given(rows=st.lists(st.tuples(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True), st.integers(0, 50), st.integers(0, 50)),
                     min_size=1, max_size=8, unique_by=lambda r: r[0]))
def test_generated_files_parse_exactly_and_hash_to_sha256(rows):
    rows = [(name, p, f) for name, p, f in rows if p + f > 0]
    if not rows:
        return
    text = "metric,value,n,passed,failed\n" + "".join(f"{n},{p / (p + f)!r},{p + f},{p},{f}\n" for n, p, f in rows)
    data = text.encode()
    parsed, sha256, size = read_evidence("generic-csv", io.BytesIO(data))
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    for name, p, f in rows:
        m = parsed.metrics[name]
        assert (m.passed, m.failed, m.n) == (p, f, p + f)


@SETTINGS
@given(outcomes=st.lists(st.sampled_from(["pass", "fail", "error", "skip"]), min_size=1, max_size=60))
def test_junit_and_promptfoo_jsonl_agree_on_pass_rate(outcomes):
    cases = {"pass": "", "fail": "<failure/>", "error": "<error/>", "skip": "<skipped/>"}
    xml = "<testsuite>" + "".join(f'<testcase name="t{i}">{cases[o]}</testcase>' for i, o in enumerate(outcomes)) + "</testsuite>"
    lines = "".join(json.dumps({"id": f"r{i}", "success": o == "pass", "score": float(o == "pass")}) + "\n"
                    for i, o in enumerate(outcomes) if o != "skip")
    junit, promptfoo = attempt("junit", xml.encode()), attempt("promptfoo-jsonl", lines.encode())
    if all(o == "skip" for o in outcomes):
        assert junit is None and promptfoo is None
        return
    assert junit[0].metrics[PASS_RATE] == promptfoo[0].metrics[PASS_RATE]


@SETTINGS
@given(results=st.lists(st.tuples(st.sampled_from(["openai:gpt-4o", "anthropic:messages:claude-x", None]), st.booleans()),
                        min_size=1, max_size=40))
def test_a_file_of_several_models_is_split_exactly_and_never_pooled(results):
    lines = "".join(json.dumps({"success": ok, **({"provider": {"id": p}} if p else {})}) + "\n" for p, ok in results)
    parsed = read_evidence("promptfoo-jsonl", io.BytesIO(lines.encode()))[0]
    providers = {p for p, _ in results}
    assert len(parsed.groups) == len(providers)
    assert parsed.metrics == ({} if len(providers) > 1 else parsed.groups[0].metrics)
    for group in parsed.groups:
        mine = [ok for p, ok in results if p == group.raw]
        assert (group.metrics[PASS_RATE].passed, group.metrics[PASS_RATE].n) == (sum(mine), len(mine))


@SETTINGS
@given(outcomes=st.lists(st.sampled_from(["pass", "fail", "error", "skip"]), min_size=1, max_size=40),
       attribute=st.sampled_from(["tests", "failures", "errors", "skipped"]), off=st.integers(-3, 3))
def test_junit_totals_are_accepted_exactly_when_they_agree(outcomes, attribute, off):
    body = {"pass": "", "fail": "<failure/>", "error": "<error/>", "skip": "<skipped/>"}
    held = {"tests": len(outcomes), "failures": outcomes.count("fail"), "errors": outcomes.count("error"), "skipped": outcomes.count("skip")}
    declared = held[attribute] + off
    xml = (f'<testsuite name="s" {attribute}="{declared}">'
           + "".join(f'<testcase name="t{i}">{body[o]}</testcase>' for i, o in enumerate(outcomes)) + "</testsuite>")
    parsed = attempt("junit", xml.encode())
    if off != 0 or all(o == "skip" for o in outcomes):
        assert parsed is None
    else:
        assert parsed[0].metrics[PASS_RATE].n == len(outcomes) - outcomes.count("skip")


@SETTINGS
@given(case=st.sampled_from(CASES))
def test_a_byte_order_mark_never_changes_a_parse(case):
    fmt, _, original = case
    whole = read_evidence(fmt, io.BytesIO(original))[0]
    assert read_evidence(fmt, io.BytesIO(b"\xef\xbb\xbf" + original))[0] == whole
