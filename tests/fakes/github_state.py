"""What the fake GitHub knows, and the rules GitHub applies when it changes.

No HTTP here: the routes and the test-facing API both call these methods, so a PR opened by a
test and a PR opened through the REST API go through the same checks.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from itertools import count

from .github_git import FILE_MODE, SYMLINK_MODE, Commit, GitObjects, Person
from .github_records import (
    SHA_RE, STATUS_STATES, AccessToken, ApiError, App, Comment, Installation, Issue, Label, Pull,
    Repo, Status, Team, User, invalid, not_found, now, touched,
)


class GitHubState:
    def __init__(self) -> None:
        self.git = GitObjects()
        self.users: dict[str, User] = {}
        self.repos: dict[str, Repo] = {}
        self.comments: dict[int, Comment] = {}
        self.teams: dict[tuple[str, str], Team] = {}
        self.apps: dict[int, App] = {}
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, AccessToken] = {}
        self._ids = count(1001)
        self.rate_remaining = 5000
        self.rate_reset = int((now() + timedelta(hours=1)).timestamp())

    def next_id(self) -> int:
        return next(self._ids)

    # users, teams

    def user(self, login: str, **details) -> User:
        key = login.lower()
        if key not in self.users:
            self.users[key] = User(login=login, id=self.next_id(), **details)
        elif details:
            for name, value in details.items():
                setattr(self.users[key], name, value)
        return self.users[key]

    def known_user(self, login: str) -> User:
        if login.lower() not in self.users:
            raise not_found()
        return self.users[login.lower()]

    def team(self, org: str, slug: str) -> Team:
        try:
            return self.teams[(org.lower(), slug.lower())]
        except KeyError:
            raise not_found() from None

    # repositories and refs

    def create_repo(self, full_name: str, default_branch: str, fork_of: str | None) -> Repo:
        owner, _, name = full_name.partition("/")
        if not name or full_name.lower() in self.repos:
            raise invalid("Repository", "name already exists on this account", "name")
        self.user(owner)
        repo = Repo(self.next_id(), owner, name, default_branch, fork_of=fork_of)
        if fork_of:
            parent = self.repo(fork_of)
            repo.default_branch, repo.branches = parent.default_branch, dict(parent.branches)
        self.repos[full_name.lower()] = repo
        return repo

    def repo(self, full_name: str) -> Repo:
        try:
            return self.repos[full_name.lower()]
        except KeyError:
            raise not_found() from None

    def resolve(self, repo: Repo, ref: str | None) -> str:
        """The commit SHA a ref names: branch, heads/x, refs/heads/x, or a (short) commit SHA."""
        ref = ref or repo.default_branch
        name = ref.removeprefix("refs/").removeprefix("heads/")
        if name in repo.branches:
            return repo.branches[name]
        if SHA_RE.match(ref) and self.git.has(ref) and self.git.kind(ref) == "commit":
            return ref
        if re.fullmatch(r"[0-9a-f]{7,39}", ref):
            matches = [s for s in self.reachable(repo) if s.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        raise ApiError(404, f"No commit found for SHA: {ref}")

    def reachable(self, repo: Repo) -> set[str]:
        shas: set[str] = set()
        for tip in [*repo.branches.values(), *repo.refs.values()]:
            shas |= self.git.ancestors(tip)
        for issue in repo.issues.values():  # GitHub keeps PR heads, as refs/pull/N/head
            if issue.pull:
                shas |= self.git.ancestors(issue.pull.head_sha)
        return shas

    def git_object(self, kind: str, sha: str):
        try:
            return getattr(self.git, kind)(sha)
        except KeyError:
            raise not_found() from None

    def set_branch(self, repo: Repo, branch: str, sha: str, force: bool = True) -> None:
        old = repo.branches.get(branch)
        if old and not force and old not in self.git.ancestors(sha):
            raise ApiError(422, "Update is not a fast forward")
        repo.branches[branch] = sha
        self._sync_pulls(repo, branch, sha)

    def set_ref(self, repo: Repo, name: str, sha: str, force: bool = True) -> None:
        """A ref outside refs/heads (full name): fast-forward only unless forced, as GitHub."""
        old = repo.refs.get(name)
        if old and not force and old not in self.git.ancestors(sha):
            raise ApiError(422, "Update is not a fast forward")
        repo.refs[name] = sha

    def _sync_pulls(self, repo: Repo, branch: str, sha: str) -> None:
        for other in self.repos.values():
            for issue in other.issues.values():
                pull = issue.pull
                if not pull or issue.state != "open":
                    continue
                if pull.head_repo == repo.full_name and pull.head_ref == branch:
                    pull.previous_head_sha, pull.head_sha = pull.head_sha, sha
                    issue.updated_at = touched(issue.updated_at)
                if other is repo and pull.base_ref == branch:
                    pull.base_sha = sha

    def commit_files(
        self,
        repo: Repo,
        branch: str,
        files: dict[str, bytes | None],
        message: str,
        author: Person,
        parent: str | None = None,
        symlinks: dict[str, str] | None = None,
    ) -> str:
        """Commit `files` (None deletes a path) and `symlinks` (path -> target, git mode 120000) on top
        of `parent` or the branch tip; move the branch."""
        parent = parent or repo.branches.get(branch)
        current = self.git.flatten(self.git.commit(parent).tree) if parent else {}
        for path, data in files.items():
            if data is None:
                current.pop(path.strip("/"), None)
            else:
                current[path.strip("/")] = (FILE_MODE, self.git.put_blob(data))
        for path, target in (symlinks or {}).items():
            current[path.strip("/")] = (SYMLINK_MODE, self.git.put_blob(target.encode()))
        tree = self.git.build_tree(current)
        commit = Commit(tree, (parent,) if parent else (), author, author, message)
        sha = self.git.put_commit(commit)
        self.set_branch(repo, branch, sha)
        return sha

    # pull requests and issues

    def issue(self, repo: Repo, number: int) -> Issue:
        if number not in repo.issues:
            raise not_found()
        return repo.issues[number]

    def pull(self, repo: Repo, number: int) -> Issue:
        issue = self.issue(repo, number)
        if issue.pull is None:
            raise not_found()
        return issue

    def open_pull(
        self, repo: Repo, head: str, base: str, title: str, body: str | None, user: str,
        draft: bool = False,
    ) -> Issue:
        owner, sep, head_ref = head.rpartition(":")
        head_repo = self._head_repo(repo, owner) if sep else repo
        if head_ref not in head_repo.branches:
            raise invalid("PullRequest", f"head: {head} is not a branch", "head")
        if base not in repo.branches:
            raise invalid("PullRequest", f"base: {base} is not a branch", "base")
        head_sha, base_sha = head_repo.branches[head_ref], repo.branches[base]
        if self._find_open(repo, head_repo.full_name, head_ref, base):
            raise invalid("PullRequest", f"A pull request already exists for {head_repo.owner}:{head_ref}.")
        if not self.git.log(head_sha, base_sha):
            raise invalid("PullRequest", f"No commits between {base} and {head_ref}")
        self.user(user)
        pull = Pull(self.next_id(), head_repo.full_name, head_ref, head_sha, base, base_sha, draft)
        number = max(repo.issues, default=0) + 1
        stamp = now()
        issue = Issue(number, self.next_id(), title, body, user, stamp, stamp, pull=pull)
        repo.issues[number] = issue
        return issue

    def _head_repo(self, repo: Repo, owner: str) -> Repo:
        if owner.lower() == repo.owner.lower():
            return repo
        for candidate in self.repos.values():
            if candidate.owner.lower() == owner.lower() and candidate.fork_of and (
                candidate.fork_of.lower() == repo.full_name.lower()
            ):
                return candidate
        raise invalid("PullRequest", f"head: {owner} has no fork of {repo.full_name}", "head")

    def _find_open(self, repo: Repo, head_repo: str, head_ref: str, base: str) -> Issue | None:
        for issue in repo.issues.values():
            pull = issue.pull
            if pull and issue.state == "open" and (pull.head_repo, pull.head_ref, pull.base_ref) == (
                head_repo, head_ref, base
            ):
                return issue
        return None

    def pull_files(self, issue: Issue) -> list:
        pull = issue.pull
        base = self.git.merge_base(pull.base_sha, pull.head_sha)
        old_tree = self.git.commit(base).tree if base else None
        return self.git.diff(old_tree, self.git.commit(pull.head_sha).tree)

    def pull_commits(self, issue: Issue) -> list[str]:
        return self.git.log(issue.pull.head_sha, issue.pull.base_sha)

    def request_reviewers(self, issue: Issue, repo: Repo, logins: list, team_slugs: list) -> None:
        for login in logins:
            if login.lower() == issue.user.lower():
                raise invalid("PullRequest", "Review cannot be requested from pull request author.")
            if login.lower() not in self.users:
                raise invalid(
                    "PullRequest",
                    "Reviews may only be requested from collaborators. One or more of the users "
                    "or teams you specified is not a collaborator of the "
                    f"{repo.full_name} repository.",
                )
        for slug in team_slugs:
            self.team(repo.owner, slug)
        pull = issue.pull
        pull.requested_reviewers += [x for x in logins if x not in pull.requested_reviewers]
        pull.requested_teams += [x for x in team_slugs if x not in pull.requested_teams]

    # labels

    def label(self, repo: Repo, name: str) -> Label:
        key = name.lower()
        if key not in repo.labels:
            repo.labels[key] = Label(self.next_id(), name)
        return repo.labels[key]

    def add_labels(self, repo: Repo, issue: Issue, names: list[str]) -> None:
        for name in names:
            label = self.label(repo, name)
            if label.name not in issue.labels:
                issue.labels.append(label.name)
        issue.updated_at = touched(issue.updated_at)

    def remove_label(self, repo: Repo, issue: Issue, name: str) -> None:
        match = next((x for x in issue.labels if x.lower() == name.lower()), None)
        if match is None:
            raise ApiError(404, "Label does not exist")
        issue.labels.remove(match)
        issue.updated_at = touched(issue.updated_at)

    # commit statuses and comments

    def add_status(self, repo: Repo, sha: str, body: dict, creator: str) -> Status:
        if not SHA_RE.match(sha) or sha not in self.reachable(repo):
            raise invalid("Status", f"No commit found for SHA: {sha}", "sha")
        state, description = body.get("state"), body.get("description")
        if state not in STATUS_STATES:
            raise invalid("Status", f"state is not included in the list ({state})", "state")
        if description is not None and len(description) > 140:
            raise invalid("Status", "description is too long (maximum is 140 characters)", "description")
        status = Status(
            self.next_id(), state, description, body.get("target_url"),
            body.get("context") or "default", creator, now(),
        )
        repo.statuses.setdefault(sha, []).insert(0, status)
        return status

    def latest_statuses(self, repo: Repo, sha: str) -> list[Status]:
        latest: dict[str, Status] = {}
        for status in repo.statuses.get(sha, []):
            latest.setdefault(status.context, status)
        return list(latest.values())

    def add_comment(self, repo: Repo, issue: Issue, body: str, user: str) -> Comment:
        if not isinstance(body, str) or not body:
            raise invalid("IssueComment", "body is missing", "body")
        stamp = now()
        comment = Comment(self.next_id(), repo.full_name, issue.number, body, user, stamp, stamp)
        self.comments[comment.id] = comment
        return comment

    def comment(self, repo: Repo, comment_id: int) -> Comment:
        comment = self.comments.get(comment_id)
        if comment is None or comment.repo != repo.full_name:
            raise not_found()
        return comment

    def comments_on(self, repo: Repo, number: int) -> list[Comment]:
        return [c for c in self.comments.values() if c.repo == repo.full_name and c.number == number]

    # GitHub Apps

    def issue_token(self, installation: Installation) -> AccessToken:
        app = self.apps[installation.app_id]
        token = AccessToken(
            f"ghs_{secrets.token_hex(18)}", f"{app.slug}[bot]", installation.id,
            now() + timedelta(hours=1),
        )
        self.user(token.login, type="Bot")
        self.tokens[token.token] = token
        return token

    def installation_for(self, repo: Repo) -> Installation:
        for installation in self.installations.values():
            if installation.account.lower() == repo.owner.lower() and (
                installation.repositories is None
                or repo.full_name.lower() in [r.lower() for r in installation.repositories]
            ):
                return installation
        raise not_found()
