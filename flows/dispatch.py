"""The `promotion-request` flow: one pull-request event in, one gate run per AI system out.

The gateway starts it (deployment ``promotion-request``, key ``{repo}#{pr}@{sha}``) for a label,
a push to a labelled PR, or a withdrawal. It voids the gate runs the event makes stale, reads
the PR's changed files, and starts the ``promotion-gate`` deployment once per system under
``ai-systems/<name>/`` (key ``{repo}#{pr}@{sha}:{name}``), setting that system's status to
pending with a link to its run. A labelled PR that touches no system gets one comment saying so.
For a label, the gateway has usually started those gate runs already (gateway/early_pending.py,
tagged with the delivery's id): this run then finds each by its tag and starts nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from promotion_gate.checklists.decision import PromotionRequest
from promotion_gate.config.settings import Settings, load_settings
from promotion_gate.flows.enforcement import (
    GuardLocks,
    Rerun,
    ReviewDeployment,
    guard_pull,
    post_pending,
    post_voided,
    review_deployment,
    with_author,
)
from promotion_gate.slack_api.seal_key import sweeper_key
from promotion_gate.flows.policy_impact import check_policy_impact
from promotion_gate.github_api.client import GitHubError, open_github, retrying_from
from promotion_gate.github_api.source import complete_listing
from promotion_gate.github_api.writes import fetch_issue, post_comment, set_status
from promotion_gate.notifications.error_text import build_error_line
from promotion_gate.notifications.github_bodies import NO_SYSTEM_MARKER, build_no_system_comment, build_pending_status, build_voided_status
from promotion_gate.notifications.github_events import Promote, Supersede, Withdraw, parse_changed_systems, parse_parameters, request_for
from promotion_gate.prefect_api.gate_runs import GateRun, fetch_open_gate_runs, launch_gate_run, plan_gate_run, void_gate_runs
from promotion_gate.prefect_api.run_links import current_run_url


def _repo(settings: Settings, repository: str):
    return open_github(settings, repository).get_repo(repository, lazy=True)


# The tasks get the run's settings from the flow (read once, at its start); no cache key is made of them (secrets).
@task(name="fetch-changed-paths", cache_policy=NO_CACHE)
def fetch_changed_paths(settings: Settings, repository: str, pull_request: int) -> list[str]:
    """The PR's changed paths (both names of a rename), read once: the systems and the policy check share them."""
    pull = _repo(settings, repository).get_pull(pull_request)

    def paths() -> list[str]:
        files = list(pull.get_files())
        complete_listing(pull, len(files))  # a system past GitHub's 3000 would go unevaluated: refuse, loudly
        return [p for f in files for p in (f.filename, f.previous_filename) if p]

    return retrying_from(settings)(f"list the files of #{pull_request}", paths)


@task(name="void-stale-runs", cache_policy=NO_CACHE)
def void_stale_runs(settings: Settings, repository: str, pull_request: int, keep_sha: str | None, reason: str) -> list[GateRun]:
    """Cancel the PR's open gate runs the event makes stale, each with `reason` sealed for it, so the
    sweeper records the withdrawal with the gate's reason (prefect_api/gate_runs.py)."""
    with get_client(sync_client=True) as client:
        stale = [r for r in fetch_open_gate_runs(client, repository, pull_request)
                 if r.parameters.get("request", {}).get("commit") != keep_sha]
        if not stale:
            return []
        key = sweeper_key(settings, "void", "the cancellations are not sealed; the sweeper will record each as "
                                            "cancelled outside the gate")
        return void_gate_runs(client, stale, reason, key=key)


@task(name="set-voided-statuses", cache_policy=NO_CACHE)
def set_voided_statuses(settings: Settings, repository: str, voided: list[GateRun], reason: str) -> None:
    repo, call = _repo(settings, repository), retrying_from(settings)
    for run in voided:
        if not post_voided(settings, call, repo, repository, run, reason):
            set_status(call, repo, run.commit, build_voided_status(run.system, reason))


@task(name="post-no-system-comment", cache_policy=NO_CACHE)
def post_no_system_comment(settings: Settings, repository: str, pull_request: int) -> None:
    repo = _repo(settings, repository)
    call = retrying_from(settings)
    post_comment(call, fetch_issue(call, repo, pull_request), NO_SYSTEM_MARKER, build_no_system_comment(settings.label))


@task(name="start-gate", cache_policy=NO_CACHE)
def start_gate(settings: Settings, request: PromotionRequest, delivery: str | None = None) -> GateRun:
    """Pending first, then the gate run: the pending status (retried like every write, rate limits
    honoured within the configured bound) can never land after the run's final status. A label
    event's gate run may have been started by the gateway already (``delivery``): then nothing."""
    with get_client(sync_client=True) as client:
        key, current = plan_gate_run(client, request, delivery)
    if key is None:  # running, waiting, promoted already, or this event's run: nothing new, no status touched
        return current
    call, link = retrying_from(settings), current_run_url(settings)
    try:
        if not post_pending(settings, call, _repo(settings, request.repository), request, link):
            set_status(call, _repo(settings, request.repository), request.commit, build_pending_status(request.system, link))
    except GitHubError as exc:  # the run goes on and sets the final status; only the early signal is lost
        get_run_logger().warning("pending status for %s not set: %s", request.system, build_error_line(exc))
    return launch_gate_run(settings.gate_deployment, request, key, delivery)


@flow(name="promotion-request", log_prints=True)
def promotion_request(action: str, repository: str, pull_request: int | None, head_sha: str, sender: str,
                      author: str | None = None, before: str | None = None, reason: str | None = None,
                      attempt: str | None = None, base: str | None = None, environment: str | None = None,
                      ref: str | None = None, run_id: int | None = None, delivery: str | None = None) -> list[str]:
    """Void what the event makes stale, then start one gate run per system the PR touches. The
    settings are read once, here, and passed to every step."""
    settings = load_settings()
    ask = parse_parameters(dict(action=action, repository=repository, pull_request=pull_request, head_sha=head_sha,
                                sender=sender, author=author, before=before, reason=reason, attempt=attempt, base=base,
                                environment=environment, ref=ref, run_id=run_id, delivery=delivery))
    if isinstance(ask, ReviewDeployment):  # a GitHub Environment asks: is this commit's lock the gate's?
        review_deployment(settings, ask)
        return []
    if isinstance(ask, (GuardLocks, Supersede, Rerun)):  # a new head (or asked again): its lock files
        guard_pull(settings, ask.repository, ask.pull_request, ask.head_sha, getattr(ask, "base", None))
    if isinstance(ask, GuardLocks):
        check_policy_impact(settings, ask.repository, ask.pull_request, ask.head_sha,
                            fetch_changed_paths(settings, ask.repository, ask.pull_request))
        return []
    if isinstance(ask, Rerun):  # the same commit again: the earlier attempt's open runs give way to this one
        why = f"asked again by {ask.sender}"
        set_voided_statuses(settings, ask.repository, void_stale_runs(settings, ask.repository, ask.pull_request, None, why), why)
        ask = with_author(settings, ask)
    if isinstance(ask, (Supersede, Withdraw)):
        why = ask.reason if isinstance(ask, Withdraw) else f"superseded by {ask.head_sha[:7]}"
        keep = ask.head_sha if isinstance(ask, Supersede) else None
        set_voided_statuses(settings, ask.repository, void_stale_runs(settings, ask.repository, ask.pull_request, keep, why), why)
    if isinstance(ask, Withdraw):
        return []
    changed = fetch_changed_paths(settings, ask.repository, ask.pull_request)
    check_policy_impact(settings, ask.repository, ask.pull_request, ask.head_sha, changed)
    systems = parse_changed_systems(changed)
    if not systems:
        post_no_system_comment(settings, ask.repository, ask.pull_request)
        return []
    at = datetime.now(timezone.utc)
    delivery = ask.delivery if isinstance(ask, Promote) else None
    return [start_gate(settings, request_for(ask, system, at), delivery).id for system in systems]
