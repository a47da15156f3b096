"""What the evidence parsers share: strict JSON decoding, finite numbers, timestamps, metrics.

Every helper raises :class:`EvidenceError` with a reason that names the problem and, where the
decoder gives one, its place (offset, line, column). Nothing here reads a clock or a file.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, BinaryIO, Iterator

from promotion_gate.checklists.evidence.base import MAX_COUNT, PASS_RATE, EvidenceError, Metric

MAX_LINE_BYTES = 64 << 20
"""A JSONL line longer than this is refused, so a file without newlines cannot fill memory."""

MAX_DEPTH = 512
"""JSON nested deeper than this is refused, in every format (streamed or read whole)."""

RATE_NAMES = frozenset({PASS_RATE, "accuracy", "acc", "acc_norm", "exact_match"})
"""Metric names that are rates by definition: a value outside [0, 1] is an error."""

BOM = b"\xef\xbb\xbf"


class Prefixed:
    """A stream with ``head`` put back in front of it (what a parser peeked at)."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(n)
        if n is None or n < 0:
            data, self._head = self._head + self._stream.read(), b""
            return data
        data, self._head = self._head[:n], self._head[n:]
        return data

    def readline(self, n: int = -1) -> bytes:
        if not self._head:
            return self._stream.readline(n)
        head, self._head = self._head, b""
        cut = head.find(b"\n")
        if cut >= 0:
            self._head = head[cut + 1 :]
            return head[: cut + 1]
        limit = -1 if n is None or n < 0 else n - len(head)
        return head + (self._stream.readline(limit) if limit != 0 else b"")


def read_exactly(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, however short the stream's reads are."""
    parts, got = [], 0
    while got < n and (chunk := stream.read(n - got)):
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def skip_bom(stream: BinaryIO) -> Prefixed:
    """The stream without a leading UTF-8 byte-order mark: every format treats one the same way."""
    head = read_exactly(stream, len(BOM))
    return Prefixed(b"" if head == BOM else head, stream)


def decode_utf8(data: bytes, what: str, *, base_offset: int = 0) -> str:
    """UTF-8 text of ``data``; the bad byte's offset if it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start]
        raise EvidenceError(f"{what} is not UTF-8: byte 0x{bad:02x} at offset {base_offset + exc.start} ({exc.reason})") from None


def _refuse_constant(name: str) -> Any:
    raise EvidenceError(f"JSON constant {name} is not a finite number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for dup, _ in pairs:
            if dup in seen:
                break
            seen.add(dup)
        raise EvidenceError(f"key {dup[:80]!r} appears twice in one object")
    return out


def check_depth(value: Any, what: str, limit: int = MAX_DEPTH) -> None:
    """Refuse a parsed value nested deeper than ``limit`` (iterative: no recursion of its own)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                raise EvidenceError(f"{what} is nested deeper than {limit} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def parse_json(data: bytes, what: str, *, allow_nan: bool = False, line: int | None = None) -> Any:
    """One JSON document. ``allow_nan`` keeps NaN/Infinity so the caller can name the field.

    A key repeated in one object, nesting past :data:`MAX_DEPTH` and integers past Python's digit
    limit are refused with a one-line reason.
    """
    text = decode_utf8(data, what)
    if not text.strip():
        raise EvidenceError(f"{what} is empty")
    hook = (lambda name: float(name)) if allow_nan else _refuse_constant
    try:
        value = json.loads(text, parse_constant=hook, object_pairs_hook=_unique_keys)
    except EvidenceError as exc:
        raise EvidenceError(f"{what}: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        where = f"line {line}, column {exc.colno}" if line else f"line {exc.lineno}, column {exc.colno}"
        raise EvidenceError(f"{what} is not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise EvidenceError(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # an integer literal past Python's digit limit
        raise EvidenceError(f"{what} is not usable JSON: {one_line(exc, 120)}") from None
    check_depth(value, what)
    return value


def read_all(stream: BinaryIO) -> bytes:
    """Every byte left in the stream, however short its reads."""
    return b"".join(iter(lambda: stream.read(1 << 20), b""))


def read_capped(stream: BinaryIO, cap: int, what: str, hint: str = "") -> bytes:
    """The whole stream, refused once it passes ``cap`` bytes (never more than cap + 1 held)."""
    data = read_exactly(stream, cap + 1)
    if len(data) > cap:
        raise EvidenceError(f"{what} is larger than the {cap >> 20} MiB this format is read whole up to{hint}")
    return data


def read_json(stream: BinaryIO, what: str, *, cap: int, allow_nan: bool = False) -> Any:
    """The whole stream as one JSON document, refused past ``cap`` bytes (memory: about 4 x cap)."""
    return parse_json(read_capped(stream, cap, what), what, allow_nan=allow_nan)


def iter_json_lines(stream: BinaryIO, what: str, *, allow_nan: bool = False) -> Iterator[tuple[int, Any]]:
    """(line number, value) for every non-blank line; one line in memory at a time."""
    lineno = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        lineno += 1
        if len(raw) > MAX_LINE_BYTES:
            raise EvidenceError(f"{what}: line {lineno} is longer than {MAX_LINE_BYTES >> 20} MiB")
        if raw.strip():
            yield lineno, parse_json(raw, f"{what} line {lineno}", allow_nan=allow_nan, line=lineno)


def number(value: Any, where: str) -> float | None:
    """``value`` as a float when it is a JSON number; None when it is not a number at all.

    NaN and infinities are refused: a metric that is not a finite number is never evidence.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        result = float(value)
    except OverflowError:
        raise EvidenceError(f"{where} is too large to be a number") from None
    if not math.isfinite(result):
        raise EvidenceError(f"{where} is {value!r}, not a finite number")
    return result


def count(value: Any, where: str) -> int | None:
    """A non-negative integer count, or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > MAX_COUNT:
        shown = repr(value) if not isinstance(value, int) or value.bit_length() < 80 else "a number too large"
        raise EvidenceError(f"{where} is {shown[:60]}, not a non-negative whole number below 2**63")
    return value


def rate(value: float, name: str) -> float:
    """``value`` if it is a rate in [0, 1]; an error naming the metric if not."""
    if not 0.0 <= value <= 1.0:
        raise EvidenceError(f"{name} is {value!r}: a rate outside [0, 1]")
    return value


def is_rate_name(name: str) -> bool:
    """Whether a metric name (its last segment, any ``,filter`` dropped) is a rate by definition."""
    return name.rsplit("/", 1)[-1].split(",", 1)[0] in RATE_NAMES


def timestamp(value: Any, where: str) -> datetime | None:
    """An ISO 8601 string or a Unix time (seconds, or milliseconds past 1e11) as a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise EvidenceError(f"{where} {value[:60]!r} is not an ISO 8601 date-time") from None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        raise EvidenceError(f"{where} is not a plausible Unix time")
    seconds = number(value, where)
    if seconds is None:
        raise EvidenceError(f"{where} is {type(value).__name__}, not a date-time")
    if seconds > 1e11:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise EvidenceError(f"{where} {value!r} is not a plausible Unix time") from None


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object, else an empty one (for optional sections)."""
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str | None:
    """A non-empty string, else None."""
    return value if isinstance(value, str) and value.strip() else None


def rate_metric(passed: int, failed: int, name: str = PASS_RATE) -> Metric:
    """passed / (passed + failed), with the counts."""
    n = passed + failed
    if n == 0:
        raise EvidenceError(f"{name}: no passed or failed outcome to compute it from")
    return Metric(name=name, value=passed / n, n=n, passed=passed, failed=failed)


class Mean:
    """A running mean that never holds the values."""

    __slots__ = ("total", "n")

    def __init__(self) -> None:
        self.total = 0.0
        self.n = 0

    def add(self, value: float) -> None:
        self.total += value
        self.n += 1

    def metric(self, name: str, **extra: Any) -> Metric:
        value = self.total / self.n
        if not math.isfinite(value):
            raise EvidenceError(f"{name}: the mean of its {self.n} values is not a finite number")
        return Metric(name=name, value=value, n=self.n, **extra)


def accuracy_counts(value: float, n: int | None) -> dict[str, int]:
    """passed/failed derived from an accuracy over ``n`` samples (none when it cannot be)."""
    if not n or not 0.0 <= value <= 1.0:
        return {}
    passed = round(value * n)
    return {"passed": passed, "failed": n - passed}


def one_line(message: object, limit: int = 300) -> str:
    """A library's message on one line, cut to ``limit`` characters."""
    flat = " ".join(str(message).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
