"""Budget of `promotion-gate audit index` on a large store: build time and peak memory, then the
page in headless Chromium: time to open (load event and first rows shown) and to apply a filter.

Writes the store once with the direct writer (bench/store_writer.py): small error decisions, and
every tenth a real promoted, blocked or expired decision with its checklist (so the coverage
matrix and the blocking-items plot have data).

    .venv/bin/python bench/bench_index.py                       # 100,000 decisions, a temporary store
    .venv/bin/python bench/bench_index.py --decisions 10000 --store /dev/shm/pgi --keep
    .venv/bin/python bench/bench_index.py --existing /dev/shm/pgi/store    # measure it again
"""

from __future__ import annotations

import argparse
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
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from promotion_gate.audit_store.signing_keys import SigningKey
    from store_writer import write_store

    from tests.audit_support import decision

    real = [decision(kind, commit=f"{i:040x}") for i, kind in enumerate(("promoted", "blocked", "expired"))]
    t = time.perf_counter()
    write_store(root, n, SigningKey.of(Ed25519PrivateKey.generate(), "bench key"), realistic=real, every=10)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--store", help="where to write the store (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    ap.add_argument("--existing", metavar="STORE", help="measure a store written before (with --keep) instead of writing one")
    args = ap.parse_args()
    if args.existing:
        return measure(Path(args.existing))
    store = Path(args.store or tempfile.mkdtemp(prefix="pg-bench-index-")) / "store"
    if store.exists():
        shutil.rmtree(store)
    try:
        print(f"writing {args.decisions:,} decisions in {store} ...", flush=True)
        print(f"written in {build(store, args.decisions):.1f} s", flush=True)
        return measure(store)
    finally:
        if not args.keep:
            shutil.rmtree(store.parent if not args.store else store, ignore_errors=True)


def measure(store: Path) -> int:
    pinned = [arg for key in sorted((store / "keys").glob("*.pub.pem")) for arg in ("--key", str(key))]
    out = run_measured([sys.executable, "-m", "promotion_gate.cli", "audit", "index", str(store), *pinned], ROOT)
    built, rss = out["seconds"], out["peak_kib"] / 1024  # the command's own peak, not this process's (bench/peak_rss.py)
    tree, pss, cpu = out["tree_kib"] / 1024, out["tree_pss_kib"] / 1024, out["cpu_seconds"]
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(out["stdout"].strip(), out["stderr"].strip()[:300])
    assert out["code"] == 0
    from tests.browser.cdp import Browser, find_chromium

    browser = Browser(find_chromium(), Path(tempfile.mkdtemp(prefix="pg-bench-chromium-")))
    page = browser.page()
    try:
        t = time.perf_counter()
        page.open((store / "index.html").as_uri())
        total = page.evaluate("PG.settled()")
        opened = time.perf_counter() - t
        first = page.evaluate("document.querySelector('#filter-system').options[1].text")
        t = time.perf_counter()
        shown = page.evaluate("""(() => { const el = document.getElementById('filter-system'); el.value = '0';
            el.dispatchEvent(new Event('change')); return PG.settled(); })()""")
        filtered = time.perf_counter() - t
        t = time.perf_counter()
        reset = page.evaluate("(() => { document.getElementById('filter-reset').click(); return PG.settled(); })()")
        resetting = time.perf_counter() - t
    finally:
        page.close()
        browser.close()
    size = (store / "index.html").stat().st_size
    data = sum(f.stat().st_size for f in (store / "data").iterdir())
    print(f"\n| what ({total:,} decisions) | figure |\n|---|---|")
    print(f"| `audit index` (verify + build, command, wall clock) | {built:.1f} s |")
    print(f"| `audit index`: CPU time, user + system, all its processes | {cpu:.1f} s |")
    print(f"| peak RSS of `audit index` (largest process) | {rss:.0f} MiB |")
    print(f"| peak of `audit index` and its workers together, sampled: RSS (shared pages once per process) / PSS | {tree:.0f} / {pss:.0f} MiB |")
    print(f"| index.html / data/ | {size / 1024:.0f} KiB / {data / 2**20:.1f} MiB |")
    print(f"| Chromium: open until the first 100 rows show | {opened * 1000:.0f} ms |")
    print(f"| Chromium: filter system={first} ({shown:,} rows) | {filtered * 1000:.0f} ms |")
    print(f"| Chromium: reset the filters ({reset:,} rows) | {resetting * 1000:.0f} ms |")
    print(f"\nload average after the run (1, 5, 15 min): {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
