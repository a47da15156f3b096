"""A direct writer of large audit stores for the benches (not the flow, not ``AuditStore.record``).

Recording through the store renders two reports per decision and re-validates models: minutes for
100,000 decisions. This writer records a few template decisions with the store's own code (so the
format is exactly today's), then writes N decisions by substituting the id, system, commit, times
and chain fields into those templates, signing each statement for real (DSSE, Ed25519) and
chaining each ledger line for real. Reports are short placeholders and decision.json is compact
JSON (digests are checked, layout is not: the indented form costs Python's slow encoder). ``audit verify`` must pass on the result: the benches assert it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SYSTEMS = 40


def _zulu(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic(i: int):
    """A small decision (an error before the checklist): four files, under 1 KiB of JSON."""
    from promotion_gate.checklists.decision import PromotionRequest, TimelineEvent, error_decision

    at = T0 + timedelta(minutes=7 * i)
    request = PromotionRequest(repository="acme/ai-systems", system=f"system-{i % SYSTEMS:02d}",
                               commit=hashlib.sha1(str(i).encode()).hexdigest(), requester="dana-dev", requested_at=at)
    return error_decision(request, f"synthetic decision {i}", at + timedelta(minutes=3),
                          timeline=[TimelineEvent(at=at, event="label added")])


def _templates(key, extra: list) -> list[tuple[str, str]]:
    """(decision.json as a dict, signed statement as a dict) of each template, recorded by the store itself."""
    from promotion_gate.audit_store.store import AuditStore

    scratch = Path(tempfile.mkdtemp(prefix="pg-templates-")) / "store"
    recorded = AuditStore(scratch, key, durable=False).record_many([synthetic(0), *extra])
    out = []
    for r in recorded:
        envelope = json.loads((r.folder / "attestation.dsse.json").read_bytes())
        out.append(((r.folder / "decision.json").read_text(), base64.b64decode(envelope["payload"]).decode()))
    return out


def _fill(template: tuple[str, str], i: int, follows: str | None) -> tuple[str, dict, dict]:
    decision, statement = json.loads(template[0]), json.loads(template[1])  # a fresh copy (faster than deepcopy)
    system = f"system-{i % SYSTEMS:02d}"
    commit = hashlib.sha1(str(i).encode()).hexdigest()
    asked = T0 + timedelta(minutes=7 * i)
    decided = asked + timedelta(minutes=3 + i % 600)
    decision_id = f"{system}-{commit[:7]}-{i:010x}"
    decision.update(decision_id=decision_id, decided_at=_zulu(decided), follows=follows)
    decision["request"].update(system=system, commit=commit, requested_at=_zulu(asked))
    if decision.get("checklist"):
        decision["checklist"]["system"] = system
    for event in decision.get("timeline") or []:
        event["at"] = _zulu(asked)
    pred = statement["predicate"]
    pred.update(decisionId=decision_id, system=system, commit=commit, follows=follows,
                decidedAt=decided.isoformat(), requestedAt=asked.isoformat())
    return decision_id, decision, statement


def write_store(root: Path, n: int, key, *, realistic: list | None = None, every: int = 10) -> None:
    """N decisions: the small synthetic one, and each of ``realistic`` every ``every``-th decision."""
    from promotion_gate.checklists.attestation import encode_envelope, encode_statement, sign_envelope, subject_name
    from promotion_gate.checklists.ledger import ENVELOPE_FILE, GENESIS, LedgerEntry, encode_entry
    from promotion_gate.audit_store.signing_keys import publish_public_key

    templates = _templates(key, realistic or [])
    root.mkdir(parents=True)
    publish_public_key(root, key)
    decisions_dir = root / "decisions"
    decisions_dir.mkdir()
    prev, last_of = GENESIS, {}
    with open(root / "ledger.jsonl", "wb", buffering=1 << 20) as ledger:
        for i in range(n):
            template = templates[1 + (i // every) % (len(templates) - 1)] if len(templates) > 1 and i % every == every - 1 else templates[0]
            system = f"system-{i % SYSTEMS:02d}"
            decision_id, decision, statement = _fill(template, i, last_of.get(system))
            files = {"decision.json": (json.dumps(decision, sort_keys=True, separators=(",", ":")) + "\n").encode(),
                     "report.md": f"# Decision {decision_id}\n".encode(),
                     "report.html": f"<!doctype html><title>{decision_id}</title>\n".encode()}
            digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
            for subject in statement["subject"]:
                for name in files:
                    if subject["name"].endswith("/" + name):
                        subject["name"], subject["digest"] = subject_name(decision_id, name), {"sha256": digests[name]}
                if "gitCommit" in subject["digest"]:
                    subject["digest"] = {"gitCommit": decision["request"]["commit"]}
            statement["predicate"]["ledger"] = {"prev": prev, "seq": i + 1}
            envelope = sign_envelope(encode_statement(statement), key.private_key, key.key_id)
            files[ENVELOPE_FILE] = encode_envelope(envelope)
            digests[ENVELOPE_FILE] = hashlib.sha256(files[ENVELOPE_FILE]).hexdigest()
            folder = decisions_dir / decision_id
            os.mkdir(folder)
            for name, data in files.items():
                fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.write(fd, data)
                os.close(fd)
            entry = LedgerEntry(seq=i + 1, prev=prev, decision_id=decision_id, system=system, verdict=decision["verdict"],
                                decided_at=decision["decided_at"], decision_sha256=digests["decision.json"], files=digests,
                                signature=envelope["signatures"][0]["sig"], key_id=key.key_id, follows=last_of.get(system))
            line = encode_entry(entry)
            ledger.write(line)
            prev = hashlib.sha256(line[:-1]).hexdigest()
            last_of[system] = decision_id
