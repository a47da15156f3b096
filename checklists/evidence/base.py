"""What every evidence parser yields, and the errors it raises.

A parser is a function ``parse(stream: BinaryIO) -> ParsedEvidence``. It reads the stream once
(it may stream it), never opens a path, and raises :class:`EvidenceError` with a reason a team
can act on when the file is unusable. It never returns a pass-worthy result for bad input.
"""

import hashlib
import math
from datetime import datetime, timezone
from typing import BinaryIO, Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PASS_RATE = "pass_rate"
"""The metric name every format with pass/fail counts reports: passed / (passed + failed)."""


class EvidenceError(Exception):
    """The evidence file cannot be used; ``reason`` says why, in a team's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


MAX_COUNT = (1 << 63) - 1
"""Every count a parser reads or computes fits a signed 64-bit integer."""


class Metric(BaseModel):
    """One number of one model's results.

    ``n`` is the number of unique samples evaluated for this metric, counted from the file's own
    per-sample records (skipped tests and repeated epochs never add to it); None when the file has
    no per-sample records behind the metric. ``higher_is_better`` is the tool's own statement of
    direction (lm-eval's ``higher_is_better``); None when the file does not say.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: float
    n: int | None = Field(default=None, ge=0, le=MAX_COUNT, description="unique samples behind the value")
    passed: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    failed: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    stderr: float | None = None
    higher_is_better: bool | None = None

    @field_validator("value", "stderr")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and (math.isnan(v) or math.isinf(v)):
            raise ValueError("metric value is not a finite number")
        return v


class ModelGroup(BaseModel):
    """The results of one provider/model in a file. ``raw`` is the model id as the file wrote it;
    provider, model and version are read from it only as far as the format allows (a provider
    that cannot be told apart is None and the whole id is the model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = None
    model: str | None = None
    version: str | None = None
    raw: str | None = None
    metrics: dict[str, Metric]


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str
    tool_version: str | None = None
    model: str | None = None
    dataset: str | None = None
    created_at: datetime | None = None

    @field_validator("created_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """A time with an offset is kept in UTC: JSON writes an offset to the minute only, so a time at
        ``+00:00:30`` would come back from the decision 30 s off and its lock would not match it."""
        return value.astimezone(timezone.utc) if value is not None and value.tzinfo is not None else value


class ParsedEvidence(BaseModel):
    """What a file says. ``groups`` holds one entry per distinct provider/model, each with metrics
    computed only from that model's records. ``metrics`` is the single group's metrics, and is
    empty when the file holds several models: pooled numbers are never offered to a check.
    ``notes`` are facts the record should carry (a limit of what the format lets us verify)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str
    metrics: dict[str, Metric]
    provenance: Provenance
    groups: tuple[ModelGroup, ...] = ()
    notes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _never_pooled(self) -> "ParsedEvidence":
        if len(self.groups) > 1 and self.metrics:
            raise ValueError("a file with several models offers no pooled metrics")
        if len(self.groups) == 1 and self.metrics != self.groups[0].metrics:
            raise ValueError("a single-model file's metrics are its group's metrics")
        return self


def build_evidence(fmt: str, provenance: Provenance, groups: list[ModelGroup], notes: tuple[str, ...] = ()) -> ParsedEvidence:
    """The evidence of ``groups``: top-level metrics only when there is exactly one group."""
    if not groups:
        raise EvidenceError("the file holds no results for any model")
    metrics = groups[0].metrics if len(groups) == 1 else {}
    return ParsedEvidence(format=fmt, metrics=metrics, provenance=provenance, groups=tuple(groups), notes=notes)


Parser = Callable[[BinaryIO], ParsedEvidence]


class HashingReader:
    """Wraps a binary stream; hashes every byte read and counts them, with a size cap."""

    def __init__(self, stream: BinaryIO, max_bytes: int | None = None) -> None:
        self._stream = stream
        self._max = max_bytes
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._account(data)
        return data

    def readline(self, n: int = -1) -> bytes:
        data = self._stream.readline(n)
        self._account(data)
        return data

    def readinto(self, b) -> int:  # used by io.BufferedReader/TextIOWrapper
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def __iter__(self):
        while line := self.readline():
            yield line

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:  # the caller owns the stream
        pass

    def flush(self) -> None:
        pass

    def drain(self) -> None:
        """Read what the parser left, so the digest covers the whole file."""
        while self.read(1 << 20):
            pass

    def _account(self, data: bytes) -> None:
        self.size += len(data)
        if self._max is not None and self.size > self._max:
            raise EvidenceError(f"file is larger than the {self._max} byte limit")
        self.sha256.update(data)
