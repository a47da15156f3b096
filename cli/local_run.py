"""`promotion-gate run`: one promotion of one system at one commit of a local repository."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path


def run_local(repo: str, system: str, commit: str, *, requester: str, approvals: list[str], store: str | None, production_branch: str, policy: str | None = None) -> int:
    """The settings are read once here (the store to print) and once by the flow, at its start;
    the production branch and the policy go to the flow as its parameters, never into the environment."""
    from promotion_gate.checklists.decision import PromotionRequest, Verdict
    from promotion_gate.cli.quiet_prefect import quiet_prefect
    from promotion_gate.config.settings import load_settings
    from promotion_gate.flows.promotion import promotion_gate
    from promotion_gate.local_repo.git import LocalRepo
    from promotion_gate.notifications.terminal import render_decision_summary
    from pydantic import ValidationError

    local = LocalRepo(repo)
    sha = local.resolve(commit) if local.path.is_dir() else None
    if sha is None:
        print(f"error: {repo}: no commit {commit!r} (is it a git repository?)", file=sys.stderr)
        return 2
    top = local.git("rev-parse", "--show-toplevel", check=False).decode().strip()
    if not top or Path(top).resolve() != local.path:
        print(f"error: {repo}: not the root of its git repository ({top or 'none'} is); the gate writes branches, "
              "locks and its checkpoint ref into the repository it governs, so give that repository's root", file=sys.stderr)
        return 2
    if local.resolve(production_branch) is None:  # else judged with no production baseline, signed, then failed at the end
        print(f"error: {repo}: no branch {production_branch!r} (the production branch): give the branch production's locks "
              "are on (--production-branch)", file=sys.stderr)
        return 2
    try:
        request = PromotionRequest(repository=str(local.path), system=system, commit=sha, requester=requester, requested_at=datetime.now(timezone.utc))
    except ValidationError as exc:
        print(f"error: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    store_root = Path(store or load_settings().audit_store).resolve()
    known = {p.name for p in (store_root / "decisions").glob("*")} if (store_root / "decisions").is_dir() else set()
    with quiet_prefect():
        decision = promotion_gate(request, approvals=approvals or None, store=store, production_branch=production_branch,
                                  policy_path=str(Path(policy).resolve()) if policy else None)
    print(render_decision_summary(decision))
    if decision.decision_id in known:
        print(f"(an earlier decision for this request, already recorded: {decision.decision_id})")
    print(f"report: {store_root / 'decisions' / decision.decision_id / 'report.md'}")
    return 0 if decision.verdict == Verdict.promoted else 1
