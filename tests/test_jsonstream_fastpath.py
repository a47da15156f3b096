"""The json.loads fast path of checklists/evidence/_jsonstream.py gives exactly what the streaming
walk gives: the same values in the same order (types included: 1, 1.0 and True differ), the same
END marks, and for anything the walk refuses the same error, on hostile and generated documents.
(`pytest -p tests.jsonstream_streaming_only` runs the evidence tests on the streaming path alone.)"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promotion_gate.checklists.evidence import _jsonstream
from promotion_gate.checklists.evidence._jsonstream import END, ITEM, select_with
from promotion_gate.checklists.evidence.base import EvidenceError

ROOT = Path(__file__).resolve().parent.parent
PROMPTFOO = frozenset({("results", ITEM), ("results", "results", ITEM), ("stats",), ("results", "stats"), ("timestamp",)})
SHAPES = [
    (frozenset({()}), frozenset()),
    (PROMPTFOO, frozenset()),
    (frozenset({("a", ITEM, "b")}), frozenset({("a", ITEM), ("a",)})),
    (frozenset({(ITEM,), (ITEM, "k")}), frozenset({()})),
]


def outcome(data: bytes, paths, marks, fast_max_bytes: int):
    """What select yields, as a type-exact text, or the error it raises."""
    try:
        got = list(select_with(io.BytesIO(data), paths, "doc", marks, fast_max_bytes=fast_max_bytes))
    except EvidenceError as exc:
        return ("error", exc.reason)
    return ("ok", repr([(path, "END" if value is END else value) for path, value in got]))


def fast_was_taken(data: bytes) -> bool:
    return _jsonstream._loads_exact(data) is not _jsonstream._INEXACT


def assert_same(data: bytes) -> None:
    for paths, marks in SHAPES:
        streamed = outcome(data, paths, marks, -1)
        assert outcome(data, paths, marks, 1 << 20) == streamed, (data[:200], paths)


# Each row: a document someone could hand the gate to make the two paths disagree.
HOSTILE = [
    ("largest 64-bit integer", b"[9223372036854775807, -9223372036854775807]", True),
    ("integer past 64 bits", b"[9223372036854775808]", False),
    ("-2**63 (yajl refuses it too)", b"[-9223372036854775808]", False),
    ("huge integer", b"[" + b"9" * 5000 + b"]", False),
    ("float overflowing to infinity", b'{"results": [{"score": 1e400}]}', False),
    ("largest finite float", b"[1.7976931348623157e308]", True),
    ("float underflowing to zero", b"[1e-400, 2e-324, 4.9e-324]", True),
    ("negative zero", b"[-0, -0.0, 0e0]", True),
    ("NaN", b'{"results": [{"score": NaN}]}', False),
    ("Infinity", b"[Infinity, -Infinity]", False),
    ("lone high surrogate escape", b'["\\ud800"]', False),
    ("lone low surrogate escape", b'["\\udc00\\ud800"]', False),
    ("surrogate pair escape", b'["\\ud83d\\ude00"]', False),
    ("surrogate escape in a key", b'{"\\uDFFF": 1}', False),
    ("escaped backslash before u", b'["\\\\ud800"]', False),
    ("encoded surrogate bytes", b'["\xed\xa0\x80"]', False),
    ("overlong UTF-8", b'["\xc0\x80"]', False),
    ("code point past U+10FFFF", b'["\xf4\x90\x80\x80"]', False),
    ("noncharacter U+FFFE", b'["\xef\xbf\xbe"]', True),
    ("DEL and NUL escape", b'["\x7f", "a\\u0000b"]', True),
    ("raw control character", b'["a\x01"]', False),
    ("raw tab in a string", b'["\t"]', False),
    ("form feed as whitespace", b"\x0c[1]", False),
    ("no-break space as whitespace", b"\xc2\xa0[1]", False),
    ("duplicate key inside a chosen value", b'{"results": [{"success": true, "success": false}]}', False),
    ("duplicate key on the walked path", b'{"results": [{"success": true}], "results": [{"success": false}]}', False),
    ("duplicate key in a skipped part", b'{"config": {"a": 1, "a": 2}, "results": []}', False),
    ("nested to the limit", b"[" * 512 + b"]" * 512, True),
    ("nested past the limit", b"[" * 513 + b"]" * 513, False),
    ("nested past the interpreter's recursion limit", b"[" * 5000 + b"]" * 5000, False),
    ("deep inside a chosen value", b'{"results": [' + b"[" * 600 + b"]" * 600 + b"]}", False),
    ("trailing garbage", b"[1] [2]", False),
    ("trailing NUL", b"[1]\x00", False),
    ("trailing comma", b"[1,]", False),
    ("leading zero", b"[01]", False),
    ("empty document", b"", False),
    ("whitespace only", b"  \n", False),
    ("a second byte-order mark", b"\xef\xbb\xbf[1]", False),
    ("truncated", b'{"results": [{"success": true}', False),
    ("comment", b"[1] // no", False),
    ("top-level scalar", b"3", True),
    ("top-level null", b"null", True),
    ("exponent forms", b"[1e5, 1E+5, 1e-5, 100000000000000000000e-10, 0.1]", True),
]


def test_the_hostile_table_has_both_verdicts() -> None:
    assert len(HOSTILE) >= 40
    assert {fast for _, _, fast in HOSTILE} == {True, False}


@pytest.mark.parametrize(("name", "data", "fast"), HOSTILE, ids=[row[0] for row in HOSTILE])
def test_hostile_document_reads_the_same_on_both_paths(name: str, data: bytes, fast: bool) -> None:
    assert fast_was_taken(data) is fast
    assert_same(data)


def test_the_examples_take_the_fast_path_and_read_the_same() -> None:
    files = sorted((ROOT / "examples" / "repo").rglob("*.json")) + sorted((ROOT / "tests" / "fixtures" / "evidence").glob("*.json"))
    assert len(files) >= 10
    for path in files:
        data = path.read_bytes()
        data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        assert_same(data)
    assert fast_was_taken((ROOT / "examples/repo/ai-systems/support-assistant/evals/promptfoo.json").read_bytes())


def test_a_document_past_the_bound_is_streamed(monkeypatch) -> None:
    data = json.dumps({"results": [{"success": True, "i": i} for i in range(50)]}).encode()
    calls = []
    monkeypatch.setattr(_jsonstream, "_loads_exact", lambda d: calls.append(d) or _jsonstream._INEXACT)
    assert outcome(data, PROMPTFOO, frozenset(), len(data) - 1) == outcome(data, PROMPTFOO, frozenset(), -1)
    assert calls == []
    outcome(data, PROMPTFOO, frozenset(), len(data))
    assert calls == [data]


keys = st.sampled_from(["results", "stats", "timestamp", "a", "b", "k", "success", "\u00e9", ""])
leaves = (st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=True, allow_infinity=True)
          | st.text(max_size=6))
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=25)
TOKENS = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"u", b"d800", b"1", b"-", b".", b"e", b"E", b"+", b"0",
          b"true", b"null", b"NaN", b" ", b"\t", b"\n", b"\x0c", b"\x00", b"\xed\xa0\x80", b"\xc3\xa9", b"results",
          b"9223372036854775808", b"1e400"]
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(value=values, ensure_ascii=st.booleans())
def test_generated_documents_read_the_same(value, ensure_ascii: bool) -> None:
    assert_same(json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass"))


@SETTINGS
@given(value=values, cut=st.integers(0, 400), insert=st.lists(st.sampled_from(TOKENS), max_size=3))
def test_mutated_documents_read_the_same(value, cut: int, insert: list[bytes]) -> None:
    text = json.dumps({"results": [value], "stats": value}).encode("utf-8", "surrogatepass")
    cut = min(cut, len(text))
    assert_same(text[:cut] + b"".join(insert) + text[cut:])


@SETTINGS
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=30))
def test_token_soup_reads_the_same(tokens: list[bytes]) -> None:
    assert_same(b"".join(tokens))


# shared_decode: the parse of an evidence file and the reading of its usage share one decode.
EXAMPLE = ROOT / "examples" / "repo" / "ai-systems" / "support-assistant" / "evals" / "promptfoo.json"


def _counting_decodes(monkeypatch) -> list[bytes]:
    seen: list[bytes] = []
    real = _jsonstream._loads_exact

    def loads(data: bytes):
        seen.append(data)
        return real(data)

    monkeypatch.setattr(_jsonstream, "_loads_exact", loads)
    return seen


def test_within_shared_decode_the_same_bytes_are_decoded_once_and_read_the_same(monkeypatch):
    data = EXAMPLE.read_bytes()
    alone = [outcome(data, paths, marks, 1 << 22) for paths, marks in SHAPES]
    decodes = _counting_decodes(monkeypatch)
    with _jsonstream.shared_decode():
        shared = [outcome(data, paths, marks, 1 << 22) for paths, marks in SHAPES]
    assert shared == alone and len(decodes) == 1


@pytest.mark.parametrize("second", [
    b'{"results": {"results": [{"success": true}]}}',   # other bytes: its own decode, never the first tree
    b'{"results": [1], "results": [2]}',                 # inexact: the walk decides, and nothing is held for it
])
def test_shared_decode_reuses_a_tree_only_for_equal_bytes(monkeypatch, second):
    first = b'{"results": {"results": [{"success": false}]}}'
    decodes = _counting_decodes(monkeypatch)
    with _jsonstream.shared_decode():
        assert outcome(first, *SHAPES[1], 1 << 20) == outcome(first, *SHAPES[1], -1)
        assert outcome(second, *SHAPES[1], 1 << 20) == outcome(second, *SHAPES[1], -1)
        assert outcome(second, *SHAPES[1], 1 << 20) == outcome(second, *SHAPES[1], -1)
    assert decodes.count(first) == 1
    assert decodes.count(second) == (1 if fast_was_taken(second) else 2)


def test_nothing_is_shared_outside_the_block_or_after_it(monkeypatch):
    data = EXAMPLE.read_bytes()
    decodes = _counting_decodes(monkeypatch)
    outcome(data, *SHAPES[1], 1 << 22)
    outcome(data, *SHAPES[1], 1 << 22)
    with _jsonstream.shared_decode():
        outcome(data, *SHAPES[1], 1 << 22)
    assert _jsonstream._SHARED.get() is None
    outcome(data, *SHAPES[1], 1 << 22)
    assert len(decodes) == 4


def test_the_promptfoo_parse_and_its_usage_leave_the_shared_tree_as_decoded():
    """Both readers of a shared tree only read it: after the parse and the usage reading of the
    example, the tree they shared is still what json decodes from the file."""
    from promotion_gate.checklists.evidence.promptfoo import parse_json
    from promotion_gate.checklists.evidence.usage import extract_usage

    data = EXAMPLE.read_bytes()
    with _jsonstream.shared_decode():
        parsed = parse_json(io.BytesIO(data))
        usage = extract_usage("promptfoo", io.BytesIO(data))
        held = _jsonstream._SHARED.get()
        assert held is not None and held[0] == data
        assert held[1] == json.loads(data)
    assert parsed == parse_json(io.BytesIO(data)) and usage == extract_usage("promptfoo", io.BytesIO(data))
