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
from prefect.cache_policies import NO_CACHE
from promotion_gate.audit_store.signing_keys import refuse_demo_key
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.checklists.decision import TimelineEvent
from promotion_gate.checklists.recertification import build_recertification_decision, recertification_id
from promotion_gate.checklists.recertify import ProductionSystem, recertify
from promotion_gate.config.policy_source import load_policy
from promotion_gate.config.settings import Settings, load_settings
from promotion_gate.flows.lock_guard_flow import verify_production
from promotion_gate.flows.recert_actions import notify_owner, sync_issue
from pydantic import BaseModel, ConfigDict


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


# The tasks get the run's settings from the flow (read once, at its start); no cache key is made of them (secrets).
@task(name="fetch-production", cache_policy=NO_CACHE)
def fetch_production(settings: Settings, repositories: list[str], repository_path: str | None) -> list[ProductionSystem]:
    from promotion_gate.github_api.inventory import read_github_systems
    from promotion_gate.local_repo.inventory import read_local_systems

    systems = read_github_systems(settings, repositories) if repositories else []
    if repository_path:
        systems += read_local_systems(repository_path, settings.production_branch or "main")
    return verify_production(settings, systems, set(repositories))


@task(name="sync-recertification-issue", cache_policy=NO_CACHE)
def sync_recertification_issue(settings: Settings, system: ProductionSystem, rc, decision_id: str) -> str:
    return sync_issue(settings, system, rc, decision_id)


@task(name="notify-owner", cache_policy=NO_CACHE)
def notify_recertification(settings: Settings, system: ProductionSystem, rc, resolved: bool) -> str:
    return notify_owner(settings, system, rc, resolved)


@task(name="record-recertification", cache_policy=NO_CACHE)
def record_recertification(settings: Settings, decision) -> str:
    recorded = AuditStore(settings.audit_store, settings=settings).record(decision)
    return str(recorded.folder)


def _one(settings: Settings, system: ProductionSystem, policy, on: date, audit: AuditStore) -> RecertOutcome:
    rc = recertify(system, policy, on)
    decision_id = recertification_id(rc)
    base = {"repository": system.repository, "system": system.system, "decision_id": decision_id, "status": rc.status.value}
    if audit.find(decision_id) is not None:
        return RecertOutcome(recorded=False, events=["already recorded today under this policy and lock"], **base)
    issue = sync_recertification_issue(settings, system, rc, decision_id)
    slack = notify_recertification(settings, system, rc, resolved=" closed " in issue)
    timeline = [TimelineEvent(at=now(), event=f"re-certified under policy {rc.policy_version}: {rc.status.value}"),
                TimelineEvent(at=now(), event=issue), TimelineEvent(at=now(), event=slack)]
    commit = system.lock.source_commit if system.lock else None
    record_recertification(settings, build_recertification_decision(rc, commit, now(), timeline))
    return RecertOutcome(recorded=True, events=[issue, slack], **base)


@flow(name="recertify", log_prints=True)
def recertify_production(repositories: list[str] | None = None, repository_path: str | None = None,
                         store: str | None = None, on: date | None = None) -> list[RecertOutcome]:
    """Every production lock of ``repositories`` (GitHub) and ``repository_path`` (local), re-judged."""
    logger = get_run_logger()
    settings = load_settings().model_copy(update={"audit_store": store} if store else {})  # once, passed down
    policy = load_policy(settings.policy_path)
    repositories = list(repositories if repositories is not None else settings.recertify_repositories)
    if repositories:  # what it signs on GitHub is evidence: never with the demo key (as the gate's GitHub path)
        refuse_demo_key(settings, "the recertify flow on GitHub")
    day = on or now().date()
    audit = AuditStore(settings.audit_store, settings=settings)
    outcomes, failed = [], []
    for system in fetch_production(settings, repositories, repository_path):
        try:
            outcome = _one(settings, system, policy, day, audit)
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
