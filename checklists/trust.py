"""Whose signatures count: pinned keys, the demo mark, key rotations. Pure.

Trust is never found in the store: the keys an auditor pins (``--key``, or the trusted-keys
setting) are the only ones whose signatures count. A key the store publishes but nobody pinned
is *untrusted*; a key that a pinned key hands over to in a signed ``key-rotation`` entry becomes
trusted from that entry on.

A decision signed with the generated demo key carries the mark inside its signed statement
(``predicate.signingKey.kind == "demo"``), so deleting a side file cannot remove it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEMO_WORDS = "signed with a DEMO key: not evidence"
NO_PINNED_KEY = "untrusted: no pinned key"
KeyKind = Literal["demo", "configured"]


class SigningKeyMark(BaseModel):
    """What signed a record: the key id, and whether it is the generated demo key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: KeyKind
    key_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    says: str | None = Field(default=None, description='for a demo key: "signed with a DEMO key: not evidence"')

    @property
    def demo(self) -> bool:
        return self.kind == "demo"


def mark_of(demo: bool, key_id: str) -> SigningKeyMark:
    return SigningKeyMark(kind="demo", key_id=key_id, says=DEMO_WORDS) if demo else SigningKeyMark(kind="configured", key_id=key_id)


def signed_key_kind(statement: dict) -> str | None:
    """The key kind a signed statement declares (``predicate.signingKey.kind``), or None (an older record)."""
    mark = (statement.get("predicate") or {}).get("signingKey")
    return mark.get("kind") if isinstance(mark, dict) and isinstance(mark.get("kind"), str) else None


def untrusted_detail(key_id: str, published: bool) -> str:
    where = "published in the store but not pinned" if published else "which is not pinned"
    return f"signed with key {key_id[:16]}..., {where} (pass --key, or set PROMOTION_GATE_TRUSTED_KEYS)"
