"""Check results: a closed set of outcomes, plain data; the verdict is derived from them."""

from datetime import date, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.defaults import empty_list


class Outcome(str, Enum):
    passed = "pass"
    fail = "fail"
    warn = "warn"
    inconclusive = "inconclusive"
    waived = "waived"
    not_applicable = "not applicable"
    error = "error"

    @property
    def blocks(self) -> bool:
        return self in (Outcome.fail, Outcome.error)

    @property
    def symbol(self) -> str:
        return {
            "pass": "PASS", "fail": "FAIL", "warn": "WARN", "inconclusive": "INCONCLUSIVE",
            "waived": "WAIVED", "not applicable": "N/A", "error": "ERROR",
        }[self.value]


class WaiverRequest(BaseModel):
    """A manifest's ``waivers:`` entry for a failed item: a request, granted only through a sign-off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str
    reason: str
    expires: date = Field(description="the expiry the team asked for")
    asked_of: str | None = Field(default=None, description="whom the manifest names; informational only")
    waivable_by: list[str] = Field(default_factory=empty_list, description="roles the policy lets grant it")
    latest_expiry: date | None = Field(default=None, description="the longest expiry the tier allows")
    problem: str | None = Field(default=None, description="why it can never be granted, if so")

    @property
    def grantable(self) -> bool:
        return self.problem is None


class AppliedWaiver(BaseModel):
    """A granted waiver: who granted it (a policy identity of an allowed role), when, until when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approver: str = Field(description="the policy identity that granted the waiver")
    reason: str
    expires: date
    waived_outcome: Outcome = Field(description="what the item would have been without the waiver")
    role: str | None = None
    granted_at: datetime | None = None
    channel: str | None = None
    requested_expires: date | None = None


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str
    outcome: Outcome
    reason: str
    remedy: str | None = None
    controls: list[str] = Field(default_factory=empty_list)
    facts: dict[str, Any] = Field(default_factory=dict)
    waiver: AppliedWaiver | None = None
    waiver_request: WaiverRequest | None = None
