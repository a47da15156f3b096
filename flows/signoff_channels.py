"""The seam between the flow and the sign-off channels: the console, or Slack (PROMOTION_GATE_SIGNOFF_CHANNEL)."""

from __future__ import annotations

from typing import Callable

from promotion_gate.checklists.candidate import ProductionLock
from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.decision import PromotionRequest
from promotion_gate.checklists.policy import Policy
from promotion_gate.checklists.signoff import RefusedClick, Signoff, SignoffState
from promotion_gate.cli.console_signoff import collect_console_signoffs
from promotion_gate.config.settings import Settings
from pydantic import BaseModel, ConfigDict


class SignoffOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    signoffs: list[Signoff]
    refused: list[RefusedClick]
    state: SignoffState
    expired: bool = False
    withdrawn: str | None = None
    problem: str | None = None
    refused_resumes: int = 0  # expiries, voids and reminders resumed without their sender's seal: not acted on


def collect_signoffs(
    request: PromotionRequest, checklist: Checklist, policy: Policy, approvals: list[str] | None,
    excluded: set[str], now: Callable, settings: Settings, baseline: ProductionLock | None = None,
) -> SignoffOutcome:
    """`withdrawn`: voided while waiting (a new push, the label removed); `problem`: the channel
    could not ask (Slack down), so nothing can be signed and the promotion is blocked with it."""
    if settings.signoff_channel == "slack":
        from promotion_gate.slack_api.signoff import collect_slack_signoffs

        return collect_slack_signoffs(request, checklist, policy, excluded, now, settings, baseline)
    from promotion_gate.forge.choose import is_local  # the GitHub path never counts an asserted sign-off

    signoffs, refused, state = collect_console_signoffs(policy, checklist, approvals, excluded, now,
                                                        accept_asserted=is_local(request.repository))
    return SignoffOutcome(signoffs=signoffs, refused=refused, state=state)
