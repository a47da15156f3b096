"""What is being judged: one system's manifest and evidence at one commit, and its baseline."""

import hashlib
import json
from datetime import datetime
from pathlib import PurePosixPath
from typing import BinaryIO, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promotion_gate.checklists.defaults import empty_list
from promotion_gate.checklists.evidence import read_evidence
from promotion_gate.checklists.evidence.base import EvidenceError, ParsedEvidence
from promotion_gate.checklists.evidence.usage import Usage
from promotion_gate.checklists.manifest import EvidenceRef, Manifest, ManifestError, parse_manifest

MAX_EVIDENCE_BYTES = 2 << 30
LOCK_FILE = "production.lock.json"


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvidenceRecord(Frozen):
    path: str = Field(description="path relative to the system's folder")
    format: str
    sha256: str | None = None
    size: int | None = None
    parsed: ParsedEvidence | None = None
    error: str | None = None
    usage: Usage | None = Field(default=None, description="requests, tokens and cost the file carries (evidence/usage.py)")
    usage_error: str | None = None

    def metric(self, name: str):
        return None if self.parsed is None else self.parsed.metrics.get(name)


class LockedEvidence(Frozen):
    path: str
    format: str
    sha256: str
    metrics: dict[str, float]
    samples: dict[str, int] = Field(default_factory=dict)
    produced_at: datetime | None = Field(default=None, description="when the evidence says it was produced")
    max_regression: dict[str, float] = Field(
        default_factory=dict, description="the evaluation's own tolerances at promotion: they bind the next "
        "promotion too, whatever its manifest says (left out of the signed payload when empty, as in a lock before 0.3.0)")
    role: Literal["evaluation", "drill"] | None = Field(
        default=None, description="what the file was at promotion: one of the evaluations, or the fallback drill "
        "(None in a lock written before 0.3.0; left out of the signed payload when None, so those locks still verify)")


class LockedCost(Frozen):
    """What production costs, as judged at promotion (PG-COST-001): the baseline of PG-COST-002."""

    cost_per_request_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    method: str = "unknown"
    price_key: str | None = None
    expected_monthly_requests: int | None = Field(default=None, ge=0, le=10**12, description="as the manifest caps it: "
                                                  "a lock is no way round the cap (10**400 requests overflowed the inventory)")
    projected_monthly_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class ProductionLock(Frozen):
    """``production.lock.json``: what production runs, and the baseline of the next promotion."""

    schema_version: int = 1
    system: str
    source_commit: str
    manifest_sha256: str
    model: str
    evidence: list[LockedEvidence]
    decision_id: str
    policy_version: str
    policy_digest: str
    promoted_at: datetime
    envelope: dict | None = Field(default=None, description="the gate's DSSE signature over the rest of the lock "
                                  "(checklists/lock_guard.py); a lock without it was not written by the gate")
    tier: str | None = None
    approved_by: list[str] = Field(default_factory=empty_list, description="policy identities whose sign-off counted")
    cost: LockedCost | None = None


class Candidate(Frozen):
    system: str
    commit: str
    manifest_path: str
    manifest_sha256: str
    manifest: Manifest | None = None
    manifest_problems: list[str] = Field(default_factory=empty_list)
    evidence: list[EvidenceRecord] = Field(default_factory=empty_list)
    baseline: ProductionLock | None = None
    baseline_problem: str | None = None

    def evidence_for(self, ref: EvidenceRef) -> EvidenceRecord | None:
        for rec in self.evidence:
            if rec.path == ref.path and rec.format == ref.format:
                return rec
        return None

    def digest(self, policy_digest: str) -> str:
        """The digest a reviewer signs: commit, manifest, every evidence file, policy."""
        body = {
            "commit": self.commit,
            "manifest": self.manifest_sha256,
            "evidence": sorted(f"{r.path}:{r.sha256}" for r in self.evidence),
            "policy": policy_digest,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def system_path(system: str, relative: str) -> str:
    """The repository path of a file the manifest names; refuses paths that leave the folder."""
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or "\\" in relative:
        raise ValueError(f"{relative!r} leaves the folder of ai-systems/{system}")
    return str(PurePosixPath("ai-systems", system, rel))


def read_manifest(system: str, text: bytes) -> tuple[Manifest | None, list[str]]:
    source = system_path(system, "promotion.yaml")
    try:
        manifest = parse_manifest(text, source)
    except ManifestError as exc:
        return None, exc.problems
    if manifest.name != system:
        return None, [f"{source}: name: {manifest.name!r} does not match its folder {system!r}"]
    return manifest, []


def read_evidence_record(ref: EvidenceRef, stream: BinaryIO | None, missing_reason: str | None = None) -> EvidenceRecord:
    """Parse one evidence stream; an unusable file becomes a record with ``error`` set."""
    if stream is None:
        return EvidenceRecord(path=ref.path, format=ref.format, error=missing_reason or "file not found")
    try:
        parsed, sha256, size = read_evidence(ref.format, stream, max_bytes=MAX_EVIDENCE_BYTES)
    except EvidenceError as exc:
        return EvidenceRecord(path=ref.path, format=ref.format, error=exc.reason)
    if size == 0:
        return EvidenceRecord(path=ref.path, format=ref.format, sha256=sha256, size=0, error="file is empty")
    return EvidenceRecord(path=ref.path, format=ref.format, sha256=sha256, size=size, parsed=parsed)


def parse_lock(text: bytes, source: str) -> ProductionLock:
    """A lock file, refused (ValueError) when a key appears twice in one object or a number is not finite.

    A repeated key is read differently by different parsers (pydantic keeps the last value, others the
    first): the guard would verify one lock and a consumer deploy another. NaN and Infinity are not JSON.
    """

    def pairs(items: list) -> dict:
        seen = set()
        for key, _ in items:
            if key in seen:
                raise ValueError(f"a key appears twice in one object: {json.dumps(key)}")
            seen.add(key)
        return dict(items)

    def constant(name: str):
        raise ValueError(f"{name} is not a JSON number")

    def finite(number: str) -> float:
        value = float(number)
        if value in (float("inf"), float("-inf")):
            raise ValueError(f"{number[:40]} is not a finite number")
        return value

    try:
        json.loads(text.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant, parse_float=finite)
    except UnicodeDecodeError:
        raise ValueError(f"{source}: not UTF-8") from None
    except RecursionError:
        raise ValueError(f"{source}: nested too deeply") from None
    except ValueError as exc:  # json.JSONDecodeError included
        raise ValueError(f"{source}: {exc}") from None
    try:
        return ProductionLock.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{source}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
