"""The `recertify` flow: re-judge every production lock under the current policy, daily.

For each system on the production branch of each repository: derive the findings (pure), and
unless today's decision for this system, policy and lock is already in the ledger, sync its
GitHub issue, notify its owner in Slack, and record a signed decision of kind
``recertification``. Nothing in production is changed. A second run on the same day under the
same policy finds every decision recorded and does nothing (idempotency key: system, day,
policy digest, lock digest). GitHub or Slack down is an outcome in the recorded timeline. On
GitHub it refuses to start with the generated demo key, as the gate's GitHub path does.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from prefect import flow, get_run_logger, task
from pydantic import BaseModel, ConfigDict

from promotion_gate.checklists.decision import TimelineEvent
from promotion_gate.checklists.recertification import build_recertification_decision, recertification_id
from promotion_gate.checklists.recertify import ProductionSystem, recertify
from promotion_gate.flows.audit_store import AuditStore
from promotion_gate.flows.policy_source import load_policy
from promotion_gate.flows.recert_actions import notify_owner, sync_issue
from promotion_gate.flows.settings import load_settings
from promotion_gate.flows.signing_keys import refuse_demo_key


class RecertOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str
    system: str
    decision_id: str
    status: str
    recorded: bool
    events: list[str]


def now() -> datetime:
    return datetime.now(timezone.utc)


@task(name="fetch-production")
def fetch_production(repositories: list[str], repository_path: str | None) -> list[ProductionSystem]:
    from promotion_gate.flows.inventory_source import read_github_systems, read_local_systems

    settings = load_settings()
    systems = read_github_systems(settings, repositories) if repositories else []
    if repository_path:
        systems += read_local_systems(repository_path, settings.production_branch or "main")
    return systems


@task(name="sync-recertification-issue")
def sync_recertification_issue(system: ProductionSystem, rc, decision_id: str) -> str:
    return sync_issue(load_settings(), system, rc, decision_id)


@task(name="notify-owner")
def notify_recertification(system: ProductionSystem, rc, resolved: bool) -> str:
    return notify_owner(load_settings(), system, rc, resolved)


@task(name="record-recertification")
def record_recertification(decision, store: str | None) -> str:
    recorded = AuditStore(store or load_settings().audit_store).record(decision)
    return str(recorded.folder)


def _one(system: ProductionSystem, policy, on: date, audit: AuditStore, store: str | None) -> RecertOutcome:
    rc = recertify(system, policy, on)
    decision_id = recertification_id(rc)
    base = {"repository": system.repository, "system": system.system, "decision_id": decision_id, "status": rc.status.value}
    if audit.find(decision_id) is not None:
        return RecertOutcome(recorded=False, events=["already recorded today under this policy and lock"], **base)
    issue = sync_recertification_issue(system, rc, decision_id)
    slack = notify_recertification(system, rc, resolved=" closed " in issue)
    timeline = [TimelineEvent(at=now(), event=f"re-certified under policy {rc.policy_version}: {rc.status.value}"),
                TimelineEvent(at=now(), event=issue), TimelineEvent(at=now(), event=slack)]
    commit = system.lock.source_commit if system.lock else None
    record_recertification(build_recertification_decision(rc, commit, now(), timeline), store)
    return RecertOutcome(recorded=True, events=[issue, slack], **base)


@flow(name="recertify", log_prints=True)
def recertify_production(repositories: list[str] | None = None, repository_path: str | None = None,
                         store: str | None = None, on: date | None = None) -> list[RecertOutcome]:
    """Every production lock of ``repositories`` (GitHub) and ``repository_path`` (local), re-judged."""
    logger = get_run_logger()
    settings = load_settings()
    policy = load_policy(settings.policy_path)
    repositories = list(repositories if repositories is not None else settings.recertify_repositories)
    if repositories:  # what it signs on GitHub is evidence: never with the demo key (as the gate's GitHub path)
        refuse_demo_key(settings, "the recertify flow on GitHub")
    day = on or now().date()
    audit = AuditStore(store or settings.audit_store)
    outcomes, failed = [], []
    for system in fetch_production(repositories, repository_path):
        try:
            outcome = _one(system, policy, day, audit, store)
        except Exception as exc:  # recording failed: say so loudly; tomorrow's run records again
            logger.error("re-certification of %s failed: %s: %s", system.system, type(exc).__name__, exc)
            failed.append(system.system)
            continue
        logger.info("%s %s: %s (%s) %s", outcome.repository, outcome.system, outcome.status,
                    outcome.decision_id, "; ".join(outcome.events))
        outcomes.append(outcome)
    if failed:
        raise RuntimeError(f"re-certification not recorded for: {', '.join(failed)}")
    return outcomes
