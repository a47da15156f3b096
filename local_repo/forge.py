"""The forge for a local git repository: the demo's and `promotion-gate run`'s home.

A local repository has no commit statuses, comments or pull requests; a promotion is the branch
``promote/<name>/<sha7>`` with the lock file and the report committed on it.
"""

from __future__ import annotations

from promotion_gate.checklists.candidate import LOCK_FILE, system_path
from promotion_gate.checklists.decision import Decision, Promotion, PromotionRequest, promotion_branch
from promotion_gate.checklists.identity import committers_of, email_key, login_key, mailbox
from promotion_gate.checklists.policy import Policy
from promotion_gate.forge.candidate_reader import AtCommit, Source
from promotion_gate.local_repo.git import LocalRepo


class LocalForge:
    has_statuses = False

    def __init__(self, path: str, production_branch: str = "main") -> None:
        self.repo = LocalRepo(path)
        self.production_branch = production_branch

    def candidate_source(self, request: PromotionRequest) -> Source:
        return AtCommit(self.repo, request.commit)

    def baseline_source(self, request: PromotionRequest) -> Source | None:
        base = self.repo.resolve(self.production_branch)
        return AtCommit(self.repo, base) if base else None

    def excluded_identities(self, request: PromotionRequest, policy: Policy) -> set[str]:
        """Requester, author and committers of the change, as policy identities."""
        base = self.repo.resolve(self.production_branch)
        merge_base = self.repo.git("merge-base", base, request.commit, check=False).decode().strip() if base else None
        author, emails = self.repo.committers(merge_base if merge_base != request.commit else None, request.commit)
        excluded = committers_of(policy, emails | ({author} if author else set()))
        requester = login_key(request.requester)  # logins, emails and names compare without case, as on GitHub
        for name, ident in policy.identities.items():
            if requester in {login_key(name), login_key(ident.github or "")} or (
                    ident.email and "@" in requester and mailbox(ident.email) == mailbox(requester)):
                excluded.add(name)
        if "@" in requester:
            excluded.add(email_key(policy, requester))
        return excluded

    def announce(self, request: PromotionRequest, checklist) -> None:
        """A local repository has no commit statuses: the pending state lives in the flow run."""

    def block(self, request: PromotionRequest, decision: Decision, report: str) -> None:
        """A blocked local promotion creates no branch; the decision is recorded in the audit store."""

    def conclude(self, request: PromotionRequest, decision: Decision) -> None:
        """A local repository has no commit statuses: the outcome lives in the audit store."""

    def anchor(self, request: PromotionRequest, decision: Decision, checkpoint) -> str:
        """Append the ledger head to refs/promotion-gate/ledger of this repository (git plumbing, never forced)."""
        from promotion_gate.local_repo.anchor import write_local_checkpoint

        return write_local_checkpoint(self.repo.path, checkpoint)

    def promote(self, request: PromotionRequest, decision: Decision, lock: bytes, report: bytes) -> Promotion:
        base = self.repo.resolve(self.production_branch)
        if base is None:
            raise RuntimeError(f"production branch {self.production_branch!r} does not exist")
        branch = promotion_branch(request)
        files = {
            system_path(request.system, LOCK_FILE): lock,
            f"audit/{request.system}/{decision.decision_id}.md": report,
        }
        message = f"Promote {request.system} at {request.short_sha}\n\nDecision {decision.decision_id} by promotion-gate."
        commit = self.repo.commit_files(branch, base, files, message)
        return Promotion(branch=branch, commit=commit)
