"""`promotion-gate audit anchor export STORE [--anchor-ref REPO] [--out checkpoint.json]`.

Writes a checkpoint an auditor keeps outside both the store and the repository: the newest
checkpoint of the anchor ref (with the commit that holds it), or, without ``--anchor-ref``, the
store's current head. ``audit verify --anchor-file`` later checks the ledger against it, and,
with ``--anchor-ref``, that the ref still contains that commit (a rewound ref is a finding).
"""

from __future__ import annotations

import sys
from pathlib import Path

from promotion_gate.audit_store.verify_outcome import EXIT_OK, EXIT_UNUSABLE


def run_anchor_export(store: str, anchor_ref: str | None = None, out: str = "checkpoint.json") -> int:
    from promotion_gate.audit_store.anchor import AnchorError, exported, read_chain
    from promotion_gate.audit_store.store import AuditStore, LedgerError
    from promotion_gate.checklists.checkpoint import ANCHOR_REF, ExportedCheckpoint, build_checkpoint, encode_checkpoint

    try:
        if anchor_ref:
            chain = read_chain(anchor_ref)
            if not chain or chain[0].checkpoint is None:
                print(f"error: {anchor_ref}: {ANCHOR_REF} holds no readable checkpoint", file=sys.stderr)
                return EXIT_UNUSABLE
            data = exported(chain[0], ANCHOR_REF, anchor_ref)
        else:
            tail = AuditStore(store)._tail()
            if tail is None:
                print(f"error: {store}: the ledger is empty or missing", file=sys.stderr)
                return EXIT_UNUSABLE
            data = encode_checkpoint(ExportedCheckpoint(**build_checkpoint(tail).model_dump(by_alias=True)))
    except (AnchorError, LedgerError, OSError, ValueError) as exc:
        print(f"error: audit anchor export: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return EXIT_UNUSABLE
    if out == "-":
        sys.stdout.write(data.decode())
    else:
        Path(out).write_bytes(data)
        print(f"wrote {out}")
    return EXIT_OK
