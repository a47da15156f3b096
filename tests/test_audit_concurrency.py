"""Several processes recording at once leave one valid chain with nothing lost."""

from __future__ import annotations

import multiprocessing

from promotion_gate.checklists.ledger import LedgerEntry
from promotion_gate.audit_store.store import AuditStore
from tests.audit_support import decision, signing_key, write_key_pem

PROCESSES, EACH = 4, 25


def _writer(root: str, key_path: str, worker: int, start) -> list[str]:
    from promotion_gate.audit_store.signing_keys import load_signing_key

    base = decision("blocked")
    store = AuditStore(root, load_signing_key(root, key_path=key_path))
    start.wait()
    ids = []
    for i in range(EACH):
        d = base.model_copy(update={"decision_id": f"{base.decision_id}-w{worker}-{i:02d}"})
        store.record(d)
        if i % 5 == 0:
            store.record(d)  # a retried task records the same decision again
        ids.append(d.decision_id)
    return ids


def test_concurrent_writers_leave_a_valid_chain_with_nothing_lost(tmp_path) -> None:
    root = tmp_path / "store"
    key_path = write_key_pem(tmp_path / "k.pem", signing_key())
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        start = manager.Barrier(PROCESSES)
        with ctx.Pool(PROCESSES) as pool:
            results = pool.starmap(_writer, [(str(root), str(key_path), w, start) for w in range(PROCESSES)])
    written = {i for ids in results for i in ids}
    assert len(written) == PROCESSES * EACH
    entries = [LedgerEntry.model_validate_json(line) for line in AuditStore(root).lines()]
    assert [e.seq for e in entries] == list(range(1, PROCESSES * EACH + 1))
    assert {e.decision_id for e in entries} == written
    v = AuditStore(root).verify()
    assert v.ok, v.problem
    assert v.entries == PROCESSES * EACH and sum(v.keys.values()) == PROCESSES * EACH
    interleaved = sum(1 for a, b in zip(entries, entries[1:]) if a.decision_id.split("-w")[1][0] != b.decision_id.split("-w")[1][0])
    assert interleaved > 0, "the writers ran one after another: the test did not exercise concurrency"
