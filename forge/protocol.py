"""The forge: where the governed repository lives, as the promotion flow talks to it.

Two implementations: ``local_repo.forge.LocalForge`` (a git repository on disk: the demo and
``promotion-gate run``) and ``github_api.forge.GitHubForge`` (a repository on GitHub). The flow
sees only this Protocol (``forge.choose.forge_for``), so a third host is one class, and
``tests/test_layers.py`` checks both implementations against it, method by method.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.checkpoint import Checkpoint
from promotion_gate.checklists.decision import Decision, Promotion, PromotionRequest
from promotion_gate.checklists.policy import Policy
from promotion_gate.forge.candidate_reader import Source


@runtime_checkable
class Forge(Protocol):
    has_statuses: bool  # does it show commit statuses / check runs (GitHub) or not (a local repository)

    def candidate_source(self, request: PromotionRequest) -> Source:
        """The files of the candidate commit."""

    def baseline_source(self, request: PromotionRequest) -> Source | None:
        """The files of production (the production branch), or None when there is none yet."""

    def excluded_identities(self, request: PromotionRequest, policy: Policy) -> set[str]:
        """Who may not sign off this promotion: the requester, the PR author, committers, co-authors."""

    def announce(self, request: PromotionRequest, checklist: Checklist) -> None:
        """Show that the gate is evaluating (a pending status or check run); idempotent."""

    def block(self, request: PromotionRequest, decision: Decision, report: str) -> None:
        """Show a block: failing status, the block comment (edited in place), the label swap."""

    def conclude(self, request: PromotionRequest, decision: Decision) -> None:
        """Show the final outcome once the decision is on record (the final status or check run)."""

    def anchor(self, request: PromotionRequest, decision: Decision, checkpoint: Checkpoint) -> str:
        """Append the ledger checkpoint to the anchor ref; the commit that holds it."""

    def promote(self, request: PromotionRequest, decision: Decision, lock: bytes, report: bytes) -> Promotion:
        """Open (or find) the promotion: branch, lock file, report, and a PR where there are PRs."""
