"""The promotion-gate flow: gather, evaluate, ask for sign-off, decide, act, record."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed
from promotion_gate.audit_store.evidence import keep_evidence
from promotion_gate.audit_store.lock_signing import build_signed_lock_file
from promotion_gate.audit_store.signing_keys import refuse_demo_key
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.checklists.candidate import Candidate
from promotion_gate.checklists.checklist import Checklist, evaluate
from promotion_gate.checklists.checkpoint import Checkpoint, build_checkpoint
from promotion_gate.checklists.decision import (
    Decision,
    PromotionRequest,
    TimelineEvent,
    Verdict,
    build_lock,
    decide,
    error_decision,
)
from promotion_gate.checklists.ledger import encode_entry
from promotion_gate.checklists.policy import Policy
from promotion_gate.config.policy_source import load_policy
from promotion_gate.config.settings import Settings, load_settings
from promotion_gate.flows.expiry import stopped_before_start
from promotion_gate.flows.signoff_channels import collect_signoffs
from promotion_gate.forge.candidate_reader import read_candidate
from promotion_gate.forge.choose import forge_for, is_local
from promotion_gate.notifications.error_text import build_error_line
from promotion_gate.notifications.report import render_markdown
from promotion_gate.slack_api.owner_notice import notify_block


def now() -> datetime:
    return datetime.now(timezone.utc)


# Every task gets the run's Settings from the flow (read once, at the run's start), and no Prefect
# cache key is made of them (NO_CACHE): they hold secrets (SecretStr), which are no task's input hash.
@task(name="fetch-candidate", cache_policy=NO_CACHE)  # GitHub calls retry in one place: promotion_gate/retrying.py, through flows/github_client.Retrying
def fetch_candidate(request: PromotionRequest, settings: Settings) -> Candidate:
    forge = forge_for(request, settings)
    return read_candidate(forge.candidate_source(request), request.system, request.commit, forge.baseline_source(request))


@task(name="announce-pending", cache_policy=NO_CACHE)
def announce_pending(request: PromotionRequest, checklist: Checklist, settings: Settings) -> None:
    forge_for(request, settings).announce(request, checklist)


@task(name="block-promotion", cache_policy=NO_CACHE)
def block_promotion(request: PromotionRequest, decision: Decision, settings: Settings) -> None:
    forge_for(request, settings).block(request, decision, render_markdown(decision))


@task(name="open-promotion", cache_policy=NO_CACHE)
def open_promotion(request: PromotionRequest, decision: Decision, settings: Settings) -> Decision:
    lock = build_signed_lock_file(build_lock(decision), settings.audit_store, settings)  # the lock guard verifies it
    promotion = forge_for(request, settings).promote(request, decision, lock, render_markdown(decision).encode())
    return decision.model_copy(update={"promotion": promotion})


@task(name="conclude-status", cache_policy=NO_CACHE)
def conclude_status(request: PromotionRequest, decision: Decision, settings: Settings) -> None:
    forge_for(request, settings).conclude(request, decision)


@task(name="notify-owner", cache_policy=NO_CACHE)
def notify_owner(decision: Decision, settings: Settings) -> str:
    line = notify_block(settings, decision, settings.audit_store)
    get_run_logger().info(line)
    return line


@task(name="record-decision", cache_policy=NO_CACHE)
def record_decision(decision: Decision, settings: Settings) -> tuple[Decision, str, Checkpoint]:
    """Keep the evidence judged (evidence/sha256/), record the decision, return it with its checkpoint."""
    audit = AuditStore(settings.audit_store, settings=settings)
    try:  # the copy never stops the record: a file that cannot be kept is logged, its digest is signed anyway
        notes = keep_evidence(audit.root, forge_for(decision.request, settings).candidate_source(decision.request),
                              decision.checklist, settings.evidence_copy_max_bytes)
    except Exception as exc:  # noqa: BLE001 - the forge is down: the record goes on
        notes = [f"evidence not kept: {type(exc).__name__}"]
    for note in notes:
        get_run_logger().warning("%s", note)
    rec = audit.record(decision)
    recorded = Decision.model_validate_json((rec.folder / "decision.json").read_bytes())
    create_markdown_artifact(
        key=artifact_key(recorded.request), markdown=render_markdown(recorded, ledger_head=rec.head),
        description=f"{recorded.verdict.value}: {recorded.decision_id}",
    )
    return recorded, str(rec.folder), build_checkpoint(encode_entry(rec.entry))


@task(name="anchor-ledger-head", cache_policy=NO_CACHE)
def anchor_head(request: PromotionRequest, decision: Decision, checkpoint: Checkpoint, settings: Settings) -> str:
    """Append the head to refs/promotion-gate/ledger of the governed repository; the PR or comment carries it."""
    return forge_for(request, settings).anchor(request, decision, checkpoint)


def run_settings(store: str | None = None, policy_path: str | None = None, production_branch: str | None = None) -> Settings:
    """The run's settings, read once at its start; a run's own parameters (none of them secret) win."""
    given = {"audit_store": store, "policy_path": policy_path, "production_branch": production_branch}
    return load_settings().model_copy(update={k: v for k, v in given.items() if v is not None})


def refuse_demo_key_on_github(request: PromotionRequest, settings: Settings) -> None:
    """The GitHub path never signs with the demo key: a start-up error naming the setting."""
    if not is_local(request.repository):
        refuse_demo_key(settings, "the GitHub path")  # audit_store/signing_keys.py (the recertify flow refuses it too)


def resumed_after_waiting() -> bool:
    """True when this run re-enters the flow after a sign-off wait (its request is on record): what it
    announced before it waited stands, and announcing it again would repeat a write per answer."""
    from prefect.context import FlowRunContext
    from promotion_gate.prefect_api.waiting import read_waiting

    context = FlowRunContext.get()
    run = context.flow_run if context else None
    return bool(run is not None and run.deployment_id is not None and read_waiting(run.id) is not None)


def artifact_key(request: PromotionRequest) -> str:
    """One artifact key per promotion (Prefect keys: lowercase letters, digits, dashes)."""
    pr = f"-pr{request.pull_request}" if request.pull_request else ""
    return f"decision-{request.system}{pr}-{request.short_sha}"


def run_name() -> str:
    """The run's name in the Prefect UI: system, PR and commit."""
    from prefect.runtime import flow_run

    request = flow_run.parameters.get("request")
    data = request.model_dump() if isinstance(request, PromotionRequest) else dict(request or {})
    pr = f"-pr{data['pull_request']}" if data.get("pull_request") else ""
    return f"{data.get('system', 'promotion')}{pr}-{str(data.get('commit', ''))[:7]}"


def final_state(decision: Decision):
    """The run's final state: Completed, named by the verdict, with the first reason as its message."""
    name = {Verdict.promoted: "Promoted", Verdict.error: "Error"}.get(decision.verdict, decision.verdict.value.capitalize())
    return Completed(data=decision, name=name, message=build_error_line("; ".join(decision.reasons), 300))


def failed_decision(request: PromotionRequest, exc: Exception, timeline: list[TimelineEvent], known: dict) -> Decision:
    """The error decision of a run that failed half-way: it keeps the checklist, the sign-offs and the
    refused clicks gathered before the failure."""
    reason = build_error_line(f"the gate failed: {type(exc).__name__}: {exc}", 500)
    decision = error_decision(request, reason, now(), checklist=known.get("checklist"), timeline=timeline)
    before = known.get("decision")
    if before is not None:
        return decision.model_copy(update={"signoffs": before.signoffs, "refused": before.refused})
    got = known.get("signoffs")
    return decision.model_copy(update={"signoffs": got.signoffs, "refused": got.refused}) if got else decision


def _gate(request: PromotionRequest, policy: Policy, approvals: list[str] | None, timeline: list[TimelineEvent],
          settings: Settings, known: dict | None = None) -> Decision:
    known = {} if known is None else known
    candidate = fetch_candidate(request, settings)
    checklist: Checklist = evaluate(candidate, policy, now())
    known["checklist"] = checklist
    timeline.append(TimelineEvent(at=now(), event=f"checklist evaluated: tier {checklist.tier.value}, {checklist.counts()}"))
    if not (checklist.signoff.quorum and resumed_after_waiting()):  # a resumed run's "waiting" status stands
        announce_pending(request, checklist, settings)
    if checklist.hard_blocked or not checklist.needs_signoff:  # a failed item with a grantable waiver request is asked
        decision = decide(request, checklist, None, now=now(), timeline=timeline)
    else:
        excluded = forge_for(request, settings).excluded_identities(request, policy)
        got = collect_signoffs(request, checklist, policy, approvals, excluded, now, settings, baseline=candidate.baseline)
        known["signoffs"] = got
        forged = f", {got.refused_resumes} unsealed resumes refused" if got.refused_resumes else ""
        timeline.append(TimelineEvent(at=now(), event=f"sign-off {got.state.status}: {len(got.signoffs)} counted, "
                                                      f"{len(got.refused)} refused{forged}"))
        if got.problem:  # the sign-off could not even be asked (Slack down): blocked, with the reason
            decision = error_decision(request, build_error_line(got.problem, 500), now(), checklist=checklist, timeline=timeline)
        else:
            decision = decide(request, checklist, got.state, signoffs=got.signoffs, refused=got.refused,
                              now=now(), timeline=timeline, expired=got.expired, withdrawn=got.withdrawn)
    known["decision"] = decision
    if decision.verdict == Verdict.promoted:
        return open_promotion(request, decision, settings)
    block_promotion(request, decision, settings)
    return decision


def publish_decision(request: PromotionRequest, decision: Decision, settings: Settings) -> tuple[Decision, str]:
    """Record, anchor, set the final status, tell the owner: the end of every gate run, and of the
    sweep that decides a run which crashed before it could (flows/expiry.py)."""
    logger = get_run_logger()
    recorded, folder, checkpoint = record_decision(decision, settings)
    anchored = anchor_head(request, recorded, checkpoint, settings, return_state=True)  # a failure stays visible: verify names the gap
    if anchored.is_failed():
        logger.error("the ledger head of %s (seq %d) was not anchored", recorded.decision_id, checkpoint.seq)
    conclude_status(request, recorded, settings, return_state=True)  # the final status once on record; a failure stays visible
    notify_owner(recorded, settings, return_state=True)  # the owner's Slack notice of a block, once per decision
    return recorded, folder


@flow(name="promotion-gate", log_prints=True, flow_run_name=run_name)
def promotion_gate(request: PromotionRequest, approvals: list[str] | None = None, store: str | None = None,
                   policy_path: str | None = None, production_branch: str | None = None) -> Decision:
    """One promotion of one system at one commit. Every path ends in a recorded decision. The
    settings are read once, here, and passed down (`store`, `policy_path` and `production_branch`,
    given by a local run, override theirs)."""
    logger = get_run_logger()
    stopped = stopped_before_start()  # the sweeper decided it as never started: it must not decide twice
    if stopped is not None:
        return stopped
    settings = run_settings(store, policy_path, production_branch)
    refuse_demo_key_on_github(request, settings)
    timeline, known = [TimelineEvent(at=request.requested_at, event=f"promotion requested by {request.requester}")], {}
    try:
        decision = _gate(request, load_policy(settings.policy_path), approvals, timeline, settings, known)
    except Exception as exc:  # fail closed: an error is a decision, never a promotion
        logger.error("promotion of %s failed: %s: %s", request.system, type(exc).__name__, build_error_line(exc))
        decision = failed_decision(request, exc, timeline, known)
        try:
            block_promotion(request, decision, settings)
        except Exception as again:  # the forge is down too: the recorded decision still says error
            logger.error("could not mark %s as blocked: %s: %s", request.system, type(again).__name__, again)
    recorded, folder = publish_decision(request, decision, settings)
    logger.info("%s: %s (%s) -> %s", request.system, recorded.verdict.value, recorded.decision_id, folder)
    return final_state(recorded)
