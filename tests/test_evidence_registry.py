"""read_evidence and the PARSERS registry: digests, size caps, the error boundary, and what every
parser promises (empty, wrong-format, trickled streams, counts consistent with values)."""

import hashlib
import io
import re
from pathlib import Path

import pytest

from promotion_gate.checklists import evidence
from promotion_gate.checklists.evidence import PARSERS, read_evidence
from promotion_gate.checklists.evidence.base import EvidenceError

FIXTURES = Path(__file__).parent / "fixtures" / "evidence"
PREFIX_FORMAT = {"junit": "junit", "promptfoo": "promptfoo", "lm_eval": "lm-eval", "inspect": "inspect",
                 "deepeval": "deepeval", "openai_evals": "openai-evals", "generic": "generic-json"}


def format_of(path: Path) -> str:
    prefix = path.name.split("__")[0]
    if prefix == "promptfoo" and path.suffix == ".jsonl":
        return "promptfoo-jsonl"
    if prefix == "generic" and path.suffix == ".csv":
        return "generic-csv"
    return PREFIX_FORMAT[prefix]


ALL = sorted(p for p in FIXTURES.iterdir() if p.suffix != ".py")
GOOD = [p for p in ALL if "__bad__" not in p.name and "nan_score" not in p.name]


class Trickle(io.RawIOBase):
    """A stream that hands out at most 3 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._data.read(3 if n is None or n < 0 or n > 3 else n)

    def readline(self, limit: int = -1) -> bytes:
        return self._data.readline(limit)


def test_the_registry_is_explicit():
    assert sorted(PARSERS) == ["deepeval", "generic-csv", "generic-json", "inspect", "junit", "lm-eval",
                               "openai-evals", "promptfoo", "promptfoo-csv", "promptfoo-jsonl"]


def test_an_unknown_format_names_the_known_ones():
    with pytest.raises(EvidenceError, match=re.escape("unknown evidence format 'csv'; known formats: deepeval, generic-csv")):
        read_evidence("csv", io.BytesIO(b"x"))


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_digest_and_size_cover_the_whole_file(path):
    data = path.read_bytes()
    parsed, sha256, size = read_evidence(format_of(path), io.BytesIO(data))
    assert (sha256, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert parsed.format == format_of(path)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_a_trickling_stream_parses_the_same(path):
    data = path.read_bytes()
    fmt = format_of(path)
    assert read_evidence(fmt, Trickle(data)) == read_evidence(fmt, io.BytesIO(data))


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_counts_agree_with_values(path):
    """Wherever passed and failed are set, value is their rate (to the rounding of the counts)."""
    parsed = read_evidence(format_of(path), path.open("rb"))[0]
    for m in parsed.metrics.values():
        if m.passed is not None or m.failed is not None:
            total = m.passed + m.failed
            assert total > 0 and m.n == total, m
            assert abs(m.value - m.passed / total) <= 0.5 / total + 1e-9, m


def test_a_file_over_the_cap_is_refused():
    data = (FIXTURES / "junit__pytest_with_xfail.xml").read_bytes()
    with pytest.raises(EvidenceError, match=f"larger than the {len(data) - 1} byte limit"):
        read_evidence("junit", io.BytesIO(data), max_bytes=len(data) - 1)
    assert read_evidence("junit", io.BytesIO(data), max_bytes=len(data))[2] == len(data)


def test_an_unexpected_exception_becomes_an_evidence_error(monkeypatch):
    def broken(stream):
        raise KeyError("surprise")

    monkeypatch.setitem(PARSERS, "junit", broken)
    with pytest.raises(EvidenceError, match=re.escape("could not parse as junit: KeyError: 'surprise'")):
        read_evidence("junit", io.BytesIO(b"<testsuite/>"))


@pytest.mark.parametrize("fmt", sorted(PARSERS))
@pytest.mark.parametrize("data", [b"", b"   \n\n", b"\x00\xff\xfe garbage \x80", b"\xef\xbb\xbf"], ids=["empty", "blank", "binary", "bom"])
def test_every_parser_refuses_nothing_and_noise(fmt, data):
    with pytest.raises(EvidenceError):
        read_evidence(fmt, io.BytesIO(data))


@pytest.mark.parametrize("fmt", sorted(PARSERS))
def test_every_parser_refuses_deep_nesting(fmt):
    for data in (b"[" * 200_000 + b"]" * 200_000, b"<a>" * 200_000):
        with pytest.raises(EvidenceError):
            read_evidence(fmt, io.BytesIO(data))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_file_parses_as_another_format(path):
    own = format_of(path)
    data = path.read_bytes()
    for fmt in sorted(set(PARSERS) - {own}):
        with pytest.raises(EvidenceError):
            read_evidence(fmt, io.BytesIO(data))


def test_the_package_exports_only_the_registry_and_reader():
    assert evidence.__all__ == ["PARSERS", "read_evidence"]
