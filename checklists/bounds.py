"""Bounds on metrics: every floor and threshold says ``min`` or ``max``, and every number is finite.

A pass rate has a minimum; a latency or a perplexity has a maximum. A bound is written
``{min: 0.9}`` or ``{max: 2000}``; a bare number is allowed in a manifest only for a metric whose
direction the policy knows. Tightening keeps the stricter of two bounds in the same direction.
"""

import math
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Tolerance = Annotated[float, Field(ge=0, allow_inf_nan=False, description="largest allowed change against production")]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False, strict=True, description="a share, 0 to 1")]
Direction = Literal["min", "max"]


class Bound(BaseModel):
    """A minimum or a maximum on one metric (exactly one of the two)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: FiniteFloat | None = None
    max: FiniteFloat | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Bound":
        if (self.min is None) == (self.max is None):
            raise ValueError("say exactly one of min or max")
        return self

    @property
    def direction(self) -> Direction:
        return "min" if self.min is not None else "max"

    @property
    def value(self) -> float:
        return self.min if self.min is not None else self.max  # type: ignore[return-value]

    def met_by(self, value: float) -> bool:
        return value >= self.value if self.direction == "min" else value <= self.value

    def tighter_than_or_equal(self, other: "Bound") -> bool:
        """Same direction and at least as strict as ``other``."""
        return self.direction == other.direction and (
            self.value >= other.value if self.direction == "min" else self.value <= other.value
        )

    def __str__(self) -> str:
        return f"{'>=' if self.direction == 'min' else '<='} {self.value:g}"


def _threshold_kind(value: object) -> str:
    return "bound" if isinstance(value, (dict, Bound)) else "number"


Threshold = Annotated[
    Union[Annotated[Bound, Tag("bound")], Annotated[FiniteFloat, Tag("number")]],
    Discriminator(_threshold_kind),
]
"""A manifest threshold: ``{min: x}``, ``{max: x}``, or a bare number (the policy must know its direction)."""


def bound(direction: Direction, value: float) -> Bound:
    return Bound(**{direction: value})


def tightest(a: Bound, b: Bound) -> Bound:
    """The stricter of two bounds of the same direction."""
    return a if a.tighter_than_or_equal(b) else b


def finite_numbers(values: dict, what: str) -> dict:
    """Refuse NaN and infinities before a union type hides which field held them (YAML ``.nan``)."""
    if not isinstance(values, dict):
        return values
    for key, value in values.items():
        numbers = value.values() if isinstance(value, dict) else [value]
        for v in numbers:
            if isinstance(v, bool):
                raise ValueError(f"{what} {key}: {v!r} is not a number")
            if isinstance(v, int) and abs(v) > 1e300:  # math.isfinite would raise OverflowError on a 400-digit int
                raise ValueError(f"{what} {key}: a {len(str(abs(v)))}-digit number is not a usable bound")
            if isinstance(v, (int, float)) and not math.isfinite(v):
                raise ValueError(f"{what} {key}: {v!r} is not a finite number")
    return values


def direction_of_tool(higher_is_better: bool | None) -> Direction | None:
    if higher_is_better is None:
        return None
    return "min" if higher_is_better else "max"
