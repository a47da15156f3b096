"""The inventory as the audit store knows it, for the auditor's inventory page (pure).

Built one decision at a time, in any order, keeping only compact rows: per system, the latest
promoted decision (its lock, rebuilt exactly as the promotion wrote it, and the manifest it pinned),
and per promoted decision the latest re-certification that judged it. A system's status is that
re-certification's (current, re-certification due, out of policy, with the findings); a promotion
no re-certification has judged yet is shown as current as approved, and says so. A re-certification
of an older promotion says nothing about the newer one. Which promotion PRs were merged is not in
the store: ``promotion-gate inventory`` reads the production branch itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from promotion_gate.checklists.decision import Decision, Verdict, build_lock
from promotion_gate.checklists.findings import Recertification, RecertStatus
from promotion_gate.checklists.inventory import CostTotals, InventoryRow, cost_totals, facts_row
from promotion_gate.checklists.recertify import ProductionSystem


class StoreRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    row: InventoryRow
    recertified_on: date | None = None
    recertification_id: str | None = None
    recertified_under: str | None = None


class StoreInventory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on: date
    rows: list[StoreRow]
    cost: CostTotals

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in RecertStatus}
        for r in self.rows:
            out[r.row.status.value] += 1
        return out


@dataclass
class _Promoted:
    decided_at: datetime
    decision: Decision | bytes  # one per system: the lock is rebuilt once, at build(); bytes: its decision.json, parsed then


@dataclass
class _Recert:
    decided_at: datetime
    decision_id: str
    rc: Recertification


@dataclass
class StoreInventoryData:
    promoted: dict[tuple[str, str], _Promoted] = field(default_factory=dict)
    recerts: dict[str, _Recert] = field(default_factory=dict)  # by the promoted decision they judged

    def add(self, d: Decision, raw: bytes | None = None) -> None:
        """``raw``: the decision.json ``d`` was parsed from; kept instead of ``d`` (a few KiB, not the objects) when given."""
        if d.kind == "recertification" and d.recertification is not None:
            rc, judged = d.recertification, self.recerts.get(d.recertification.approved_decision)
            if judged is None or d.decided_at >= judged.decided_at:
                self.recerts[rc.approved_decision] = _Recert(d.decided_at, d.decision_id, rc)
            return
        cl = d.checklist
        if d.kind != "promotion" or d.verdict != Verdict.promoted or cl is None or cl.manifest is None:
            return
        key = (d.request.repository, d.request.system)
        known = self.promoted.get(key)
        if known is not None and d.decided_at < known.decided_at:
            return
        self.promoted[key] = _Promoted(d.decided_at, d if raw is None else raw)

    def merge(self, later: "StoreInventoryData") -> None:
        """Take in the data of decisions that come after ours in the ledger: the same as adding each of them here."""
        for rc_of, recert in later.recerts.items():
            judged = self.recerts.get(rc_of)
            if judged is None or recert.decided_at >= judged.decided_at:
                self.recerts[rc_of] = recert
        for key, promoted in later.promoted.items():
            known = self.promoted.get(key)
            if known is None or promoted.decided_at >= known.decided_at:
                self.promoted[key] = promoted

    def build(self, today: date) -> StoreInventory:
        rows = [self._row(p, today) for _, p in sorted(self.promoted.items())]
        return StoreInventory(on=today, rows=rows, cost=cost_totals([r.row for r in rows]))

    def _row(self, p: _Promoted, today: date) -> StoreRow:
        d = Decision.model_validate_json(p.decision) if isinstance(p.decision, bytes) else p.decision
        cl = d.checklist
        lock = build_lock(d)
        system = ProductionSystem(repository=d.request.repository, system=d.request.system, lock=lock,
                                  manifest=cl.manifest, approvers=list(lock.approved_by))
        tier, reasons = cl.tier.value, list(cl.tier_reasons)
        recert = self.recerts.get(lock.decision_id)
        if recert is None:
            return StoreRow(row=facts_row(system, tier, reasons, today, RecertStatus.current, []))
        rc = recert.rc
        findings = [f"{f.id}: {f.reason}" + (" (blocks the next promotion)" if f.blocking else "") for f in rc.findings]
        return StoreRow(row=facts_row(system, tier, reasons, today, rc.status, findings),
                        recertified_on=rc.on, recertification_id=recert.decision_id, recertified_under=rc.policy_version)
