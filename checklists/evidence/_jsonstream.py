"""Stream a large JSON document with bounded memory: build only the values at chosen paths.

``select(stream, paths, what)`` walks ijson's low-level events. A path is a tuple of map keys
and :data:`ITEM` (any element of an array). Values at a chosen path are built whole and yielded
one at a time; everything else is parsed (so the whole document is still checked for syntax)
and dropped. Memory is bounded by the largest single chosen value, not by the file. Containers
at a path in ``marks`` report their end as ``(path, END)``, so fields of one record can be tied
together. NaN and Infinity are not JSON and are refused; so are nesting deeper than
:data:`MAX_DEPTH`, a key repeated in one built object, and one token (a string, a number, a run
of whitespace) longer than :data:`MAX_TOKEN_BYTES`.

Time is linear in the input, one very long token included: yajl re-scans a token that spans
reads from its start on every read, so reads double in size for as long as no event comes out
(see :class:`_Paced`) instead of staying at 64 KiB.

A document of at most :data:`FAST_MAX_BYTES` is first decoded whole by the json module (C, about
four times faster than the walk over ijson's events for the examples' results files), and the
tree is walked instead of the events, but only where that gives exactly what the streaming walk
gives: the bytes are strict UTF-8, json accepts them, and nothing in them is one of the things
the two parsers treat differently (:func:`_loads_exact` lists them). Anything else, including
every input json refuses, goes through the streaming walk, so an error is always the streaming
walk's own error. tests/test_jsonstream_fastpath.py holds the two paths equal on hostile and
generated inputs; the evidence tests run on the streaming path alone with ``pytest -p
tests.jsonstream_streaming_only``.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, BinaryIO, Iterator

import ijson
from ijson.common import IncompleteJSONError, JSONError

from promotion_gate.checklists.evidence._common import MAX_DEPTH, Prefixed, one_line, read_exactly
from promotion_gate.checklists.evidence.base import EvidenceError

ITEM = -1
"""Path component for "any array element" (map keys are always strings, so it cannot clash)."""

END = object()
"""The value yielded for a marked container when it closes."""

CHUNK = 1 << 16
MAX_TOKEN_BYTES = 64 << 20
FAST_MAX_BYTES = 4 << 20
"""Documents up to this size may be decoded whole (json holds about ten times the file in memory)."""

_STARTS = frozenset({"start_map", "start_array"})
_ENDS = frozenset({"end_map", "end_array"})

Path = tuple[Any, ...]


class _Paced:
    """What ijson reads from: reads of 64 KiB, or as many bytes as came in since the last event.

    A token split across reads is scanned again from its start on every read, so fixed reads make
    one long token quadratic; reading as much again as is pending makes the re-scans a geometric
    series (linear in total). More than :data:`MAX_TOKEN_BYTES` without an event is refused.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pending = 0
        self.events = 0
        self._seen = 0

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        if self.events != self._seen:
            self._seen, self._pending = self.events, 0
        elif self._pending > MAX_TOKEN_BYTES:
            raise EvidenceError(f"one JSON token (a string, number or whitespace) is longer than {MAX_TOKEN_BYTES >> 20} MiB")
        chunk = self._stream.read(max(CHUNK, min(self._pending, MAX_TOKEN_BYTES + 1 - self._pending)))
        self._pending += len(chunk)
        return chunk


def select(stream: BinaryIO, paths: frozenset[Path], what: str, marks: frozenset[Path] = frozenset()) -> Iterator[tuple[Path, Any]]:
    """Yield (path, value) for each value at one of ``paths``, in document order."""
    return select_with(stream, paths, what, marks, fast_max_bytes=FAST_MAX_BYTES)


def select_with(stream: BinaryIO, paths: frozenset[Path], what: str, marks: frozenset[Path] = frozenset(), *,
                fast_max_bytes: int) -> Iterator[tuple[Path, Any]]:
    """:func:`select`, decoding a document of at most ``fast_max_bytes`` whole where that is exact
    (a negative bound: always streamed)."""
    try:
        yield from _select(stream, paths, marks, fast_max_bytes)
    except (IncompleteJSONError, JSONError) as exc:
        raise EvidenceError(f"{what} is not valid JSON: {_describe(exc)}") from None
    except UnicodeDecodeError as exc:
        raise EvidenceError(f"{what} is not UTF-8: {exc.reason}") from None
    except EvidenceError as exc:
        raise EvidenceError(f"{what}: {exc.reason}") from None
    except ValueError as exc:  # an integer literal past Python's digit limit
        raise EvidenceError(f"{what} is not usable JSON: {one_line(exc, 120)}") from None


_SHARED: ContextVar[list[Any] | None] = ContextVar("promotion_gate_shared_decode", default=None)


@contextmanager
def shared_decode() -> Iterator[None]:
    """Within it, a document decoded whole is decoded once for readers of the same bytes: the
    parse of an evidence file and the reading of its usage (forge/candidate_reader.py) select
    from one decoded tree instead of two (each decode of the example's 480 KB promptfoo file is
    about 62 M instructions; docs/benchmarks.md, `check`). Only the last document is held, only
    until the block ends, and only for bytes equal to it: a reader of other bytes decodes its
    own. The readers only read the tree (:func:`select` yields parts of it); the test
    of this context holds the tree unchanged after both the promptfoo parse and its usage."""
    token = _SHARED.set([None, None])
    try:
        yield
    finally:
        _SHARED.reset(token)


def _decoded(head: bytes) -> Any:
    """:func:`_loads_exact` of ``head``, or the tree of the same bytes decoded earlier in
    :func:`shared_decode`."""
    held = _SHARED.get()
    if held is not None and held[0] is not None and held[0] == head:
        return held[1]
    value = _loads_exact(head)
    if held is not None:
        held[:] = [head, value] if value is not _INEXACT else [None, None]
    return value


def _select(stream: BinaryIO, paths: frozenset[Path], marks: frozenset[Path], fast_max_bytes: int) -> Iterator[tuple[Path, Any]]:
    fast_max_bytes = min(fast_max_bytes, MAX_TOKEN_BYTES)  # no token of a document this small passes the token cap
    if fast_max_bytes >= 0:
        head = read_exactly(stream, fast_max_bytes + 1)
        if len(head) <= fast_max_bytes:
            value = _decoded(head)
            if value is not _INEXACT:
                yield from _visit(value, (), paths, marks, _longest(paths, marks))
                return
            stream = io.BytesIO(head)
        else:
            stream = Prefixed(head, stream)
    paced = _Paced(stream)
    yield from _walk(ijson.basic_parse(paced, buf_size=CHUNK, use_float=True), paced, paths, marks)


def _describe(exc: Exception) -> str:
    message = exc.args[0] if exc.args else exc
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    message = one_line(message)
    if ("invalid char" in message or "malformed number" in message) and ("NaN" in message or "Infinity" in message):
        return f"NaN and Infinity are not JSON numbers ({message})"
    if "integer overflow" in message:
        return f"an integer past 64 bits is not a usable number ({message})"
    return message or "premature end of file"


def _walk(events: Iterator[tuple[str, Any]], paced: _Paced, paths: frozenset[Path], marks: frozenset[Path]) -> Iterator[tuple[Path, Any]]:
    """Every loop over ``events`` (here, in _build and in _skip) counts each event for ``paced``;
    one loop per event, not a chain of generators, as this is the hot path of a large file."""
    longest = _longest(paths, marks)
    slots: list[Any] = []  # one per open container: its current key, or ITEM
    for event, value in events:
        paced.events += 1
        if event == "map_key":
            slots[-1] = value
        elif event in _ENDS:
            slots.pop()
            if marks and (path := tuple(slots)) in marks:
                yield path, END
        elif (path := tuple(slots)) in paths:
            yield path, _build(event, value, events, paced, len(slots))
        elif event in _STARTS:
            if len(slots) >= longest:
                _skip(events, paced, len(slots) + 1)
            else:
                if len(slots) >= MAX_DEPTH:
                    raise EvidenceError(f"JSON is nested deeper than {MAX_DEPTH} levels")
                slots.append(ITEM if event == "start_array" else None)


def _build(event: str, value: Any, events: Iterator[tuple[str, Any]], paced: _Paced, base: int) -> Any:
    """The whole value that starts with (event, value), through its close; a key repeated in one
    object and nesting past :data:`MAX_DEPTH` are refused."""
    if event not in _STARTS:
        return value
    root: Any = {} if event == "start_map" else []
    stack: list[Any] = [root]
    keys: list[Any] = [None]
    depth = base + 1
    for ev, val in events:
        paced.events += 1
        top = stack[-1]
        if ev == "map_key":
            if val in top:
                raise EvidenceError(f"key {str(val)[:80]!r} appears twice in one object")
            keys[-1] = val
            continue
        if ev in _ENDS:
            stack.pop()
            keys.pop()
            depth -= 1
            if depth == base:
                return root
            continue
        item = {} if ev == "start_map" else [] if ev == "start_array" else val
        if isinstance(top, dict):
            top[keys[-1]] = item
        else:
            top.append(item)
        if ev in _STARTS:
            depth += 1
            if depth > MAX_DEPTH:
                raise EvidenceError(f"JSON is nested deeper than {MAX_DEPTH} levels")
            stack.append(item)
            keys.append(None)
    raise EvidenceError("JSON ends inside a value")  # ijson reports premature EOF first


def _skip(events: Iterator[tuple[str, Any]], paced: _Paced, depth: int) -> None:
    """Consume the container just opened (at ``depth``), checking only its nesting."""
    base = depth - 1
    for event, _ in events:
        paced.events += 1
        if event in _STARTS:
            depth += 1
            if depth > MAX_DEPTH:
                raise EvidenceError(f"JSON is nested deeper than {MAX_DEPTH} levels")
        elif event in _ENDS:
            depth -= 1
            if depth == base:
                return
    raise EvidenceError("JSON ends inside a value")  # ijson reports premature EOF first


def _longest(paths: frozenset[Path], marks: frozenset[Path]) -> int:
    return max(map(len, paths | marks)) if marks else max(map(len, paths))


_INEXACT = object()
"""What :func:`_loads_exact` returns when only the streaming walk can say what the bytes are."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_MAX_INT = (1 << 63) - 1  # yajl refuses integers outside +-(2**63 - 1), -2**63 included


class _Inexact(Exception):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Inexact
    return out


def _no_constant(name: str) -> Any:
    raise _Inexact


def _loads_exact(data: bytes) -> Any:
    """The document decoded by json, or :data:`_INEXACT` where that could differ from the streaming
    walk in value or in verdict: bytes that are not strict UTF-8 or that json refuses; NaN and
    Infinity; a repeated key in any object (the walk refuses one only inside a chosen value, and
    visits a repeated key on its path twice); nesting past :data:`MAX_DEPTH` (json's own limit
    is the interpreter's recursion limit); an integer outside +-(2**63 - 1) and a float that
    overflows to infinity (yajl refuses both, json accepts them); a ``\\uD800``-``\\uDFFF``
    escape (yajl turns a lone surrogate into ``?``, json keeps it)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _INEXACT
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        return _INEXACT
    try:
        value = json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
    except (_Inexact, ValueError, RecursionError):  # JSONDecodeError is a ValueError, as is a too-long integer
        return _INEXACT
    if not _plain(value):
        return _INEXACT
    if type(value) is not dict and type(value) is not list:
        return value
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # one loop over every child, no recursion: this runs on every small document
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return _INEXACT
        for child in item.values() if type(item) is dict else item:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, depth + 1))
            elif (kind is int and not -_MAX_INT <= child <= _MAX_INT) or (kind is float and (child == _INF or child == -_INF)):
                return _INEXACT
    return value


def _plain(scalar: Any) -> bool:
    """A top-level value within yajl's numbers (containers are walked by the caller)."""
    kind = type(scalar)
    return not ((kind is int and not -_MAX_INT <= scalar <= _MAX_INT) or (kind is float and (scalar == _INF or scalar == -_INF)))


_INF = float("inf")


def _visit(value: Any, path: Path, paths: frozenset[Path], marks: frozenset[Path], longest: int) -> Iterator[tuple[Path, Any]]:
    """What :func:`_walk` yields for a decoded tree: the value at a chosen path whole; below
    ``longest`` the containers' children in document order, then END for a marked container."""
    if path in paths:
        yield path, value
        return
    if len(path) >= longest:
        return
    kind = type(value)
    if kind is dict:
        for key, child in value.items():
            yield from _visit(child, path + (key,), paths, marks, longest)
    elif kind is list:
        inner = path + (ITEM,)
        for child in value:
            yield from _visit(child, inner, paths, marks, longest)
    else:
        return
    if path in marks:
        yield path, END
