"""Default factories of the core's models."""

from __future__ import annotations

from typing import Any


def empty_list() -> list[Any]:
    """A new empty list: ``Field(default_factory=empty_list)``, where ``default_factory=list``
    gives the same models. Building a model, pydantic asks for each default factory's signature
    (one taking an argument is handed the validated data); for the builtin ``list``
    ``inspect.signature`` parses its text signature with ``tokenize``, whose regular
    expressions are compiled the first time: about 24 M instructions of `promotion-gate check`
    (2%) for its 19 such fields, where this function's signature is read directly
    (docs/benchmarks.md, `check`)."""
    return []
