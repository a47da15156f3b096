"""Local runs (`promotion-gate run`, `demo`) start Prefect's embedded server with its analytics off.

Through Prefect's own settings, for the run only (``temporary_settings``; the embedded server, a
subprocess, is started with the current settings), instead of writing ``os.environ``: the SDK
asks that server whether analytics are on, so nothing is reported. An operator's own
``PREFECT_SERVER_ANALYTICS_ENABLED`` is respected.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def quiet_prefect() -> Iterator[None]:
    from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED, temporary_settings

    if "PREFECT_SERVER_ANALYTICS_ENABLED" in os.environ:
        yield
        return
    with temporary_settings({PREFECT_SERVER_ANALYTICS_ENABLED: False}):
        yield
