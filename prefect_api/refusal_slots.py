"""Refused clicks kept on their run, at most MAX_REFUSED of them, whoever writes at the same time.

Each refusal takes a numbered slot: the flow-run input ``promotion-gate-refused-000`` to
``...-199`` (the prefix ``prefect_api.waiting`` reads them by). The Prefect server keeps one input
per (run, key) and answers 409 to a second writer of the same key, so two gateway processes can
never both take slot 17, and there is no slot 200: the cap holds without a read-then-write race.
Within one process a per-run lock keeps writers from colliding at all; across processes a
collision is a 409 and the next free slot is tried.

Only the gateway's authenticated path calls this (gateway.slack_routes): a request whose Slack
signature fails never reaches it.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectHTTPStatusError
from promotion_gate.checklists.signoff import RefusedClick
from promotion_gate.prefect_api.waiting import MAX_REFUSED, REFUSED_PREFIX

log = logging.getLogger("promotion_gate.gateway.slack")
_LOCKS: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_LOCKS_LOCK = threading.Lock()


def slot_key(slot: int) -> str:
    return f"{REFUSED_PREFIX}{slot:03d}"


def record_refusal(run_id: str | UUID, refused: RefusedClick) -> bool:
    """Keep `refused` on the run in the lowest free slot; False (and logged) once all are taken."""
    run = UUID(str(run_id))
    with _LOCKS_LOCK:
        lock = _LOCKS[str(run)]
    with lock, get_client(sync_client=True) as client:
        taken = {i.key for i in client.filter_flow_run_input(run, REFUSED_PREFIX, MAX_REFUSED + 1, set())}
        for slot in range(MAX_REFUSED):
            if len(taken) >= MAX_REFUSED:
                break
            if slot_key(slot) in taken:
                continue
            try:
                client.create_flow_run_input(run, slot_key(slot), refused.model_dump_json(), sender="gateway")
                return True
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 409:  # 409: another process took this slot first
                    raise
                taken.add(slot_key(slot))
    log.warning("run %s holds %d refused clicks; %s's is not kept", run, MAX_REFUSED, refused.reviewer)
    return False
