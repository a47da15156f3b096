"""What changed against production: computed once here, rendered by the reports and the Slack request.

The baseline is production's lock (``production.lock.json`` on the production branch); the
candidate is the checklist's manifest and evidence. Nothing here formats text: the report tables
and the Slack lines are two views of the same :class:`ProductionChange`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from promotion_gate.checklists.candidate import ProductionLock
from promotion_gate.checklists.checklist import Checklist

FileChangeKind = Literal["new", "unchanged", "changed", "dropped"]


@dataclass(frozen=True)
class MetricDelta:
    name: str
    before: float
    after: float | None  # None: production reported it, the candidate does not

    @property
    def moved(self) -> bool:
        return self.after is None or self.after != self.before


@dataclass(frozen=True)
class FileChange:
    path: str
    kind: FileChangeKind
    deltas: tuple[MetricDelta, ...] = ()  # every metric production's lock holds for this file, by name


@dataclass(frozen=True)
class ProductionChange:
    commit: str
    decision_id: str
    promoted_at: datetime
    policy: str
    model_before: str  # provider/name@version, as the lock holds it
    model_after: str | None  # None: the candidate's manifest did not parse
    manifest_changed: bool
    data_classes: tuple[str, ...]
    files: tuple[FileChange, ...]

    @property
    def vendor_before(self) -> str:
        return self.model_before.split("/", 1)[0]

    @property
    def vendor_after(self) -> str | None:
        return None if self.model_after is None else self.model_after.split("/", 1)[0]


def production_change(checklist: Checklist, baseline: ProductionLock | None) -> ProductionChange | None:
    """The change of `checklist`'s candidate against `baseline`; None on a first promotion."""
    if baseline is None:
        return None
    locked = {e.path: e for e in baseline.evidence}
    files = []
    for record in checklist.evidence:
        old = locked.pop(record.path, None)
        if old is None:
            files.append(FileChange(record.path, "new"))
            continue
        deltas = []
        for name, before in sorted(old.metrics.items()):
            metric = record.metric(name)
            deltas.append(MetricDelta(name, before, None if metric is None else metric.value))
        files.append(FileChange(record.path, "unchanged" if old.sha256 == record.sha256 else "changed", tuple(deltas)))
    files += [FileChange(path, "dropped") for path in sorted(locked)]
    manifest = checklist.manifest
    return ProductionChange(
        commit=baseline.source_commit, decision_id=baseline.decision_id, promoted_at=baseline.promoted_at,
        policy=baseline.policy_version, model_before=baseline.model,
        model_after=manifest.model.id if manifest else None,
        manifest_changed=baseline.manifest_sha256 != checklist.manifest_sha256,
        data_classes=tuple(manifest.touched_data_classes()) if manifest else (),
        files=tuple(files),
    )
