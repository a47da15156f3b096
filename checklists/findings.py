"""Re-certification findings: plain data, as check results are; the status is derived.

Kept in their own module so that both the decision (which records them) and the re-certification
rules (``recertify.py``, which derive them) can import them.
"""

from datetime import date
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.defaults import empty_list


class RecertStatus(str, Enum):
    current = "current"
    due = "recertification-due"
    out_of_policy = "out-of-policy"

    @property
    def rank(self) -> int:
        return ("current", "recertification-due", "out-of-policy").index(self.value)


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^PG-RECERT-\d{3}$")
    title: str
    reason: str
    status: RecertStatus = Field(description="what the finding makes the system: due or out of policy")
    blocking: bool = Field(default=False, description="the policy blocks the system's next promotion until resolved")
    facts: dict[str, Any] = Field(default_factory=dict)


class Recertification(BaseModel):
    """One system's re-judgement under the current policy, without new evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str
    repository: str
    lock_sha256: str
    approved_decision: str
    approved_policy_version: str
    policy_version: str
    policy_digest: str
    on: date
    findings: list[Finding] = Field(default_factory=empty_list)

    @property
    def status(self) -> RecertStatus:
        return max((f.status for f in self.findings), key=lambda s: s.rank, default=RecertStatus.current)

    @property
    def key(self) -> str:
        """The idempotency key: system, day, policy digest, lock digest."""
        return f"{self.repository}:{self.system}|{self.on.isoformat()}|{self.policy_digest}|{self.lock_sha256}"
