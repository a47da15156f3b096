"""Budget of `promotion-gate audit verify` on a large store, against the raw cost of its crypto.

Writes a store of N small synthetic decisions (error decisions without a checklist: four files
each) once, with the direct writer of ``bench/store_writer.py`` (real signatures, real chain), then
times, in the same run:

- ``promotion-gate audit verify STORE`` as a command (wall clock, interpreter included), and
  ``AuditStore.verify()`` in process;
- the raw cost: reading and SHA-256 hashing every file, and verifying every Ed25519 signature
  over its DSSE PAE (payloads and signatures loaded beforehand), each alone.

    .venv/bin/python bench/bench_verify.py                 # 100,000 decisions
    .venv/bin/python bench/bench_verify.py --decisions 10000 --store /tmp/pg-bench --keep
    .venv/bin/python bench/bench_verify.py --store /tmp/pg-bench --existing      # measure it again

The verdict: ``audit verify`` / (hashing + signatures) must stay within 1.2x (both cores used).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from peak_rss import run_measured  # noqa: E402


def build(root: Path, n: int) -> float:
    """The store, written once by the direct writer (bench/store_writer.py): real signatures, real chain."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from promotion_gate.audit_store.signing_keys import SigningKey
    from store_writer import write_store

    t = time.perf_counter()
    write_store(root, n, SigningKey.of(Ed25519PrivateKey.generate(), "bench key"))
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
    ap.add_argument("--store", help="where to build the store (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    ap.add_argument("--existing", action="store_true", help="measure the store kept in --store by an earlier run")
    args = ap.parse_args()
    root = Path(args.store or tempfile.mkdtemp(prefix="pg-bench-verify-")) / "store"
    if args.existing:
        args.keep = True
        args.decisions = sum(1 for _ in open(root / "ledger.jsonl", "rb"))
    elif root.exists():
        shutil.rmtree(root)
    try:
        if not args.existing:
            print(f"writing {args.decisions:,} decisions in {root} ...", flush=True)
            built = build(root, args.decisions)
            print(f"built in {built:.1f} s", flush=True)
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        print(f"{args.decisions:,} decisions, {size / 2**20:.0f} MiB", flush=True)
        hashing, signing, files, sigs = raw_costs(root)  # also warms the page cache for what follows
        pinned = [arg for key in sorted((root / "keys").glob("*.pub.pem")) for arg in ("--key", str(key))]  # the auditor's copy
        cmd = run_measured([sys.executable, "-m", "promotion_gate.cli", "audit", "verify", str(root), *pinned], ROOT)
        command, peak = cmd["seconds"], cmd["peak_kib"] / 1024  # the command's own peak, not this process's (bench/peak_rss.py)
        assert cmd["code"] == 0, cmd["stdout"] + cmd["stderr"]
        from promotion_gate.audit_store.store import AuditStore
        from promotion_gate.audit_store.walk import workers_available

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
        for label, secs in (("`promotion-gate audit verify` (command, wall clock)", command),
                            ("`AuditStore.verify()` in process", in_process),
                            ("raw: read + SHA-256 of every file", hashing),
                            (f"raw: Ed25519 verify of {sigs:,} DSSE signatures", signing),
                            ("raw: both together", raw)):
            print(f"| {label} | {secs:.2f} | {secs / args.decisions * 1e6:.0f} us |")
        print(f"\nverify / raw = {in_process / raw:.2f}x (in process), {command / raw:.2f}x (command); "
              f"peak RSS of the command (largest process) {peak:.0f} MiB; {workers_available()} cores")
    finally:
        if not args.keep:
            shutil.rmtree(root.parent if not args.store else root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
