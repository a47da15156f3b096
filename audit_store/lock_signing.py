"""The lock file the gate writes: the lock, signed with the gate's signing key (the audit store's key).

The lock guard (``checklists/lock_guard.py``, ``flows/lock_guard_flow.py``) trusts only that key's
public half, so a lock written or edited by anyone else cannot pass it.
"""

from __future__ import annotations

from promotion_gate.audit_store.signing_keys import signing_key_from_settings
from promotion_gate.checklists.candidate import ProductionLock
from promotion_gate.checklists.lock_guard import build_signed_lock
from promotion_gate.config.settings import Settings


def build_signed_lock_file(lock: ProductionLock, store: str, settings: Settings | None = None) -> bytes:
    key = signing_key_from_settings(store, settings)
    return build_signed_lock(lock, key.private_key, key.key_id)
