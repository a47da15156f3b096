"""Control ids as auditors read them: sorted naturally, shown with their titles.

A control id is ``FRAMEWORK:REF`` (``NIST-AI-RMF:MEASURE-2.5``, ``EU-AI-ACT:Art.9``,
``ISO42001:A.6.2.3``). Natural order compares the numbers in a reference as numbers, so
``Art.9`` comes before ``Art.10`` and ``A.6.2.3`` before ``A.6.2.10``.
"""

from __future__ import annotations

import re

_PARTS = re.compile(r"(\d+)")
FRAMEWORKS = {"NIST-AI-RMF": "NIST AI RMF 1.0", "EU-AI-ACT": "EU AI Act", "ISO42001": "ISO/IEC 42001:2023"}


def control_sort_key(control: str) -> tuple:
    """Natural order: framework, then each run of digits as a number."""
    framework, _, ref = control.partition(":")
    return (framework, tuple(int(p) if p.isdigit() else p.lower() for p in _PARTS.split(ref)))


def sorted_controls(controls) -> list[str]:
    return sorted(set(controls), key=control_sort_key)


def control_label(control: str, titles: dict[str, str] | None) -> str:
    """``EU-AI-ACT:Art.14 Human oversight`` (the id alone when no title is known)."""
    title = (titles or {}).get(control)
    return f"{control} {title}" if title else control
