"""The forge for a repository on GitHub (owner/name): the same interface as ``LocalForge``.

Reads: the manifest and each evidence file at the head SHA, one request each; the production
lock file on the production branch. Writes (each idempotent, see ``github_ops``): a status per
system (context ``promotion-gate/<name>``), the block comment and the label swap, or the
promotion branch, its commit, the PR and the review request. The pending status is set by the
``promotion-request`` flow when it starts this run; ``announce`` only writes when the run will
wait for sign-off, and ``conclude`` sets the final status once the decision is recorded.
"""

from __future__ import annotations

import logging

from promotion_gate.audit_store.store import AuditStore
from promotion_gate.checklists.candidate import LOCK_FILE, parse_lock, system_path
from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.decision import Decision, Promotion, PromotionRequest, Verdict, promotion_branch
from promotion_gate.checklists.identity import committers_of, parse_coauthors
from promotion_gate.checklists.policy import Policy
from promotion_gate.checklists.signoff import identities_of_github
from promotion_gate.config.settings import Settings
from promotion_gate.flows.lock_guard_flow import guard_commit
from promotion_gate.forge.candidate_reader import Source
from promotion_gate.github_api.checks import post_check_run, refresh_aggregate, uses_checks
from promotion_gate.github_api.client import open_github, retrying_from
from promotion_gate.github_api.promotion_prs import close_superseded, resolve_block_comment
from promotion_gate.github_api.source import AtRef
from promotion_gate.github_api.writes import (
    NotTheGates, fetch_issue, open_branch, open_pull, post_comment, post_review_request, set_labels, set_status,
)
from promotion_gate.notifications.checks_bodies import CheckRunBody, aggregate_key, build_decision_check, build_waiting_check
from promotion_gate.notifications.github_bodies import (
    build_block_comment,
    build_commit_message,
    build_decision_status,
    build_pull_body,
    build_pull_title,
    build_reviewers,
    build_signoff_status,
    comment_marker,
)
from promotion_gate.notifications.report import render_markdown
from promotion_gate.prefect_api.run_links import current_run_url

log = logging.getLogger("promotion_gate.github")


class IncompleteCommits(Exception):
    """The pull request has more commits than GitHub lists: separation of duties cannot be established."""


class GitHubForge:
    has_statuses = True

    def __init__(self, settings: Settings, repository: str, github=None) -> None:
        self.settings, self.repository = settings, repository
        self.call = retrying_from(settings)
        self.gh = github or open_github(settings, repository)
        self.repo = self.gh.get_repo(repository, lazy=True)
        self.checks = uses_checks(settings)  # a GitHub App reports through check runs; a token through statuses

    def candidate_source(self, request: PromotionRequest) -> Source:
        return AtRef(self.repo, request.commit, self.call)

    def baseline_source(self, request: PromotionRequest) -> Source | None:
        return AtRef(self.repo, self.settings.production_branch, self.call)

    def excluded_identities(self, request: PromotionRequest, policy: Policy) -> set[str]:
        """Requester, PR author, every commit's author and committer and its Co-authored-by trailers, as policy identities."""
        logins = {request.requester, *request.committers} | ({request.author} if request.author else set())
        emails: set[str] = set()
        if request.pull_request:
            pull = self.repo.get_pull(request.pull_request)
            commits = self.call(f"read the commits of #{request.pull_request}", lambda: list(pull.get_commits()))
            if pull.commits > len(commits):  # GitHub lists at most 250: a committer beyond them would go unseen
                raise IncompleteCommits(f"#{request.pull_request} has {pull.commits} commits; GitHub lists {len(commits)} of them, "
                                        "so the gate cannot tell who committed the change and who may sign it off: squash or "
                                        "split the pull request")
            for commit in commits:
                logins |= {u.login for u in (commit.author, commit.committer) if u is not None and u.login}
                emails |= {p.email for p in (commit.commit.author, commit.commit.committer) if p and p.email}
                emails |= parse_coauthors(commit.commit.message or "")  # Co-authored-by: trailers
        return identities_of_github(policy, logins) | committers_of(policy, emails)

    def announce(self, request: PromotionRequest, checklist: Checklist) -> None:
        """The pending status is already set; say so when the run now waits for people."""
        if not checklist.blocked and checklist.signoff.quorum and self.checks:
            self.post_check(request, build_waiting_check(request, checklist, self._run_url(request)))
        elif not checklist.blocked and checklist.signoff.quorum:
            set_status(self.call, self.repo, request.commit, build_signoff_status(checklist, self._run_url(request)))

    def block(self, request: PromotionRequest, decision: Decision, report: str) -> None:
        """One comment (edited on re-runs) and the label swap; the failure status comes in `conclude`."""
        if not request.pull_request:
            return
        issue = fetch_issue(self.call, self.repo, request.pull_request)
        body = build_block_comment(decision, self.settings.label, self._run_url(request))
        post_comment(self.call, issue, comment_marker(request.system), body)
        if decision.verdict != Verdict.withdrawn:
            set_labels(self.call, issue, self.settings.label, self.settings.blocked_label)

    def promote(self, request: PromotionRequest, decision: Decision, lock: bytes, report: bytes) -> Promotion:
        base = self.settings.production_branch or self.call("read the default branch", lambda: self.repo.default_branch)
        lock_path = system_path(request.system, LOCK_FILE)
        files = {lock_path: lock, f"audit/{request.system}/{decision.decision_id}.md": report}

        def same_decision(sha: str) -> bool:  # the branch exists: does its lock file hold this decision?
            data = AtRef(self.repo, sha, self.call).read(lock_path)
            return data is not None and parse_lock(data, lock_path).decision_id == decision.decision_id

        branch = open_branch(self.call, self.repo, promotion_branch(request), base, files,
                             build_commit_message(decision), same_decision)
        body = build_pull_body(report.decode(), decision)
        try:
            pull = open_pull(self.call, self.repo, branch, base, build_pull_title(request), body)
        except NotTheGates:  # someone else's PR is made from the branch: left as it was (deleting the
            raise            # branch would close their PR, and drop whatever they pushed to it)
        except Exception:
            if branch.created:  # no PR: leave no promotion branch behind (a retry creates it again)
                self._delete_branch(branch.name)
            raise
        owner = decision.checklist.owner if decision.checklist else None
        post_review_request(self.call, pull, *build_reviewers(owner, self.repository))
        close_superseded(self.call, self.repo, request.system, base, pull, request.short_sha)  # github_api/promotion_prs.py
        resolve_block_comment(self.call, self.repo, decision, pull.html_url)
        return Promotion(branch=branch.name, commit=branch.commit, pull_request_url=pull.html_url)

    def anchor(self, request: PromotionRequest, decision: Decision, checkpoint) -> str:
        """Append the head to refs/promotion-gate/ledger (Git Data API, force=false); the PR body or the
        block comment then carries it (seq and hash)."""
        from github.PullRequest import PullRequest
        from promotion_gate.github_api.anchor import write_github_checkpoint

        commit = write_github_checkpoint(self.call, self.repo, checkpoint)
        head = (checkpoint.seq, checkpoint.head)
        promotion = decision.promotion
        if decision.verdict == Verdict.promoted and promotion and promotion.pull_request_url:
            number = int(promotion.pull_request_url.rstrip("/").rsplit("/", 1)[1])
            pull = PullRequest(self.repo.requester, attributes={"number": number, "url": f"{self.repo.url}/pulls/{number}"},
                               completed=False)  # known from the decision: no read to complete it
            body = build_pull_body(render_markdown(decision, ledger_head=checkpoint.head), decision, ledger=head)
            self.call(f"put the ledger head in #{number}", pull.edit, body=body)
        elif request.pull_request:
            issue = fetch_issue(self.call, self.repo, request.pull_request)
            body = build_block_comment(decision, self.settings.label, self._run_url(request), ledger=head)
            post_comment(self.call, issue, comment_marker(request.system), body)
        return commit

    def _delete_branch(self, name: str) -> None:
        try:
            from github.GitRef import GitRef

            ref = GitRef(self.repo.requester, attributes={"url": f"{self.repo.url}/git/refs/heads/{name}"}, completed=False)
            self.call(f"delete branch {name}", ref.delete)  # DELETE /git/refs/heads/<name>: no read first
        except Exception as exc:  # the error decision still says nothing was promoted; a re-run re-points it
            log.warning("could not delete branch %s after the PR failed: %s", name, type(exc).__name__)

    def conclude(self, request: PromotionRequest, decision: Decision) -> None:
        """The final status, set after the decision is on record: success means recorded and opened."""
        promotion = decision.promotion
        link = promotion.pull_request_url if promotion and promotion.pull_request_url else self._run_url(request)
        if promotion and promotion.commit and decision.verdict == Verdict.promoted:
            guard_commit(self.settings, self.call, self.repo, promotion.commit, [system_path(request.system, LOCK_FILE)],
                         AuditStore(self.settings.audit_store), self.repository)
        if self.checks:
            manifest = self._manifest_text(request) if decision.checklist and decision.checklist.results else None
            body = build_decision_check(decision, render_markdown(decision), manifest, self._run_url(request), link)
            self.post_check(request, body)
            return
        set_status(self.call, self.repo, request.commit, build_decision_status(decision, link))

    def post_check(self, request: PromotionRequest, body: CheckRunBody) -> None:
        """This system's check run, then the aggregate `promotion-gate` recomputed from every system's."""
        post_check_run(self.call, self.repo, request.commit, body)
        refresh_aggregate(self.call, self.repo, request.commit, aggregate_key(request), body.details_url,
                          self.settings.github_app_id)

    def _manifest_text(self, request: PromotionRequest) -> bytes | None:
        """The manifest at the candidate commit, for the annotations' lines; unreadable: annotations on line 1."""
        try:
            return AtRef(self.repo, request.commit, self.call).read(system_path(request.system, "promotion.yaml"))
        except Exception as exc:  # the decision is on record already; a missing line number must not hide it
            log.warning("manifest of %s not read for annotations: %s", request.system, type(exc).__name__)
            return None

    def _run_url(self, request: PromotionRequest) -> str | None:
        return request.run_url or current_run_url(self.settings)
