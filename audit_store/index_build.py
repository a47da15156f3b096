"""`audit index`, streaming: read the ledger and each decision once, write the page and its data.

Every read goes through :class:`audit_store.safe_read.StoreReader` (no symlink, no special file,
bounded sizes); a decision that cannot be read is reported and left out, never a crash. Only the
compact rows of :class:`notifications.index_data.IndexData` stay in memory, never the decisions.
Writes replace files atomically and never through a link planted in the store.
"""

from __future__ import annotations

import os
import pickle
import uuid
import zlib
from datetime import datetime
from pathlib import Path

from promotion_gate.audit_store.safe_read import Refused, StoreReader
from promotion_gate.checklists.decision import Decision
from promotion_gate.checklists.ledger import parse_entry
from promotion_gate.notifications.index import render_index
from promotion_gate.notifications.index_data import (
    PAGE_ROWS,
    DecisionView,
    IndexData,
    page_count,
    render_columns,
    render_csv,
    render_json_rows,
    render_page,
)
from promotion_gate.notifications.inventory_page import render_inventory_page

DATA_DIR = "data"


def build_validators() -> None:
    """Build the parsers of decision.json now (the models defer it to first use): called before the walk's
    pool forks, so its workers share one copy instead of each building its own (CPU, and tens of MiB each)."""
    for model in (Decision, DecisionView):
        model.model_rebuild(force=True)


def gather(parts: list) -> IndexData:
    """One IndexData from the walk's parts, in ledger order (each an IndexData, or one pickled and compressed
    by a worker of the walk's pool, audit_store/walk.py); each part is freed once merged. The same data as adding every decision in order."""
    data = IndexData()
    while parts:
        part = parts.pop(0)
        data.merge(pickle.loads(zlib.decompress(part)) if isinstance(part, bytes) else part)
    return data


def add_decision(data: IndexData, problems: list[str], number: int, raw: bytes, verified: bool = False) -> None:
    """Parse the bytes of one decision.json (ledger line ``number``) into ``data``; one that is not a Decision, into ``problems``.

    ``verified``: the walk of ``audit verify`` just checked these very bytes against the digest in the
    signed ledger: only the fields the index shows are read (:class:`DecisionView`), except for the
    decisions the inventory keeps whole. Otherwise the whole file is validated as a Decision.
    """
    try:
        if verified:
            view = DecisionView.model_validate_json(raw)
            if view.kept_whole:
                data.add(Decision.model_validate_json(raw), raw)  # the inventory keeps the bytes, parsed again at build
            else:
                data.add(view)
            return
        data.add(Decision.model_validate_json(raw))
    except ValueError as exc:
        problems.append(f"line {number}: {type(exc).__name__}")


def read_index_data(root: Path) -> tuple[IndexData, list[str]]:
    """The index's data from the decisions the ledger names, in ledger order; what could not be read."""
    data, problems = IndexData(), []
    with StoreReader(root) as reader:
        try:
            lines = reader.lines("ledger.jsonl")
            for number, line in enumerate(lines, start=1):
                try:
                    entry = parse_entry(line.rstrip(b"\n"))
                    if entry.verdict == "key-rotation":  # a signed hand-over of keys (audit_store/key_rotation.py), not a decision
                        continue
                    add_decision(data, problems, number, reader.read(f"decisions/{entry.decision_id}/decision.json"))
                except Refused as exc:
                    problems.append(f"line {number}: {exc}")
                except (OSError, ValueError) as exc:
                    problems.append(f"line {number}: {type(exc).__name__}")
        except FileNotFoundError:
            pass
        except Refused as exc:
            problems.append(str(exc))
    return data, problems


def _write(folder: Path, name: str, pieces) -> None:
    """Write ``folder/name`` atomically: a fresh temporary file (O_EXCL, no link followed), then rename."""
    tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        for piece in ([pieces] if isinstance(pieces, str) else pieces):
            fh.write(piece)
    os.replace(tmp, folder / name)


def _data_folder(root: Path) -> Path:
    folder = root / DATA_DIR
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        folder.unlink()  # a link or file planted where the index writes: replaced, never followed
    folder.mkdir(exist_ok=True)
    return folder


def write_index(root: Path, data: IndexData, *, generated_at: datetime, verification: dict) -> int:
    """Write index.html, inventory.html, data/columns.js, data/page-NNNN.js, index.csv and index.json; the number of rows."""
    rows = data.ordered()
    folder = _data_folder(root)
    columns, options = render_columns(rows)
    _write(folder, "columns.js", columns)
    pages = page_count(len(rows))
    for n in range(pages):
        _write(folder, f"page-{n + 1:04d}.js", render_page(n + 1, rows[n * PAGE_ROWS:(n + 1) * PAGE_ROWS]))
    for stale in os.listdir(folder):
        if stale.startswith("page-") and stale.endswith(".js") and stale[5:9].isdigit() and int(stale[5:9]) > pages:
            os.unlink(folder / stale)
    _write(root, "index.csv", render_csv(rows))
    _write(root, "index.json", render_json_rows(rows))
    _write(root, "index.html", render_index(data, options=options, generated_at=generated_at, store=str(root.resolve()),
                                            verification=verification))
    _write(root, "inventory.html", render_inventory_page(data.inventory.build(generated_at.date()), generated_at=generated_at,
                                                         store=str(root.resolve())))
    return len(rows)
