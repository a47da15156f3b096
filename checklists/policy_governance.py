"""The policy's settings for governance after the gate: budgets, prices, re-certification.

Kept apart from ``policy.py`` (which holds the promotion rules) so each reads in one screen;
``policy.py`` composes these models into :class:`~promotion_gate.checklists.policy.Policy`.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from promotion_gate.checklists.defaults import empty_list


Usd = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]  # strict: YAML `yes` is no price

RECERT_ITEMS = ("PG-RECERT-001", "PG-RECERT-002", "PG-RECERT-003", "PG-RECERT-004", "PG-RECERT-005", "PG-RECERT-007",
                "PG-RECERT-008", "PG-RECERT-009")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Budget(_Strict):
    """What one request and one month of a tier's system may cost, in US dollars."""

    per_request_usd: Usd | None = None
    per_month_usd: Usd | None = None


class Price(_Strict):
    """List price of one model, in US dollars per million tokens."""

    input_per_mtok_usd: Usd
    output_per_mtok_usd: Usd


class RecertificationPolicy(_Strict):
    """Which re-certification findings block the system's next promotion until resolved."""

    blocking: list[str] = Field(default_factory=empty_list, description="finding ids (PG-RECERT-00x) that block the next promotion")

    @field_validator("blocking")
    @classmethod
    def _known_findings(cls, blocking: list[str]) -> list[str]:
        """A typo (PG-RECERT-01) would block nothing, and say nothing: only a finding's id counts."""
        unknown = [f for f in blocking if f not in RECERT_ITEMS]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a re-certification finding id (one of {', '.join(RECERT_ITEMS)})")
        return blocking

    def blocks(self, finding_id: str) -> bool:
        return finding_id in self.blocking
