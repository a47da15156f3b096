"""The policy-impact check on a pull request that changes the policy.

Which file is the policy: ``checklists/policy/policy.yaml`` in the PR's repository (where the
gate's own repository keeps it), and also the configured ``policy_path`` when it is a path
relative to the repository (a governed repository that keeps its policy elsewhere). When a PR
touches one of them, the policy at the PR's base commit and at its head are judged against the
inventory of production (the lock files on the production branch of ``recertify_repositories``,
else of the PR's repository) on today's date, and the verdict goes on the head commit: a commit
status ``promotion-gate/policy-impact`` with a token, a check run of the same name with an App.
Failure when a system would gain an out-of-policy finding, success otherwise; a head policy that
does not load, or production that cannot be read, is a failure with the reason. A PR that does not
touch the policy gets no check at all, and costs no GitHub call beyond the file list it shares
with the rest of the dispatch.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import PurePosixPath

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from promotion_gate.checklists.policy import PolicyError
from promotion_gate.checklists.policy_diff import PolicyDiff, diff_policies
from promotion_gate.config.settings import Settings
from promotion_gate.github_api.client import GitHubError, open_github, retrying_from

POLICY_FILE = "checklists/policy/policy.yaml"


def watched_policy_paths(settings: Settings) -> list[str]:
    """The repository paths whose change is a policy change (see the module docstring)."""
    paths = [POLICY_FILE]
    configured = settings.policy_path
    if configured and not PurePosixPath(configured).is_absolute() and ".." not in PurePosixPath(configured).parts:
        paths.append(str(PurePosixPath(configured)))
    return sorted(set(paths))


def touched_policy(settings: Settings, changed: list[str]) -> str | None:
    """The policy path the PR changes (renames count by either name), or None."""
    return next((p for p in watched_policy_paths(settings) if p in set(changed)), None)


def judge_policy_change(settings: Settings, call, repo, pull_request: int, head_sha: str, path: str,
                        today: date) -> PolicyDiff:
    """Base policy vs head policy against production. Raises PolicyError/GitHubError/ValueError with the reason."""
    from promotion_gate.config.policy_source import load_policy, policy_from_bytes
    from promotion_gate.github_api.inventory import read_github_systems
    from promotion_gate.github_api.source import AtRef

    base_sha = call(f"read #{pull_request}", lambda: repo.get_pull(pull_request).base.sha)
    old_bytes, new_bytes = AtRef(repo, base_sha, call).read(path), AtRef(repo, head_sha, call).read(path)
    if new_bytes is None:
        raise PolicyError(f"the pull request deletes {path}")
    old = policy_from_bytes(old_bytes, f"{path}@{base_sha[:7]}") if old_bytes is not None else load_policy(settings.policy_path)
    new = policy_from_bytes(new_bytes, f"{path}@{head_sha[:7]}")
    repositories = list(settings.recertify_repositories) or [repo.full_name]
    return diff_policies(old, new, read_github_systems(settings, repositories), today)


def production_label(settings: Settings, repository: str) -> str:
    repos = ", ".join(settings.recertify_repositories or [repository])
    return f"the production branch ({settings.production_branch or 'default branch'}) of {repos}"


@task(name="check-policy-impact", cache_policy=NO_CACHE)  # the run's settings: no cache key of them (secrets)
def check_policy_impact(settings: Settings, repository: str, pull_request: int, head_sha: str, changed: list[str]) -> str | None:
    """Post `promotion-gate/policy-impact` on the head when the PR changes the policy; its state, or None."""
    from promotion_gate.github_api.checks import post_check_run, uses_checks
    from promotion_gate.github_api.writes import set_status
    from promotion_gate.notifications.policy_diff_text import (
        build_policy_impact_check,
        build_policy_impact_refusal,
        build_policy_impact_status,
    )
    from promotion_gate.prefect_api.run_links import current_run_url

    path = touched_policy(settings, changed)
    if path is None:
        return None
    repo = open_github(settings, repository).get_repo(repository, lazy=True)
    call, link, checks = retrying_from(settings), current_run_url(settings), uses_checks(settings)
    try:
        diff = judge_policy_change(settings, call, repo, pull_request, head_sha, path, datetime.now(timezone.utc).date())
        body = (build_policy_impact_check(diff, head_sha, path, production_label(settings, repository), link) if checks
                else build_policy_impact_status(diff, link))
    except (PolicyError, GitHubError, ValueError, OSError) as exc:
        body = build_policy_impact_refusal(str(exc), head_sha, path, link, checks)
    except Exception as exc:  # any failure is a failing check with its name, never a silent pass
        body = build_policy_impact_refusal(f"the gate failed: {type(exc).__name__}", head_sha, path, link, checks)
    try:
        if checks:
            post_check_run(call, repo, head_sha, body)
        else:
            set_status(call, repo, head_sha, body)
    except GitHubError as exc:  # the promotion requests of this event go on; the check is written on the next push or re-run
        get_run_logger().warning("policy impact of %s on %s not posted: %s", path, head_sha[:7], exc)
        return "not posted"
    state = body.conclusion if checks else body.state
    get_run_logger().info("policy impact of %s on %s: %s", path, head_sha[:7], state)
    return state
