"""Stream a large JSON document with bounded memory: build only the values at chosen paths.

``select(stream, paths, what)`` walks ijson's low-level events. A path is a tuple of map keys
and :data:`ITEM` (any element of an array). Values at a chosen path are built whole and yielded
one at a time; everything else is parsed (so the whole document is still checked for syntax)
and dropped. Memory is bounded by the largest single chosen value, not by the file.
NaN and Infinity are not JSON and are refused; so is nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Iterator

import ijson
from ijson.common import IncompleteJSONError, JSONError, ObjectBuilder

from promotion_gate.checklists.evidence._common import one_line
from promotion_gate.checklists.evidence.base import EvidenceError

ITEM = -1
"""Path component for "any array element" (map keys are always strings, so it cannot clash)."""

MAX_DEPTH = 512

_STARTS = frozenset({"start_map", "start_array"})
_ENDS = frozenset({"end_map", "end_array"})

Path = tuple[Any, ...]


def select(stream: BinaryIO, paths: frozenset[Path], what: str) -> Iterator[tuple[Path, Any]]:
    """Yield (path, value) for each value at one of ``paths``, in document order."""
    try:
        yield from _walk(ijson.basic_parse(stream, use_float=True), paths)
    except (IncompleteJSONError, JSONError) as exc:
        raise EvidenceError(f"{what} is not valid JSON: {_describe(exc)}") from None
    except UnicodeDecodeError as exc:
        raise EvidenceError(f"{what} is not UTF-8: {exc.reason}") from None
    except ValueError as exc:  # an integer literal past Python's digit limit
        raise EvidenceError(f"{what} is not usable JSON: {one_line(exc)}") from None


def _describe(exc: Exception) -> str:
    message = exc.args[0] if exc.args else exc
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    message = one_line(message)
    if "invalid char" in message and ("NaN" in message or "Infinity" in message):
        return f"NaN and Infinity are not JSON numbers ({message})"
    return message or "premature end of file"


def _walk(events: Iterator[tuple[str, Any]], paths: frozenset[Path]) -> Iterator[tuple[Path, Any]]:
    longest = max(map(len, paths))
    slots: list[Any] = []  # one per open container: its current key, or ITEM
    for event, value in events:
        if event == "map_key":
            slots[-1] = value
        elif event in _ENDS:
            slots.pop()
        elif (path := tuple(slots)) in paths:
            yield path, _build(event, value, events, len(slots))
        elif event in _STARTS:
            if len(slots) >= longest:
                _skip(events, len(slots) + 1)
            else:
                slots.append(ITEM if event == "start_array" else None)


def _container(events: Iterator[tuple[str, Any]], base: int) -> Iterator[tuple[str, Any]]:
    """The events of the container opened one level above ``base``, through its close; checks nesting."""
    depth = base + 1
    for event, value in events:
        yield event, value
        if event in _STARTS:
            depth += 1
            if depth > MAX_DEPTH:
                raise EvidenceError(f"JSON is nested deeper than {MAX_DEPTH} levels")
        elif event in _ENDS:
            depth -= 1
            if depth == base:
                return
    raise EvidenceError("JSON ends inside a value")  # ijson reports premature EOF first


def _build(event: str, value: Any, events: Iterator[tuple[str, Any]], base: int) -> Any:
    """The whole value that starts with (event, value)."""
    if event not in _STARTS:
        return value
    builder = ObjectBuilder()
    builder.event(event, value)
    for item in _container(events, base):
        builder.event(*item)
    return builder.value


def _skip(events: Iterator[tuple[str, Any]], depth: int) -> None:
    """Consume the container just opened (at ``depth``), checking only its nesting."""
    for _ in _container(events, depth - 1):
        pass
