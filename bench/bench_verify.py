"""Budget of `promotion-gate audit verify` on a large store, against the raw cost of its crypto.

Builds a store of N small synthetic decisions (error decisions without a checklist: four files
each) with the store's own code (``AuditStore.record_many``, not fsynced, several processes),
then times:

- ``promotion-gate audit verify STORE`` as a command (wall clock, interpreter included), and
  ``AuditStore.verify()`` in process;
- the raw cost: reading and SHA-256 hashing every file, and verifying every Ed25519 signature
  over its DSSE PAE (payloads and signatures loaded beforehand), each alone.

    .venv/bin/python bench/bench_verify.py                 # 100,000 decisions
    .venv/bin/python bench/bench_verify.py --decisions 10000 --store /tmp/pg-bench --keep
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def synthetic(i: int):
    from promotion_gate.checklists.decision import PromotionRequest, TimelineEvent, error_decision

    at = T0 + timedelta(minutes=7 * i)
    request = PromotionRequest(repository="acme/ai-systems", system=f"system-{i % 40:02d}",
                               commit=hashlib.sha1(str(i).encode()).hexdigest(), requester="dana-dev", requested_at=at)
    return error_decision(request, f"synthetic decision {i}", at + timedelta(minutes=3),
                          timeline=[TimelineEvent(at=at, event="label added")])


def _build(root: str, key_pem: str, start: int, stop: int, chunk: int) -> int:
    from promotion_gate.flows.audit_store import AuditStore
    from promotion_gate.flows.signing_keys import load_signing_key

    store = AuditStore(root, load_signing_key(root, key_pem=key_pem), durable=False)
    for lo in range(start, stop, chunk):
        store.record_many([synthetic(i) for i in range(lo, min(lo + chunk, stop))])
    return stop - start


def build(root: Path, n: int, workers: int) -> float:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from promotion_gate.flows.signing_keys import private_pem

    key_pem = private_pem(Ed25519PrivateKey.generate()).decode()
    step = -(-n // workers)
    t = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        done = pool.starmap(_build, [(str(root), key_pem, lo, min(lo + step, n), 500) for lo in range(0, n, step)])
    assert sum(done) == n
    return time.perf_counter() - t


def raw_costs(root: Path) -> tuple[float, float, int, int]:
    """(seconds to read + hash every file, seconds to verify every signature, files, signatures)."""
    from promotion_gate.checklists.attestation import pae, parse_public_pem
    from promotion_gate.checklists.ledger import FILES, parse_entry

    entries = [parse_entry(line) for line in (root / "ledger.jsonl").read_bytes().splitlines()]
    folders = [f"{root}/decisions/{e.decision_id}" for e in entries]
    t = time.perf_counter()
    files = 0
    for folder in folders:
        for name in FILES:
            with open(f"{folder}/{name}", "rb", buffering=0) as fh:
                hashlib.sha256(fh.readall()).hexdigest()
            files += 1
    hashing = time.perf_counter() - t
    keys = {p.name.split(".")[0]: parse_public_pem(p.read_bytes()) for p in (root / "keys").glob("*.pub.pem")}
    work = []
    for e, folder in zip(entries, folders):
        env = json.loads(Path(folder, "attestation.dsse.json").read_bytes())
        work.append((keys[e.key_id], base64.b64decode(env["signatures"][0]["sig"]), pae(env["payloadType"], base64.b64decode(env["payload"]))))
    t = time.perf_counter()
    for public, sig, message in work:
        public.verify(sig, message)
    return hashing, time.perf_counter() - t, files, len(work)


def main() -> int:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--store", help="where to build the store (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    args = ap.parse_args()
    root = Path(args.store or tempfile.mkdtemp(prefix="pg-bench-verify-")) / "store"
    if root.exists():
        shutil.rmtree(root)
    try:
        print(f"building {args.decisions:,} decisions in {root} with {args.workers} processes ...", flush=True)
        built = build(root, args.decisions, args.workers)
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        print(f"built in {built:.1f} s ({size / 2**20:.0f} MiB)", flush=True)
        hashing, signing, files, sigs = raw_costs(root)  # also warms the page cache for what follows
        t = time.perf_counter()
        cmd = subprocess.run([sys.executable, "-m", "promotion_gate.flows.cli", "audit", "verify", str(root)], cwd=ROOT, capture_output=True, text=True)
        command = time.perf_counter() - t
        assert cmd.returncode == 0, cmd.stdout + cmd.stderr
        from promotion_gate.flows.audit_store import AuditStore

        t = time.perf_counter()
        v = AuditStore(root).verify()
        in_process = time.perf_counter() - t
        assert v.ok and v.entries == args.decisions
        hashing2, signing2, _, _ = raw_costs(root)
        hashing, signing = min(hashing, hashing2), min(signing, signing2)
        raw = hashing + signing
        print()
        print(f"| what ({args.decisions:,} decisions, {files:,} files) | seconds | per decision |")
        print("|---|---|---|")
        for label, secs in ((f"`promotion-gate audit verify` (command, wall clock)", command),
                            ("`AuditStore.verify()` in process", in_process),
                            ("raw: read + SHA-256 of every file", hashing),
                            (f"raw: Ed25519 verify of {sigs:,} DSSE signatures", signing),
                            ("raw: both together", raw)):
            print(f"| {label} | {secs:.2f} | {secs / args.decisions * 1e6:.0f} us |")
        print(f"\nverify / raw = {in_process / raw:.2f}x (in process), {command / raw:.2f}x (command)")
    finally:
        if not args.keep:
            shutil.rmtree(root.parent if not args.store else root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
