"""What the evidence parsers share: strict JSON decoding, finite numbers, timestamps, metrics.

Every helper raises :class:`EvidenceError` with a reason that names the problem and, where the
decoder gives one, its place (offset, line, column). Nothing here reads a clock or a file.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, BinaryIO, Iterator

from promotion_gate.checklists.evidence.base import PASS_RATE, EvidenceError, Metric

MAX_LINE_BYTES = 64 << 20
"""A JSONL line longer than this is refused, so a file without newlines cannot fill memory."""

_BOM = b"\xef\xbb\xbf"


def decode_utf8(data: bytes, what: str, *, base_offset: int = 0) -> str:
    """UTF-8 text of ``data`` (a leading byte-order mark is dropped); the bad byte's offset if not."""
    skip = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[skip + exc.start]
        at = base_offset + skip + exc.start
        raise EvidenceError(f"{what} is not UTF-8: byte 0x{bad:02x} at offset {at} ({exc.reason})") from None


def _refuse_constant(name: str) -> Any:
    raise EvidenceError(f"JSON constant {name} is not a finite number")


def parse_json(data: bytes, what: str, *, allow_nan: bool = False, line: int | None = None) -> Any:
    """One JSON document. ``allow_nan`` keeps NaN/Infinity so the caller can name the field."""
    text = decode_utf8(data, what)
    if not text.strip():
        raise EvidenceError(f"{what} is empty")
    hook = (lambda name: float(name)) if allow_nan else _refuse_constant
    try:
        return json.loads(text, parse_constant=hook)
    except EvidenceError as exc:
        raise EvidenceError(f"{what}: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        where = f"line {line}, column {exc.colno}" if line else f"line {exc.lineno}, column {exc.colno}"
        raise EvidenceError(f"{what} is not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise EvidenceError(f"{what} is nested too deeply to parse") from None
    except ValueError as exc:  # e.g. an integer literal past Python's digit limit
        raise EvidenceError(f"{what} is not usable JSON: {exc}") from None


def read_all(stream: BinaryIO) -> bytes:
    """Every byte left in the stream, however short its reads."""
    return b"".join(iter(lambda: stream.read(1 << 20), b""))


def read_json(stream: BinaryIO, what: str, *, allow_nan: bool = False) -> Any:
    """The whole stream as one JSON document (memory: the file plus its parsed objects)."""
    return parse_json(read_all(stream), what, allow_nan=allow_nan)


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
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EvidenceError(f"{where} is {value!r}, not a non-negative whole number")
    return value


def timestamp(value: Any, where: str) -> datetime | None:
    """An ISO 8601 string or a Unix time (seconds, or milliseconds past 1e11) as a datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise EvidenceError(f"{where} {value[:60]!r} is not an ISO 8601 date-time") from None
    seconds = number(value, where)
    if seconds is None:
        raise EvidenceError(f"{where} is {type(value).__name__}, not a date-time")
    if seconds > 1e11:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise EvidenceError(f"{where} {value!r} is not a plausible Unix time") from None


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
