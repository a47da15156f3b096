"""What the gate says in Slack: pure Block Kit builders, no I/O.

One request message per required role; the same builder renders it while waiting (with the
Approve and Reject buttons) and once closed (buttons gone, the outcome in their place). Also the
reminder, the Reject reason modal and the ephemeral refusal text. Templates format; they never
decide: every state shown is computed by the core and passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from slack_sdk.models.blocks import (
    ActionsBlock, ButtonElement, ContextBlock, DividerBlock, HeaderBlock, InputBlock, MarkdownTextObject,
    PlainTextInputElement, PlainTextObject, SectionBlock,
)
from slack_sdk.models.views import View

from promotion_gate.checklists.candidate import ProductionLock
from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.cost import build_cost_summary
from promotion_gate.checklists.decision import PromotionRequest
from promotion_gate.checklists.production_change import ProductionChange, production_change
from promotion_gate.checklists.signoff import Action, Signoff, SignoffState
from promotion_gate.notifications.cost_text import render_cost_line
from promotion_gate.notifications.user_text import show_control
from promotion_gate.notifications.slack_interactions import (
    ACTION_APPROVE, ACTION_COMMENT, ACTION_REASON, ACTION_REJECT, ACTION_WAIVE, BLOCK_ACTIONS, BLOCK_COMMENT, BLOCK_REASON,
    BLOCK_WAIVERS,
    VIEW_REJECT, MessageRef, SignoffTarget, WaitingPromotion, reject_metadata,
)

MAX_ITEMS = 15
MAX_SECTION = 2900


class RequestContext(BaseModel):
    """Everything a request message shows, gathered by the flow."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    request: PromotionRequest
    checklist: Checklist
    baseline: ProductionLock | None = None
    run: str
    deadline: datetime
    report_url: str | None = None
    pull_request_url: str | None = None

    def target(self, role: str) -> SignoffTarget:
        return SignoffTarget(run=self.run, key=self.request.key, digest=self.checklist.digest, role=role)


def escape(text: object) -> str:
    """Show any text as text in mrkdwn: no mentions, links or markup, no control characters from the data."""
    return show_control(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_date(at: datetime) -> str:
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at.isoformat(timespec='minutes')}>"


def _clip(text: str, limit: int = MAX_SECTION) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(url: str | None, label: str) -> str | None:
    return f"<{escape(url)}|{label}>" if url else None


# what changed since production


def build_changes(checklist: Checklist, baseline: ProductionLock | None) -> list[str]:
    """Lines saying what differs from production (checklists.production_change): model and vendor,
    data classes, the manifest, metric deltas."""
    change = production_change(checklist, baseline)
    if change is None:
        return ["first promotion: nothing in production to compare with"]
    lines = []
    if change.model_after is not None:
        if change.model_after != change.model_before:
            vendor = "" if change.vendor_after == change.vendor_before else f" (vendor {change.vendor_before} → {change.vendor_after})"
            lines.append(f"model {change.model_before} → {change.model_after}{vendor}")
        else:
            lines.append(f"model unchanged: {change.model_after}")
        lines.append(f"data classes: {', '.join(change.data_classes)}")
    if change.manifest_changed:
        lines.append(f"manifest changed since {change.commit[:7]}")
    return lines + _metric_deltas(change)


def _metric_deltas(change: ProductionChange) -> list[str]:
    lines = []
    for f in change.files:
        if f.kind == "new":
            lines.append(f"{f.path}: new evidence, not in production")
        for d in f.deltas:
            if d.after is None:
                lines.append(f"{f.path} {d.name}: {d.before:.4g} in production, missing now")
            elif d.moved:
                lines.append(f"{f.path} {d.name} {d.before:.4g} → {d.after:.4g} ({d.after - d.before:+.4g})")
    return lines or ["no metric changed"]


# the request message


def build_request_message(ctx: RequestContext, role: str, state: SignoffState, signoffs: Sequence[Signoff] = (),
                          closed: str | None = None) -> dict:
    """{"text", "blocks"} of the request to `role`: buttons while waiting, the outcome once `closed`."""
    cl, req = ctx.checklist, ctx.request
    blocks = [
        HeaderBlock(text=_clip(f"Promotion sign-off: {req.system}", 150)),
        SectionBlock(fields=[MarkdownTextObject(text=_clip(f, 1900)) for f in _facts(ctx, role)]),
        SectionBlock(text=_clip(_checklist_summary(cl))),
        *[SectionBlock(text=_clip(line)) for line in _review_lines(cl)],
        *_cost_blocks(cl),
        SectionBlock(text=_clip("*What changed since production*\n" + "\n".join(
            f"• {escape(line)}" for line in build_changes(cl, ctx.baseline)))),
        ContextBlock(elements=[MarkdownTextObject(text=_clip(_context_line(ctx), 1900))]),
        DividerBlock(),
        SectionBlock(text=_clip(_state_line(state, signoffs, closed))),
    ]
    if closed is None:
        target = ctx.target(role).encode()
        blocks += [
            InputBlock(block_id=BLOCK_COMMENT, label="Comment (optional, kept with your approval)", optional=True,
                       element=PlainTextInputElement(action_id=ACTION_COMMENT, multiline=False, max_length=2000)),
        ]
        if role in cl.signoff.quorum:  # a role asked only to grant a waiver gets the Grant buttons alone
            blocks.append(ActionsBlock(block_id=BLOCK_ACTIONS, elements=[
                ButtonElement(text="Approve", action_id=ACTION_APPROVE, value=target, style="primary"),
                ButtonElement(text="Reject", action_id=ACTION_REJECT, value=target, style="danger"),
            ]))
        blocks += _waiver_blocks(ctx, role)
    text = f"{req.system} at {req.short_sha} ({cl.tier.value} tier) asks for {role} sign-off"
    if closed is not None:
        text = f"{req.system} at {req.short_sha}: {closed}"
    return {"text": _clip(escape(text), 300), "blocks": [b.to_dict() for b in blocks]}


def _facts(ctx: RequestContext, role: str) -> list[str]:
    cl, req = ctx.checklist, ctx.request
    why = "; ".join(cl.tier_reasons)
    return [
        f"*System*\n{escape(req.system)} at `{req.short_sha}`",
        f"*Owner*\n{escape(cl.owner or 'unknown')}",
        f"*Tier*\n{cl.tier.value}: {escape(why)}",
        f"*Requested by*\n{escape(req.requester)}",
        f"*Sign-off asked of*\n{escape(role)}",
        f"*Decide by*\n{slack_date(ctx.deadline)}",
    ]


def _checklist_summary(cl: Checklist) -> str:
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(cl.counts().items()))
    requested = "".join(f"\n*FAIL* `{w.item}`: waiver requested until {w.expires}; it stays failed unless "
                        f"{' or '.join(w.waivable_by)} grants it" for w in cl.waiver_requests)
    return f"*Checklist* ({counts})" + ("" if cl.needs_review or cl.blocked else "\nevery automated item passed") + requested


def _cost_blocks(cl: Checklist) -> list:
    """One context line on cost (PG-COST-001/002's facts, summarised once in the core)."""
    summary = build_cost_summary(cl.results)
    return [ContextBlock(elements=[MarkdownTextObject(text=_clip(escape(render_cost_line(summary)), 1900))])] if summary else []


def _waiver_blocks(ctx: RequestContext, role: str) -> list:
    """One Grant button per waiver request this role may grant (the core judges the click)."""
    mine = [w for w in ctx.checklist.waiver_requests if role in w.waivable_by]
    if not mine:
        return []
    lines = "\n".join(f"• `{w.item}` until {w.expires}: {escape(w.reason)}" for w in mine[:MAX_ITEMS])
    buttons = [ButtonElement(text=_clip(f"Grant waiver of {w.item}", 75), action_id=f"{ACTION_WAIVE}:{w.item}",
                             value=ctx.target(role).model_copy(update={"item": w.item}).encode()) for w in mine[:5]]
    return [SectionBlock(text=_clip(f"*Waivers requested of {escape(role)}*\n{lines}")),
            ActionsBlock(block_id=BLOCK_WAIVERS, elements=buttons)]


def _review_lines(cl: Checklist) -> list[str]:
    lines = []
    for r in cl.needs_review[:MAX_ITEMS]:
        line = f"*{r.outcome.symbol}* `{r.id}` {escape(r.title)}\n{escape(r.reason)}"
        if r.waiver:
            line += (f"\n_waived by {escape(r.waiver.approver)} until {r.waiver.expires}"
                     f" (was {r.waiver.waived_outcome.value}): {escape(r.waiver.reason)}_")
        lines.append(line)
    hidden = len(cl.needs_review) - MAX_ITEMS
    if hidden > 0:
        lines.append(f"… and {hidden} more items to review: see the report")
    return lines


def _context_line(ctx: RequestContext) -> str:
    links = [_link(ctx.report_url, "Report"), _link(ctx.pull_request_url, f"PR #{ctx.request.pull_request}")]
    return " · ".join([f"Digest `{ctx.checklist.digest[:12]}`", f"policy {escape(ctx.checklist.policy_version)}",
                       *[link for link in links if link]])


def _state_line(state: SignoffState, signoffs: Sequence[Signoff], closed: str | None) -> str:
    lines = [f"• {line}" for line in build_signoff_lines(signoffs)] or ["No answer yet."]
    missing = [f"{n} {escape(role)}" for role, n in state.missing.items()]
    missing += [f"a grant of the waiver of `{item}`" for item in state.missing_waivers]
    if closed is not None:
        lines.insert(0, f"*{escape(closed)}*")
    elif missing:
        lines.append(f"*Still needed:* {', '.join(missing)}")
    return "\n".join(lines)


def build_signoff_lines(signoffs: Sequence[Signoff]) -> list[str]:
    """One line per counted answer: who, in which role, when, with the comment."""
    verb = {Action.approve: "approved", Action.reject: "rejected"}
    return [f"{escape(s.identity)} ({escape(s.role)}) "
            + (f"granted the waiver of `{s.item}` until {s.expires}" if s.action == Action.waive else verb[s.action])
            + f" at {slack_date(s.at)}" + (f": {escape(s.comment)}" if s.comment else "") for s in signoffs]


def build_closed_message(record: WaitingPromotion, line: str) -> dict:
    """The request as closed from outside the flow (voided, cancelled, the run ended): the
    outcome, the answers given, no buttons. Built from the run's record alone."""
    given = build_signoff_lines(record.signoffs) or ["No answer was given."]
    blocks = [
        HeaderBlock(text=_clip(f"Promotion sign-off: {record.system}", 150)),
        SectionBlock(text=_clip(f"*{escape(line)}*\n" + "\n".join(f"• {g}" for g in given))),
        ContextBlock(elements=[MarkdownTextObject(text=f"{escape(record.system)} at `{record.commit[:7]}` · "
                                                      f"digest `{record.digest[:12]}`")]),
    ]
    text = escape(f"{record.system} at {record.commit[:7]}: {line}")  # the fallback is mrkdwn too: shown, never obeyed
    return {"text": _clip(text, 300), "blocks": [b.to_dict() for b in blocks]}


# the reminder, the modal, the refusal


def build_reminder(system: str, short_sha: str, role: str, missing: int, deadline: datetime) -> str:
    return (f"Reminder: {escape(system)} at `{short_sha}` still needs {missing} {escape(role)} sign-off; "
            f"without it the promotion is blocked as expired at {slack_date(deadline)}.")


def build_reject_modal(target: SignoffTarget, message: MessageRef | None) -> dict:
    """The modal that asks why, opened by Reject; its submission carries the reason."""
    view = View(
        type="modal", callback_id=VIEW_REJECT, title=PlainTextObject(text="Reject promotion"),
        submit=PlainTextObject(text="Reject"), close=PlainTextObject(text="Cancel"),
        private_metadata=reject_metadata(target, message),
        blocks=[InputBlock(block_id=BLOCK_REASON, label="Why is this promotion rejected?",
                           element=PlainTextInputElement(action_id=ACTION_REASON, multiline=True,
                                                         min_length=1, max_length=2000))],
    )
    return view.to_dict()


def build_refusal(system: str, reason: str) -> str:
    """The ephemeral answer to a click that does not count: exactly why."""
    return f"Your answer on the promotion of {escape(system)} was not counted: {escape(reason)}."
