"""What ``audit verify`` trusts and what it concludes: pinned keys, anchors, the verdict lines, the exit.

Exit codes (docs/audit.md): 0 everything holds, every signature by a pinned key, no demo key;
1 a finding (the first bad entry, an untrusted key, an anchor that disagrees); 2 unusable input,
and a ledger of 0 entries (nothing to verify: no verdict, as for a folder without a ledger);
3 ``untrusted: no pinned key`` (the chain holds against the keys the store publishes, which
proves nothing about who signed); 4 ``signed with a DEMO key: not evidence``.
"""

from __future__ import annotations

from pathlib import Path

from promotion_gate.checklists.trust import DEMO_WORDS, NO_PINNED_KEY

EXIT_OK, EXIT_BAD, EXIT_UNUSABLE, EXIT_UNTRUSTED, EXIT_DEMO = 0, 1, 2, 3, 4
NOTHING = "0 entries: nothing to verify; without an anchor a cut to nothing cannot be seen"


class InputError(Exception):
    """An unusable --key, --anchor-ref or --anchor-file (exit 2)."""


def pinned(keys: list[str] | None, demo: set | None = None) -> dict | None:
    """Key id -> public key pinned outside the store (``--key``, else the trusted-keys setting), or None.
    ``demo`` receives the pinned keys that say they are the demo key (demo-keys/demo-signing-key.pub.pem)."""
    from promotion_gate.audit_store.signing_keys import SigningKeyError, pinned_keys
    from promotion_gate.config.settings import SettingsError, load_settings

    try:
        found = pinned_keys(keys or [], settings=load_settings(), demo=demo)
    except (SigningKeyError, SettingsError) as exc:
        raise InputError(str(exc)) from None
    return found or None


def anchors(anchor_ref: str | None, anchor_files: list[str] | None) -> tuple[list | None, list]:
    """(the anchor ref's chain, newest first, or None when not asked; the exported checkpoints given)."""
    from promotion_gate.audit_store.anchor import AnchorError, read_chain
    from promotion_gate.checklists.checkpoint import parse_exported

    kept = []
    for name in anchor_files or []:
        try:
            data = Path(name).read_bytes()[: 1024 * 1024]
            kept.append(parse_exported(data))
        except OSError as exc:
            raise InputError(f"--anchor-file {name}: cannot read it ({exc.strerror or type(exc).__name__})") from None
        except ValueError:
            raise InputError(f"--anchor-file {name}: not a ledger checkpoint (audit anchor export writes one)") from None
    chain = None
    if anchor_ref:
        try:
            chain = read_chain(anchor_ref)
        except AnchorError as exc:
            raise InputError(f"--anchor-ref: {exc}") from None
    return chain, kept


def mark_pinned_demo(v, demo_ids: set) -> None:
    """Entries signed by a pinned key that is the demo key count as demo, whatever their statement says."""
    for k in demo_ids & set(v.keys):
        v.demo_signed[k] = max(v.demo_signed.get(k, 0), v.keys[k])


def conclude(v, *, anchor: str | None, anchor_ref: str | None, kept: list) -> tuple[list[str], int]:
    """The lines verify prints after a walk without findings, and its exit code."""
    lines = [f"ledger: {v.entries} entries, head {v.head}" + (f" (entry {v.entries}, decision {v.head_decision})" if v.head_decision else "")]
    for k, n in v.keys.items():
        demo = v.demo_signed.get(k, 0)
        lines.append(f"key {k} signed {n} entries" + (f" ({demo} of them {DEMO_WORDS})" if demo else ""))
    lines += [f"note: {note}" for note in v.notes]
    if v.evidence_checked:
        lines.append(f"evidence: {v.evidence_checked} kept files hash to their names")
    if v.evidence_required or v.evidence_omitted:
        lines.append(f"evidence: every file the signed records say was kept is there ({v.evidence_required})"
                     + (f"; {v.evidence_omitted} omitted, as recorded" if v.evidence_omitted else ""))
    if anchor_ref or kept:
        where = f"{anchor_ref} refs/promotion-gate/ledger" if anchor_ref else "the exported checkpoint"
        lines.append(f"anchor: {where} holds; newest anchored seq {v.anchored}")
    elif anchor:
        lines.append("anchor: " + ("the head" if anchor.strip().lower() == v.head else "an ancestor of the head (--allow-newer)"))
    else:
        lines.append("anchor: none given: truncation cannot be seen from inside the store (pass --anchor-ref REPO)")
    if not v.entries:  # an emptied store holds nothing to vouch for: no OK (exit 0) and no finding either (exit 2)
        lines.append(f"{NOTHING} (pass --anchor-ref REPO: a cut to nothing is then `truncated`)")
        return lines, EXIT_UNUSABLE
    if not v.pinned:
        lines.append(f"{NO_PINNED_KEY}: signatures were checked only against the keys the store itself publishes; "
                     "pass --key PUB.pem (or set PROMOTION_GATE_TRUSTED_KEYS)")
        return lines, EXIT_UNTRUSTED
    if v.demo_signed:
        lines.append(f"DEMO: {sum(v.demo_signed.values())} entries were {DEMO_WORDS}")
        return lines, EXIT_DEMO
    lines.append("OK: the chain, every file digest and every signature hold, signed by pinned keys")
    return lines, EXIT_OK


def index_summary(v) -> dict:
    """What the index says about the ledger: ``ok`` only when verify would exit 0; the words otherwise."""
    if not v.ok:
        return {"ok": False, "summary": f"FAIL {v.problem}", "head": v.head, "entries": v.entries}
    if not v.entries:
        return {"ok": False, "summary": NOTHING, "head": v.head, "entries": 0}
    if not v.pinned:
        return {"ok": False, "summary": f"{NO_PINNED_KEY}: the chain holds against the store's own keys, which proves "
                                        "nothing (audit index --key PUB.pem)", "head": v.head, "entries": v.entries}
    if v.demo_signed:
        return {"ok": False, "summary": f"{sum(v.demo_signed.values())} entries {DEMO_WORDS}", "head": v.head, "entries": v.entries}
    return {"ok": True, "summary": "the chain, every file digest and every signature hold, signed by pinned keys",
            "head": v.head, "entries": v.entries}
