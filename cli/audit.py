"""`promotion-gate audit verify | index | schema`: the auditor's commands.

verify: exit 0 when the chain, every file digest, every signature and the anchor hold with pinned
keys; 1 with the first bad entry named (seq, decision, what is wrong); 2 when the store path is
unusable or the ledger has 0 entries (nothing to verify); 3 untrusted: no pinned key; 4 signed with a DEMO key (audit_store/verify_outcome.py).
index:  writes STORE/index.html (self-contained) and STORE/decision.schema.json.
schema: prints the JSON Schema of decision.json.
"""

from __future__ import annotations

import functools
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

EXIT_OK, EXIT_BAD, EXIT_UNUSABLE = 0, 1, 2
HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def guarded(command):
    """The top-level handler of an audit command: an unexpected error is one line and exit 2, never a traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs) -> int:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            print(f"error: audit {command.__name__[4:]}: interrupted", file=sys.stderr)
            return EXIT_UNUSABLE
        except Exception as exc:  # noqa: BLE001 - the one place that turns any error into a line
            text = " ".join(str(exc).split())[:300]
            print(f"error: audit {command.__name__[4:]}: unexpected {type(exc).__name__}: {text} (no verdict was reached)", file=sys.stderr)
            return EXIT_UNUSABLE

    return run


def limits_of(args) -> dict:
    """The reader's caps given as ``--max-line-bytes`` / ``--max-file-bytes`` (checked by run_verify)."""
    given = {name: getattr(args, name, None) for name in ("max_line_bytes", "max_file_bytes")}
    return {k: v for k, v in given.items() if v is not None}


def _store_problem(root: Path) -> str | None:
    if not root.exists():
        return f"{root}: no such directory"
    if not root.is_dir():
        return f"{root}: not a directory"
    if not (root / "ledger.jsonl").exists() and not (root / "decisions").is_dir():
        return f"{root}: not an audit store (no ledger.jsonl, no decisions/)"
    return None


def _summary(v, keys_line: str) -> list[str]:
    head = f"ledger: {v.entries} entries, head {v.head}"
    if v.head_decision and v.ok:
        head += f" (entry {v.entries}, decision {v.head_decision})"
    return [head, keys_line] if keys_line else [head]


@guarded
def run_verify(store: str, anchor: str | None = None, allow_newer: bool = False, keys: list[str] | None = None,
               limits: dict | None = None, anchor_ref: str | None = None, anchor_files: list[str] | None = None) -> int:
    from promotion_gate.audit_store.safe_read import Limits
    from promotion_gate.audit_store.store import AuditStore, LedgerError
    from promotion_gate.audit_store.verify_outcome import InputError, anchors, conclude, mark_pinned_demo, pinned

    try:
        caps = Limits(**(limits or {}))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE

    root = Path(store)
    problem = _store_problem(root)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_UNUSABLE
    if anchor is not None and not HEX64.match(anchor.strip()):
        print("error: --anchor: expected the SHA-256 (64 hex digits) of a ledger line", file=sys.stderr)
        return EXIT_UNUSABLE
    try:  # audit_store/verify_outcome.py: trust only keys pinned outside the store; the anchor from the repository
        demo_ids: set[str] = set()
        trusted = pinned(keys, demo_ids)
        chain, kept = anchors(anchor_ref, anchor_files)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        v = AuditStore(root).verify(anchor=anchor, allow_newer=allow_newer, trusted=trusted, limits=caps,
                                    checkpoints=chain, kept=kept)
    except (OSError, LedgerError) as exc:
        print(f"error: {root}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    if not v.ok:
        print(f"FAIL {v.problem}")
        print(f"checked before it: {sum(v.keys.values())} entries hold; " + _summary(v, "")[0])
        return EXIT_BAD
    mark_pinned_demo(v, demo_ids)
    out, code = conclude(v, anchor=anchor, anchor_ref=anchor_ref, kept=kept)
    print("\n".join(out))
    return code


@guarded
def run_index(store: str, keys: list[str] | None = None) -> int:
    from promotion_gate.audit_store.index_build import gather, read_index_data, write_index
    from promotion_gate.audit_store.store import AuditStore, LedgerError
    from promotion_gate.audit_store.verify_outcome import InputError, index_summary, mark_pinned_demo, pinned
    from promotion_gate.notifications.report import render_json_schema

    root = Path(store)
    problem = _store_problem(root)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        demo_ids: set[str] = set()
        # only pinned keys make the index green; the walk also parses each decision.json it verified (read once)
        v = AuditStore(root).verify(trusted=pinned(keys, demo_ids), collect_index=True)
        mark_pinned_demo(v, demo_ids)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except (OSError, LedgerError) as exc:
        print(f"error: {root}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    v.facts.clear()  # the walk's per-entry facts are not needed to build the page: free them first (100,000 decisions)
    v.seen.clear()
    # the walk's own parse of the bytes it verified; when it stopped at a bad entry, every decision is read again
    # (audit_store/index_build.py: streaming, through the safe reader), so the index still lists them all
    data, problems = (gather(v.index[0]), v.index[1]) if v.index is not None else read_index_data(root)
    v.index = None
    from promotion_gate.audit_store.findings import ledger_states

    summary = index_summary(v) | {"states": ledger_states(root),  # each system's state, derived from the ledger
                                  "signoffs": sorted(data.signoffs.items()),  # how the sign-offs were authenticated
                                  "asserted": any(auth == "asserted" for (_, auth) in data.signoffs)}
    written = write_index(root, data, generated_at=datetime.now(timezone.utc), verification=summary)
    (root / "decision.schema.json").write_text(render_json_schema(), encoding="utf-8")
    print(f"wrote {root / 'index.html'} ({written} decisions; data/, index.csv, index.json)")
    for p in problems[:10]:
        print(f"note: could not read a decision: {p}", file=sys.stderr)
    if not v.ok:
        print(f"warning: the ledger does not verify: {v.problem}", file=sys.stderr)
    elif not summary["ok"]:
        print(f"warning: {summary['summary']}", file=sys.stderr)
    return EXIT_OK


def run_schema() -> int:
    from promotion_gate.notifications.report import render_json_schema

    sys.stdout.write(render_json_schema())
    return EXIT_OK
