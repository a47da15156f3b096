"""The gate's writes to GitHub, each idempotent by a key from the domain, so a retry repeats nothing.

- a commit status: by context (GitHub keeps the latest per context);
- the block comment: found by its hidden marker *and* its author being the gate itself (the token's
  user, or ``<app-slug>[bot]`` for a GitHub App), edited, created only when absent; anyone else's
  comment that carries the marker is left alone;
- labels: set as one whole list (one write that a retry cannot double);
- the promotion branch: by name; an existing branch is verified, not duplicated;
- the promotion PR: an open PR from ``owner:branch`` is found before one is opened, and GitHub's
  "A pull request already exists for owner:branch." (a create whose answer was lost) is found;
  a PR found is taken only when the gate opened it and its head is the promotion commit.

Each function takes the ``Retrying`` layer (``call``) and runs its find-then-write step through
it, so a retried step finds what a failed-looking attempt may already have written.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Callable

from github import Auth, GithubException, InputGitTreeElement
from github.GitCommit import GitCommit
from github.Issue import Issue
from github.PullRequest import PullRequest
from github.Repository import Repository
from promotion_gate.github_api.client import GitHubError, Retrying
from promotion_gate.notifications.github_bodies import CommitStatus

log = logging.getLogger("promotion_gate.github")
_OWN_LOGIN: dict[tuple[str, str], str] = {}  # (API, credential digest) -> the login the gate writes as


@dataclass(frozen=True)
class Branch:
    name: str
    commit: str
    created: bool  # False: it existed (an earlier run of the same decision, or a stale one replaced)


def set_status(call: Retrying, repo: Repository, sha: str, status: CommitStatus) -> None:
    commit = repo.get_commit(sha)  # lazy: no request
    extra = {"target_url": status.target_url} if status.target_url else {}
    call(f"set status {status.context}", commit.create_status, status.state, description=status.description,
         context=status.context, **extra)


def fetch_issue(call: Retrying, repo: Repository, number: int) -> Issue:
    """The PR as an issue, read once: its labels and its comment count."""
    issue = repo.get_issue(number)
    call(f"read #{number}", lambda: issue.comments)  # completes the lazy object: one GET
    return issue


def post_comment(call: Retrying, issue: Issue, marker: str, body: str) -> None:
    """Edit the comment that starts with `marker`, or create it; an unchanged body is not rewritten."""
    tries = []

    def step() -> None:
        may_skip_list = not tries and issue.comments == 0  # nothing to find on a PR with no comments
        tries.append(1)
        existing = None if may_skip_list else _find_comment(issue, marker)
        if existing is None:
            issue.create_comment(body)
        elif existing.body != body:
            existing.edit(body)

    call(f"comment on #{issue.number}", step)


def _find_comment(issue: Issue, marker: str):
    """The gate's own comment carrying `marker`; a comment by anyone else is not the gate's, whatever it says."""
    carrying = [c for c in issue.get_comments() if (c.body or "").startswith(marker)]
    if not carrying:
        return None
    own = fetch_own_login(issue).lower()
    mine = [c for c in carrying if c.user is not None and c.user.login.lower() == own]
    if len(mine) < len(carrying):
        log.warning("#%d: %d comment(s) carry the gate's marker but were not written by %s; left alone",
                    issue.number, len(carrying) - len(mine), own)
    return mine[0] if mine else None


def fetch_own_login(issue: Issue | PullRequest | Repository) -> str:
    """The login the gate writes as (`issue`: any object of the repository, for its requester and URL): ``<app-slug>[bot]`` as a GitHub App (GET /app, with the App's
    JWT), the token's user otherwise (GET /user). Read once per process and credential."""
    requester = issue.requester
    auth = requester.auth
    app = isinstance(auth, Auth.AppInstallationAuth)
    credential = f"app:{auth.app_id}" if app else hashlib.sha256(str(getattr(auth, "token", "")).encode()).hexdigest()
    key = (issue.url.split("/repos/")[0], credential)
    if key not in _OWN_LOGIN:
        if app:
            _, data = auth.requester.requestJsonAndCheck("GET", "/app")
            _OWN_LOGIN[key] = f"{data['slug']}[bot]"
        else:
            _, data = requester.requestJsonAndCheck("GET", "/user")
            _OWN_LOGIN[key] = data["login"]
    return _OWN_LOGIN[key]


def set_labels(call: Retrying, issue: Issue, remove: str, add: str) -> None:
    """Replace `remove` by `add` in one PUT of the whole list (the labels read with the issue)."""
    current = [label.name for label in issue.labels]
    wanted = [name for name in current if name.lower() not in (remove.lower(), add.lower())] + [add]
    if [n.lower() for n in current] != [n.lower() for n in wanted]:
        call(f"set labels on #{issue.number}", issue.set_labels, *wanted)


def open_branch(call: Retrying, repo: Repository, name: str, base: str, files: dict[str, bytes], message: str,
                same_decision: Callable[[str], bool]) -> Branch:
    """Commit `files` on a new branch `name` off `base`. If the branch exists, it is kept when
    `same_decision(its head SHA)` says it holds this decision, and re-pointed otherwise."""
    head = call(f"read branch {base}", repo.get_branch, base)
    elements = [InputGitTreeElement(path, "100644", "blob", content=data.decode()) for path, data in files.items()]
    tree = call("create the promotion tree", repo.create_git_tree, elements, head.commit.commit.tree)
    parent = GitCommit(repo.requester, attributes={"sha": head.commit.sha, "url": f"{repo.url}/git/commits/{head.commit.sha}"},
                       completed=False)  # what the branch told us: no request to complete it
    commit = call("create the promotion commit", repo.create_git_commit, message, tree, [parent])
    return call(f"create branch {name}", _create_or_verify_ref, repo, name, commit.sha, same_decision)


def _create_or_verify_ref(repo: Repository, name: str, sha: str, same_decision: Callable[[str], bool]) -> Branch:
    try:
        repo.create_git_ref(f"refs/heads/{name}", sha)
        return Branch(name, sha, created=True)
    except GithubException as exc:
        if exc.status != 422:
            raise
    ref = repo.get_git_ref(f"heads/{name}")
    if ref.object.sha == sha:  # our own create, answered with an error and retried
        return Branch(name, sha, created=True)
    if same_decision(ref.object.sha):
        return Branch(name, ref.object.sha, created=False)
    _refuse_foreign_pulls(repo, name)  # a stale branch is re-pointed, never one someone else's open PR is made from
    log.warning("branch %s held another decision; pointing it at %s", name, sha[:7])
    ref.edit(sha, force=True)
    return Branch(name, sha, created=False)


def open_pull(call: Retrying, repo: Repository, branch: Branch, base: str, title: str, body: str) -> PullRequest:
    """The open promotion PR from `branch`: found (a branch that existed may have one), or opened;
    "already exists" (our own create, its answer lost, then retried) is found, not repeated. A PR
    found is taken only when it is the gate's: opened by the gate's own login, its head at
    `branch.commit`; anyone else's PR from the branch is refused (:class:`NotTheGates`), never adopted."""
    head = f"{repo.full_name.split('/')[0]}:{branch.name}"  # owner:branch, or GitHub ignores the filter
    what = f"open the promotion PR from {head}"
    if not branch.created:
        found = call(f"find the PR from {head}", _find_pull, repo, head, base)
        if found is not None:
            return _the_gates_pull(call, found, branch, what)

    def create() -> PullRequest | None:
        try:
            return repo.create_pull(base=base, head=branch.name, title=title, body=body)
        except GithubException as exc:
            if exc.status != 422 or "already exists" not in str(exc.data).lower():
                raise
        return None

    pull = call(what, create)
    if pull is not None:
        return pull
    found = call(f"find the PR from {head}", _find_pull, repo, head, base)  # "A pull request already exists for ..."
    if found is None:
        raise GitHubError(what, 422, f"GitHub says a pull request from {head} exists, and none is open into {base}")
    return _the_gates_pull(call, found, branch, what)


class NotTheGates(GitHubError):
    """What GitHub holds under the gate's key (a PR from its branch) was made by someone else: refused."""

    def __init__(self, what: str, message: str) -> None:
        Exception.__init__(self, f"{what}: {message}")  # GitHub answered; what it holds is the reason
        self.what, self.status, self.message = what, 422, message


def _refuse_foreign_pulls(repo: Repository, name: str) -> None:
    head = f"{repo.full_name.split('/')[0]}:{name}"
    own = fetch_own_login(repo).lower()
    for pull in repo.get_pulls(state="open", head=head):
        author = pull.user.login if pull.user is not None else "(unknown)"
        if author.lower() != own:
            raise NotTheGates(f"create branch {name}", f"the open pull request #{pull.number} from {name} was opened by "
                                                       f"{author}, not by the gate ({own}): refusing to re-point its branch")


def _the_gates_pull(call: Retrying, pull: PullRequest, branch: Branch, what: str) -> PullRequest:
    own = call("read the gate's own login", fetch_own_login, pull)  # cached: one GET per process, only when a PR is found
    author = pull.user.login if pull.user is not None else "(unknown)"
    if author.lower() != own.lower():
        raise NotTheGates(what, f"the open pull request #{pull.number} from {branch.name} was opened by "
                                f"{author}, not by the gate ({own}): refusing to take it as this promotion's")
    if pull.head.sha != branch.commit:
        raise NotTheGates(what, f"the open pull request #{pull.number} from {branch.name} is at "
                                f"{pull.head.sha[:7]}, not the promotion commit {branch.commit[:7]}")
    return pull


def _find_pull(repo: Repository, head: str, base: str) -> PullRequest | None:
    return next(iter(repo.get_pulls(state="open", head=head, base=base)), None)


def post_review_request(call: Retrying, pull: PullRequest, users: list[str], teams: list[str]) -> None:
    """Ask the owner for review, unless already asked (the PR's own answer says so: no extra read).
    GitHub refusing (an unknown team or user, the PR's own author) is logged, not fatal."""
    users = [u for u in users if u.lower() not in {r.login.lower() for r in pull.requested_reviewers}]
    teams = [t for t in teams if t.lower() not in {r.slug.lower() for r in pull.requested_teams}]
    if not users and not teams:
        return
    try:
        call(f"request review on #{pull.number}", pull.create_review_request, reviewers=users, team_reviewers=teams)
    except GitHubError as exc:
        if exc.status not in (404, 422):
            raise
        log.warning("review not requested from %s: %s", ", ".join(users + teams), exc.message)
