"""``POST /slack/interactions``: verify, parse, answer Slack at once, then judge the click and hand it on.

Slack wants an answer within three seconds; the route answers after the signature check and the
parse (a few milliseconds) and does the slow work in a background task: wait for the promotion's
run to be waiting, ask Slack who clicked (``users.info`` for the email, ``usergroups.users.list``
for the role), judge with the core's rules, and then either resume the run with the click as
validated plain values, or tell the reviewer exactly why it does not count (``chat.postEphemeral``)
and keep the refusal on the run for its decision. Reject opens a modal (``views.open``) that asks why;
its submission is the rejection.

Mounted by ``gateway.app.build_app`` through :func:`routes`; without the Slack channel set it
mounts nothing, and with it a missing signing secret or bot token stops start-up.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections import OrderedDict
from datetime import datetime, timezone

from promotion_gate.checklists.identity import Workspace, account_problem
from promotion_gate.checklists.signoff import Action, RefusedClick, Signoff, judge
from promotion_gate.config.policy_source import load_policy
from promotion_gate.config.secrets import require_secret
from promotion_gate.config.settings import Settings, SettingsError
from promotion_gate.gateway.handoff import is_unreachable
from promotion_gate.gateway.inbound import Refusals, Refused, RouteLimits, read_body, refuse_declared
from promotion_gate.notifications.slack_interactions import (
    MAX_AGE_SECONDS,
    MAX_BODY_BYTES,
    ButtonClick,
    InteractionError,
    ReasonSubmission,
    SignoffAnswer,
    WaitingPromotion,
    answer_seal_key,
    check_signature,
    click_from,
    interaction_id,
    new_signature_mac,
    parse_interaction,
    seal_answer,
)
from promotion_gate.notifications.slack_messages import build_refusal, build_reject_modal
from promotion_gate.prefect_api.refusal_slots import record_refusal
from promotion_gate.prefect_api.waiting import claim_interaction, keep_answer, read_pinned, read_run_state, send_answer
from promotion_gate.slack_api.client import SlackUnavailable, build_slack_client, fetch_account, fetch_usergroup, slack_call
from pydantic import SecretStr
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

log = logging.getLogger("promotion_gate.gateway.slack")
ROUTE = "slack"
FORM = "application/x-www-form-urlencoded"
NOT_WAITING = "the promotion is no longer waiting for sign-off"
KEPT = "the gate is busy and will apply your answer when it resumes; no need to click again"
UNREACHABLE = "the gate cannot be reached right now and your answer was not recorded; please click again in a few minutes"
SEEN_SECONDS = 2 * MAX_AGE_SECONDS + 60  # longer than any timestamp the signature check lets through
SEEN_MAX = 50_000


def routes(settings: Settings, refusals: Refusals | None = None) -> list[Route]:
    """The Slack routes, or none when sign-off does not go through Slack."""
    if settings.signoff_channel != "slack":
        return []
    secret = require_secret(settings, "slack_signing_secret")
    require_secret(settings, "slack_bot_token")
    if not settings.slack_team_id:
        raise SettingsError("setting PROMOTION_GATE_SLACK_TEAM_ID is required with the Slack channel: "
                            "the workspace whose clicks count")
    interactions = SlackInteractions(settings, secret, refusals=refusals)
    return [Route("/slack/interactions", interactions.receive, methods=["POST"])]


class SlackInteractions:
    def __init__(self, settings: Settings, secret: SecretStr, clock=time.time, refusals: Refusals | None = None) -> None:
        self.settings, self._secret, self._clock = settings, secret, clock
        self._seal_key = answer_seal_key(secret.get_secret_value())  # what the flow checks a click against
        self.refusals = refusals or Refusals()
        self._limits = RouteLimits(ROUTE, MAX_BODY_BYTES, settings.gateway_read_seconds, settings.gateway_slack_bodies)
        self._slots = self.refusals.slots_for(ROUTE, self._limits.concurrency)
        self._workspace = Workspace(team=settings.slack_team_id, enterprise=settings.slack_enterprise_id,
                                    app=settings.slack_app_id)
        self._seen: OrderedDict[bytes, float] = OrderedDict()  # body digest -> when it was first taken

    def _first_time(self, body: bytes) -> bool:
        """True once per body in this process: Slack's retries (X-Slack-Retry-Num) and a replayed request
        carry the same body (its trigger_id and action_ts are one interaction's). Only the fast path: the
        rule is the run's (the claim in `_settle`, and the flow applying one interaction once), which
        another process, or this one after a restart, holds to as well."""
        now, key = self._clock(), hashlib.sha256(body).digest()
        while self._seen and (len(self._seen) >= SEEN_MAX or now - next(iter(self._seen.values())) > SEEN_SECONDS):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    async def receive(self, request: Request) -> Response:
        """Only a request Slack signed reaches the parser; any other is counted and answered, nothing more."""
        try:
            body = await self._read_verified(request)
        except Refused as exc:
            return self.refusals.answer(ROUTE, exc)
        at = datetime.now(timezone.utc)
        try:
            interaction = parse_interaction(body)
        except InteractionError as exc:
            return PlainTextResponse(str(exc), 400)
        if not self._first_time(body):  # answered 200 so Slack stops retrying; judged, told, recorded nowhere
            self._note_repeat()
            return Response(status_code=200)
        if isinstance(interaction, ButtonClick) and interaction.action is Action.reject:
            return Response(status_code=200, background=BackgroundTask(self.guarded, self.ask_reason, interaction))
        if isinstance(interaction, (ButtonClick, ReasonSubmission)):
            return Response(status_code=200, background=BackgroundTask(self.guarded, self.settle, interaction, at,
                                                                       interaction_id(body)))
        return Response(status_code=200)

    def _note_repeat(self) -> None:
        self.refusals.note(ROUTE, "repeat", "a request already taken (a Slack retry or a replay)")

    @staticmethod
    def guarded(work, *args) -> None:
        """The background boundary: whatever fails here is logged; nothing is counted by accident."""
        try:
            work(*args)
        except Exception as exc:  # after the answer to Slack there is no caller left to raise to
            log.error("Slack interaction not handled: %s: %s", type(exc).__name__, exc)

    # Reject: ask why first

    def ask_reason(self, click: ButtonClick) -> None:
        client = build_slack_client(self.settings)
        slack_call("views.open", client.views_open, trigger_id=click.trigger_id,
                   view=build_reject_modal(click.target, click.message))

    # a click or a reason: judge, then resume the run or refuse

    def settle(self, answer: ButtonClick | ReasonSubmission, at: datetime, interaction: str) -> None:
        """Judge and deliver one click; with Prefect unreachable, tell the reviewer to click again."""
        try:
            self._settle(answer, at, interaction)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            log.error("a click on run %s could not reach Prefect: %s", answer.target.run, type(exc).__name__)
            self._tell(answer, None, UNREACHABLE)

    def _settle(self, answer: ButtonClick | ReasonSubmission, at: datetime, interaction: str) -> None:
        target = answer.target
        run_state = self._wait_until_settled(target.run)
        record = read_pinned(target.run)  # this run, and the deadline it was posted with, whatever a newer version says
        if record is None or record.key != target.key:
            log.warning("a click names run %s, which is not a waiting promotion", target.run)
            self._tell(answer, None, "this message does not belong to a promotion the gate knows")
            return
        if not claim_interaction(record.run, interaction):  # taken before, by this process or another, before a restart or not
            self._note_repeat()
            log.info("%s: a repeat of an interaction already taken for the run; judged once", record.key)
            return
        client = build_slack_client(self.settings)
        try:
            account = fetch_account(client, answer.user, answer.team, answer.enterprise, answer.app)
        except SlackUnavailable as exc:  # who clicked is unconfirmed: it does not count, and the reviewer is told
            log.warning("users.info for %s failed: %s", answer.user, exc)
            self._refuse(answer, record, _refusal(answer, at, "Slack could not confirm who clicked; click again", None))
            return
        problem = account_problem(account, self._workspace)
        if problem:
            self._refuse(answer, record, _refusal(answer, at, problem[1], problem[0]))
            return
        click = click_from(answer, at, account.email, guest=account.guest)
        verdict = self._judge(client, click, record, run_state != "ended" and record.status == "waiting")
        if isinstance(verdict, RefusedClick):
            self._refuse(answer, record, verdict)
            return
        sent = seal_answer(SignoffAnswer(kind="click", at=at, click=click, interaction=interaction), record.run, self._seal_key)
        delivery = "busy" if run_state == "busy" else send_answer(record.run, sent, wait_seconds=self.settings.slack_click_wait_seconds)
        if delivery == "sent":
            log.info("%s: %s by %s as %s sent to the flow", record.key, verdict.action.value, verdict.identity, verdict.role)
        elif delivery == "busy":  # a run busy with an answer, or resumed with no worker to take it: keep the click
            keep_answer(record.run, sent)
            log.info("%s: %s by %s kept until the run waits again", record.key, verdict.action.value, verdict.identity)
            self._tell(answer, record, KEPT)
        else:
            self._refuse(answer, record, _refused(verdict, NOT_WAITING))

    def _wait_until_settled(self, run: str) -> str:
        """"waiting" once the run is suspended for an answer; "ended" when it is final (or unknown);
        "busy" when it is still running or resuming after the wait (a worker gone, a long step)."""
        deadline = time.monotonic() + self.settings.slack_click_wait_seconds
        while True:
            state = read_run_state(run)
            if state is None or state.is_final():
                return "ended"
            if state.is_paused():
                return "waiting"
            if time.monotonic() > deadline:
                return "busy"
            time.sleep(0.2)

    def _judge(self, client, click, record: WaitingPromotion, waiting: bool) -> Signoff | RefusedClick:
        policy = load_policy(self.settings.policy_path)
        if waiting and click.at >= record.deadline:
            return RefusedClick(reviewer=click.reviewer, identity=None, action=click.action, at=click.at,
                                channel="slack", reason="the time limit for sign-off has passed")
        spec = policy.roles.get(click.role or "")
        groups = {spec.slack_usergroup: self._members(client, spec.slack_usergroup)} if spec and spec.slack_usergroup else {}
        return judge(click, policy=policy, quorum=record.quorum, digest=record.digest, excluded=set(record.excluded),
                     given=record.signoffs, waiting=waiting, usergroups=groups, waivers=record.waivers)

    def _members(self, client, usergroup: str) -> set[str] | None:
        """The accounts Slack lists in the group; None when it cannot be read (the role's `members` in the
        policy then decide alone; a role without members then has nobody: checklists/signoff.py roles_of)."""
        try:
            return fetch_usergroup(client, usergroup)
        except SlackUnavailable as exc:
            log.warning("user group %s could not be read: %s", usergroup, exc)
            return None

    def _refuse(self, answer, record: WaitingPromotion, refused: RefusedClick) -> None:
        log.info("%s: refused %s: %s", record.key, refused.reviewer, refused.reason)
        record_refusal(record.run, refused)  # authenticated requests only: receive() refused the rest
        self._tell(answer, record, refused.reason)

    def _tell(self, answer, record: WaitingPromotion | None, reason: str) -> None:
        ref = answer.message or next((m for m in (record.messages if record else []) if m.role == answer.target.role), None)
        if ref is None:
            return
        client = build_slack_client(self.settings)
        slack_call("chat.postEphemeral", client.chat_postEphemeral, channel=ref.channel, user=answer.user,
                   text=build_refusal(record.system if record else "this system", reason))

    # the request, before anything in it is trusted (gateway.inbound)

    async def _read_verified(self, request: Request) -> bytes:
        """The raw body of a request Slack signed and sent within five minutes; Refused otherwise.
        A refusal writes nothing, anywhere: whatever run or user the request names is not Slack's word."""
        headers = request.headers
        if headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
            raise Refused(400, f"Content-Type must be {FORM}", "content_type")
        refuse_declared(request, self._limits)
        timestamp, signature = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        if not timestamp or not signature:
            raise Refused(401, "the request carries no Slack signature", "unsigned")
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:  # "²".isdigit() too
            raise Refused(401, "the request timestamp is not a number", "unsigned")
        mac = new_signature_mac(self._secret.get_secret_value(), timestamp)
        async with self._slots.taken():
            sink = io.BytesIO()
            await read_body(request, self._limits, sink, mac)
        problem = check_signature(mac, timestamp, signature, self._clock())
        if problem:
            raise Refused(401, problem, "stale" if "old" in problem else "unsigned")
        return sink.getvalue()


def _refusal(answer: ButtonClick | ReasonSubmission, at: datetime, reason: str, code: str | None) -> RefusedClick:
    action = answer.action if isinstance(answer, ButtonClick) else Action.reject
    return RefusedClick(reviewer=answer.user, identity=None, action=action, at=at, channel="slack", reason=reason, code=code)


def _refused(signoff: Signoff, reason: str) -> RefusedClick:
    return RefusedClick(reviewer=signoff.reviewer, identity=signoff.identity, action=signoff.action, at=signoff.at,
                        channel=signoff.channel, reason=reason)
