"""JSON read from the audit store (or any bytes someone else wrote): one parse, one kind of error.

``json.loads`` raises ``RecursionError``, not ``ValueError``, on input nested deeper than the
interpreter's recursion limit (``"[" * 200_000``): a tampered envelope or ledger line would then
end ``audit verify`` with "no verdict" (exit 2) instead of the tamper finding. :func:`loads`
makes that a ``ValueError`` like any other text that is not JSON, so every caller's existing
``except ValueError`` names the file.
"""

from __future__ import annotations

import json
from typing import Any


class NotJSON(ValueError):
    """Not JSON, or nested too deep to parse."""


def loads(data: bytes | str) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise NotJSON("nested too deep to parse") from None
