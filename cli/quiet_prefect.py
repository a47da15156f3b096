"""Local runs (`promotion-gate run`, `demo`) start Prefect's embedded server with its analytics off
and a start-up allowance that a busy small machine can meet.

Through Prefect's own settings, for the run only (``temporary_settings``; the embedded server, a
subprocess, is started with the current settings), instead of writing ``os.environ``: the SDK
asks that server whether analytics are on, so nothing is reported. Prefect's default of 20 s for
the embedded server to answer is missed on a 2-core machine under load (the demo then ended in a
traceback); local runs allow ``STARTUP_SECONDS``. An operator's own setting of either is respected.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

STARTUP_SECONDS = 120


@contextlib.contextmanager
def quiet_prefect() -> Iterator[None]:
    from prefect.settings import PREFECT_SERVER_ANALYTICS_ENABLED, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    updates = {}
    if "PREFECT_SERVER_ANALYTICS_ENABLED" not in os.environ:
        updates[PREFECT_SERVER_ANALYTICS_ENABLED] = False
    if "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS" not in os.environ:
        updates[PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS] = STARTUP_SECONDS
    with temporary_settings(updates):
        yield
