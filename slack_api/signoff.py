"""The Slack sign-off channel, inside the flow: ask each role once, wait suspended, apply answers, close.

The flow holds no worker while it waits: it suspends for a typed :class:`SignoffInput`, and the
Prefect server keeps the state. Each answer resumes the run, which re-enters the flow from the
top and replays every earlier answer from the server (a fired pause returns its stored input);
the fold over the answers is pure (:func:`apply_answer`), and the side effects (posting,
updating, reminding) run once because the run's own record says what was already done.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Callable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.flow_runs import suspend_flow_run
from promotion_gate.checklists.candidate import ProductionLock
from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.decision import PromotionRequest
from promotion_gate.checklists.policy import Policy
from promotion_gate.checklists.signoff import RefusedClick, Signoff, SignoffState, judge, tally
from promotion_gate.checklists.waivers import requests_of
from promotion_gate.config.settings import Settings
from promotion_gate.flows.signoff_channels import SignoffOutcome
from promotion_gate.notifications.slack_interactions import MessageRef, SignoffAnswer, WaitingPromotion, seal_holds
from promotion_gate.notifications.slack_messages import RequestContext, build_refusal, build_reminder, build_request_message
from promotion_gate.prefect_api.waiting import SignoffInput, pin_to_first, read_first, read_refused, read_waiting, write_waiting
from promotion_gate.slack_api.client import SlackUnavailable, build_slack_client, slack_call
from promotion_gate.slack_api.seal_key import read_seal_key
from pydantic import BaseModel, ConfigDict, Field


class RefusedResume(BaseModel):
    """An expiry, a void or a reminder the flow did not act on: no seal that verifies for this run.
    ``at`` is what the input claimed, never the flow's time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    at: datetime
    reason: str


class Progress(BaseModel):
    """The answers applied so far: the pure state of one wait."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signoffs: list[Signoff] = Field(default_factory=list)
    refused: list[RefusedClick] = Field(default_factory=list)
    expired: bool = False
    withdrawn: str | None = None
    reminder: bool = Field(default=False, description="a sealed reminder came at or after the reminder time")
    refused_resumes: list[RefusedResume] = Field(default_factory=list, description="expiries, voids and reminders "
                                                 "that did not come from their sender: refused, the wait goes on")
    interactions: list[str] = Field(default_factory=list, description="the Slack interactions of the sealed clicks applied")

    def state(self, quorum: dict[str, int], waivers: Iterable[str] = ()) -> SignoffState:
        return tally(quorum, self.signoffs, waivers)

    def is_open(self, quorum: dict[str, int], waivers: Iterable[str] = ()) -> bool:
        return not (self.expired or self.withdrawn) and self.state(quorum, waivers).status == "waiting"


UNSEALED = ("this answer did not come from the gateway (it carries no seal that verifies for this run): "
            "a sign-off counts only from a signed Slack click")
UNSEALED_RESUME = ("this resume did not come from its sender (it carries no seal that verifies for this run): "
                   "an expiry or a reminder counts only from the sweeper, a void only sealed by a holder of the key")


def apply_answer(progress: Progress, answer: SignoffAnswer, *, policy: Policy, record: WaitingPromotion, key: bytes) -> Progress:
    """What one answer does to the wait. Every answer counts only with its sender's seal for this run
    (``key``: :func:`answer_seal_key` of the signing secret): a click the gateway's, a reminder or the
    deadline the sweeper's, a void its sender's; anyone who can reach the Prefect API can resume the run
    with any input. An unsealed expiry, void or reminder is refused (``refused_resumes``) and the wait
    goes on; an unsealed click is a refused click. A sealed click is judged again here (role,
    separation of duties, digest, one answer per person); Slack user-group membership is the
    gateway's, checked at click time and vouched for by the seal. A sealed expiry or reminder before
    its time (the record's first version's) does nothing. A sealed click of a Slack interaction
    already applied (the same signed request replayed to another gateway process or after a restart,
    or a kept copy delivered too) changes nothing: the run's own recorded answers are what it is
    checked against, so a restart of any process forgets nothing."""
    if answer.kind in ("void", "expire", "remind") and not seal_holds(answer, record.run, key):
        refused = RefusedResume(kind=answer.kind, at=answer.at, reason=UNSEALED_RESUME)
        return progress.model_copy(update={"refused_resumes": [*progress.refused_resumes, refused]})
    if answer.kind == "void":
        return progress.model_copy(update={"withdrawn": answer.reason or "the request was voided"})
    if answer.kind == "expire":
        return progress.model_copy(update={"expired": answer.at >= record.deadline})
    if answer.kind == "remind":
        return progress.model_copy(update={"reminder": progress.reminder or answer.at >= record.remind_at})
    if answer.kind != "click" or answer.click is None:
        return progress
    click = answer.click
    if not seal_holds(answer, record.run, key):
        refused = RefusedClick(reviewer=click.reviewer, identity=None, action=click.action, at=click.at,
                               channel=click.channel, reason=UNSEALED, code="unsealed")
        return progress.model_copy(update={"refused": [*progress.refused, refused]})
    if answer.interaction is not None:  # one Slack interaction is one answer, however many copies reach the run
        if answer.interaction in progress.interactions:
            return progress
        progress = progress.model_copy(update={"interactions": [*progress.interactions, answer.interaction]})
    if click.at >= record.deadline:
        refused = RefusedClick(reviewer=click.reviewer, identity=None, action=click.action, at=click.at,
                               channel=click.channel, reason="the time limit for sign-off had passed")
        return progress.model_copy(update={"refused": [*progress.refused, refused]})
    spec = policy.roles.get(click.role or "")
    groups = {spec.slack_usergroup: {click.reviewer}} if spec and spec.slack_usergroup else {}
    verdict = judge(click, policy=policy, quorum=record.quorum, digest=record.digest, excluded=set(record.excluded),
                    given=progress.signoffs, waiting=True, usergroups=groups, waivers=record.waivers)
    if isinstance(verdict, Signoff):
        return progress.model_copy(update={"signoffs": [*progress.signoffs, verdict]})
    return progress.model_copy(update={"refused": [*progress.refused, verdict]})


def closing_line(progress: Progress, record: WaitingPromotion, limit_hours: float) -> str | None:
    """The outcome shown in place of the buttons, or None while the wait goes on."""
    state = progress.state(record.quorum, record.waivers)
    if progress.withdrawn:
        return f"Withdrawn: {progress.withdrawn}"
    if state.status == "rejected":
        rej = state.rejection
        return f"Rejected by {rej.identity} ({rej.role}): {rej.comment or 'no reason given'}"
    if state.status == "approved":
        return "Approved: every required sign-off was given"
    if progress.expired:
        return f"Expired: no quorum within {limit_hours:g} h"
    return None


# side effects, each once


@task(name="ask-for-slack-signoff", cache_policy=NO_CACHE)
def ask_for_signoff(ctx: RequestContext, excluded: set[str], posted_at: datetime, settings: Settings) -> WaitingPromotion:
    """Post one request per role asked (the quorum's, and each role that may grant a waiver requested),
    once per run: a resumed run finds its record and posts nothing."""
    existing = read_waiting(ctx.run)
    if existing is not None:
        return existing
    quorum, cl = ctx.checklist.signoff.quorum, ctx.checklist
    client, messages, waivers = build_slack_client(settings), [], requests_of(cl)
    try:
        for role in roles_asked(quorum, waivers):
            channel = settings.slack_channels.get(role)
            if not channel:
                raise SlackUnavailable(f"no Slack channel is set for role {role} (PROMOTION_GATE_SLACK_CHANNELS)")
            body = build_request_message(ctx, role, tally(quorum, [], waivers))
            posted = slack_call(f"chat.postMessage for {role} to {channel}", client.chat_postMessage, channel=channel, **body)
            messages.append(MessageRef(role=role, channel=posted["channel"], ts=posted["ts"]))
    except SlackUnavailable as exc:
        _close_posted(client, ctx, messages, f"Not requested: {exc}")
        raise
    limit = timedelta(hours=cl.signoff.time_limit_hours)
    record = WaitingPromotion(
        run=ctx.run, key=ctx.request.key, system=ctx.request.system, commit=ctx.request.commit, digest=cl.digest,
        quorum=quorum, excluded=sorted(excluded), posted_at=posted_at, deadline=posted_at + limit,
        remind_at=posted_at + limit * cl.signoff.reminder_at, messages=messages, waivers=waivers,
    )
    return write_waiting(record)


def as_the_flow_knows_it(record: WaitingPromotion, checklist: Checklist, excluded: set[str], run: str | None = None,
                         first: WaitingPromotion | None = None) -> WaitingPromotion:
    """The run's record with what decides whether a click counts taken from the flow itself: the
    quorum, the people excluded (separation of duties) and the waivers requested, as this run
    computed them; the run, as the flow runs it (a seal is checked against this run, never against a
    run a record names); and the deadline of the record's first version, which the flow wrote when
    it posted (a later version cannot move it). The record is a flow-run input, and whoever can reach
    the Prefect API can write a newer version (an empty ``excluded`` would let the requester sign off
    their own change, another run's id would let that run's sealed clicks count here, a later deadline
    would let late clicks count); a forged digest already withdraws the request (``_wait``)."""
    own = record.model_copy(update={"quorum": checklist.signoff.quorum, "excluded": sorted(excluded),
                                    "waivers": requests_of(checklist)})
    return pin_to_first(own, first, run or record.run)


def roles_asked(quorum: dict[str, int], waivers: dict) -> list[str]:
    """The quorum's roles, then every role that may grant a requested waiver (each asked once)."""
    granting = {role for request in waivers.values() for role in request.waivable_by}
    return sorted(set(quorum) | granting)


def _close_posted(client, ctx: RequestContext, messages: list[MessageRef], line: str) -> None:
    for ref in messages:
        body = build_request_message(ctx, ref.role, tally(ctx.checklist.signoff.quorum, [], requests_of(ctx.checklist)), closed=line)
        try:
            slack_call("chat.update", client.chat_update, channel=ref.channel, ts=ref.ts, **body)
        except SlackUnavailable as exc:
            get_run_logger().warning("could not close the request in %s: %s", ref.channel, exc)


@task(name="publish-slack-signoff", cache_policy=NO_CACHE)
def publish_progress(ctx: RequestContext, record: WaitingPromotion, progress: Progress, answer: SignoffAnswer | None,
                     seen: int, closed: str | None, settings: Settings) -> WaitingPromotion:
    """Show answer number `seen` in Slack (update in place, remind, or tell a refused reviewer), then record it."""
    client, logger = build_slack_client(settings), get_run_logger()
    state = progress.state(record.quorum, record.waivers)
    reminded = record.reminded
    try:
        if answer is not None and answer.kind == "remind" and progress.reminder and not reminded and closed is None:
            _remind(client, ctx, record, state)
            reminded = True
        if closed is not None or progress.signoffs != record.signoffs:
            for ref in record.messages:
                body = build_request_message(ctx, ref.role, state, progress.signoffs, closed)
                slack_call(f"chat.update for {ref.role}", client.chat_update, channel=ref.channel, ts=ref.ts, **body)
        if answer is not None:
            _tell_refused(client, record, progress, answer)
    except SlackUnavailable as exc:  # the answer is counted already; the message catches up at the next change
        logger.warning("Slack did not show answer %d of %s: %s", seen, record.key, exc)
    updated = record.model_copy(update={
        "signoffs": progress.signoffs, "seen": seen, "reminded": reminded,
        "status": "waiting" if closed is None else "closed", "outcome": closed,
    })
    return write_waiting(updated)


def _remind(client, ctx: RequestContext, record: WaitingPromotion, state: SignoffState) -> None:
    for ref in record.messages:
        missing = state.missing.get(ref.role, 0)
        if missing:
            text = build_reminder(record.system, ctx.request.short_sha, ref.role, missing, record.deadline)
            slack_call(f"reminder to {ref.role}", client.chat_postMessage, channel=ref.channel, thread_ts=ref.ts,
                       reply_broadcast=True, text=text)


def _tell_refused(client, record: WaitingPromotion, progress: Progress, answer: SignoffAnswer) -> None:
    """A click the gateway let through but the flow refused (a race, or a changed policy): say why."""
    last = progress.refused[-1] if progress.refused else None
    click = answer.click
    if answer.kind != "click" or click is None or last is None or (last.reviewer, last.at) != (click.reviewer, click.at):
        return
    ref = next((m for m in record.messages if m.role == click.role), record.messages[0])
    slack_call("chat.postEphemeral", client.chat_postEphemeral, channel=ref.channel, user=last.reviewer,
               text=build_refusal(record.system, last.reason))


# the channel


def collect_slack_signoffs(request: PromotionRequest, checklist: Checklist, policy: Policy, excluded: set[str],
                           now: Callable, settings: Settings, baseline: ProductionLock | None = None) -> SignoffOutcome:
    quorum, run = checklist.signoff.quorum, FlowRunContext.get().flow_run
    if run.deployment_id is None:
        return _unavailable(quorum, "Slack sign-off needs a run from a deployment (the flow suspends while it waits)")
    key = read_seal_key(settings)
    if key is None:  # no click could be told from a forged resume: ask nobody
        return _unavailable(quorum, "the Slack signing secret is not set where the flow runs "
                                    "(PROMOTION_GATE_SLACK_SIGNING_SECRET): no click could be verified")
    posted_at = now()
    try:
        record = ask_for_signoff(_context(request, checklist, baseline, str(run.id), posted_at + _limit(checklist), settings),
                                 excluded, posted_at, settings)
    except SlackUnavailable as exc:
        return _unavailable(quorum, f"sign-off could not be requested in Slack: {exc}")
    record = as_the_flow_knows_it(record, checklist, excluded, str(run.id), read_first(str(run.id)))
    ctx = _context(request, checklist, baseline, record.run, record.deadline, settings)
    progress = _wait(ctx, record, policy, settings, key)
    refused = sorted([*read_refused(record.run), *progress.refused], key=lambda c: c.at)
    return SignoffOutcome(signoffs=progress.signoffs, refused=refused, state=progress.state(quorum, record.waivers),
                          expired=progress.expired, withdrawn=progress.withdrawn,
                          refused_resumes=len(progress.refused_resumes))


def _wait(ctx: RequestContext, record: WaitingPromotion, policy: Policy, settings: Settings, key: bytes) -> Progress:
    """Suspend for answers until quorum, a rejection, the deadline or a void; replayed answers cost nothing."""
    progress, seen = Progress(), 0
    if record.digest != ctx.checklist.digest:
        progress = Progress(withdrawn=f"the evidence or the policy changed while waiting (digest {record.digest[:12]}"
                                      f" is now {ctx.checklist.digest[:12]}): approvals voided")
    limit = ctx.checklist.signoff.time_limit_hours
    while progress.is_open(record.quorum, record.waivers):
        seen += 1
        answer = suspend_flow_run(wait_for_input=SignoffInput, key=f"signoff-{seen}")
        refusals = len(progress.refused_resumes)
        before, progress = progress, apply_answer(progress, answer, policy=policy, record=record, key=key)
        repeat = answer.kind == "click" and progress is before  # an interaction applied already: nobody is told again
        if record.seen < seen and len(progress.refused_resumes) > refusals:  # logged once, not on every replay
            get_run_logger().warning("refused a resume of %s (answer %d): a %s with no seal that verifies for this run "
                                     "(resumed through the Prefect API?); the wait goes on", ctx.request.key, seen, answer.kind)
        if record.seen < seen:
            record = publish_progress(ctx, record, progress, None if repeat else answer, seen,
                                      closing_line(progress, record, limit), settings)
    if record.status != "closed":  # voided before any answer (the digest changed)
        publish_progress(ctx, record, progress, None, record.seen, closing_line(progress, record, limit), settings)
    return progress


def _limit(checklist: Checklist) -> timedelta:
    return timedelta(hours=checklist.signoff.time_limit_hours)


def _unavailable(quorum: dict[str, int], problem: str) -> SignoffOutcome:
    return SignoffOutcome(signoffs=[], refused=[], state=tally(quorum, []), problem=problem)


def _context(request: PromotionRequest, checklist: Checklist, baseline: ProductionLock | None, run: str,
             deadline: datetime, settings: Settings) -> RequestContext:
    report = f"{settings.prefect_ui_url}/runs/flow-run/{run}" if settings.prefect_ui_url else request.run_url
    return RequestContext(request=request, checklist=checklist, baseline=baseline, run=run, deadline=deadline,
                          report_url=report, pull_request_url=_pull_request_url(request, settings))


def _pull_request_url(request: PromotionRequest, settings: Settings) -> str | None:
    if not request.pull_request or request.repository.count("/") != 1 or request.repository.startswith(("/", ".")):
        return None
    api = settings.github_api_url
    web = "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
    return f"{web}/{request.repository}/pull/{request.pull_request}"
