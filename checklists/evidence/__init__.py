"""Evidence parsers: evaluation result files turned into metrics and provenance.

``PARSERS`` is the explicit list of formats (no parser registers itself). ``read_evidence``
parses a stream with one of them and returns the SHA-256 and size of the whole file, so the
digest a reviewer signs covers every byte, whatever the parser read. A leading UTF-8
byte-order mark is dropped before any parser sees the stream, so every format treats it alike.
"""

from __future__ import annotations

from importlib import import_module
from typing import BinaryIO

from promotion_gate.checklists.evidence._common import one_line, skip_bom
from promotion_gate.checklists.evidence.base import EvidenceError, HashingReader, ParsedEvidence, Parser


class _Lazy:
    """The parser ``module:function`` of this package, imported on its first call: `check` loads
    only the parsers of the formats a manifest names."""

    __slots__ = ("target", "_parse")

    def __init__(self, target: str) -> None:
        self.target = target
        self._parse: Parser | None = None

    def __call__(self, stream: BinaryIO) -> ParsedEvidence:
        if self._parse is None:
            module, _, name = self.target.partition(":")
            self._parse = getattr(import_module(f"{__name__}.{module}"), name)
        return self._parse(stream)

    def __repr__(self) -> str:
        return f"<parser {self.target}>"


PARSERS: dict[str, Parser] = {
    "junit": _Lazy("junit:parse"),
    "promptfoo": _Lazy("promptfoo:parse_json"),
    "promptfoo-jsonl": _Lazy("promptfoo:parse_jsonl"),
    "promptfoo-csv": _Lazy("promptfoo:parse_csv"),
    "lm-eval": _Lazy("lm_eval:parse"),
    "inspect": _Lazy("inspect_ai:parse"),
    "deepeval": _Lazy("deepeval:parse"),
    "openai-evals": _Lazy("openai_evals:parse"),
    "generic-json": _Lazy("generic:parse_json"),
    "generic-csv": _Lazy("generic:parse_csv"),
}

__all__ = ["PARSERS", "read_evidence"]


def read_evidence(fmt: str, stream: BinaryIO, *, max_bytes: int | None = None) -> tuple[ParsedEvidence, str, int]:
    """(parsed evidence, sha256 hex of the whole file, its size in bytes).

    Raises EvidenceError for an unknown format, a file over ``max_bytes``, or any input the parser
    cannot use; an unexpected exception inside a parser becomes an EvidenceError too.
    """
    parser = PARSERS.get(fmt)
    if parser is None:
        raise EvidenceError(f"unknown evidence format {fmt!r}; known formats: {', '.join(sorted(PARSERS))}")
    reader = HashingReader(stream, max_bytes)
    try:
        parsed = parser(skip_bom(reader))  # a leading UTF-8 byte-order mark means nothing in any format
        reader.drain()
    except EvidenceError:
        raise
    except Exception as exc:  # the boundary: bad input never escapes as anything else
        raise EvidenceError(f"could not parse as {fmt}: {type(exc).__name__}: {one_line(exc)}") from exc
    return parsed, reader.sha256.hexdigest(), reader.size
