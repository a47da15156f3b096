"""A stateful fake of GitHub's REST API on 127.0.0.1, for the real PyGithub.

    fake = FakeGitHub().start()
    fake.create_repo("acme/models")
    sha = fake.commit_files("acme/models", "feature", {"ai-systems/x/promotion.yaml": "..."})
    number = fake.open_pull("acme/models", "feature", "main", "Promote x", "alice")
    gh = Github(base_url=fake.base_url, auth=Auth.Token("t"), seconds_between_requests=0,
                seconds_between_writes=0)
    ...                                  # the code under test talks to GitHub
    assert fake.statuses("acme/models", sha)["promotion-gate/x"]["state"] == "success"
    fake.fail_next("POST /repos/*/statuses/*", status=502)   # the next matching call fails
    fake.lose_answer_next("POST /repos/*/pulls", status=502)  # carried out, and answered 502

Auth: "token X" or "Bearer X" on every call (401 without); app endpoints want an RS256 JWT
signed by a key given to `register_app`; installation tokens act as "<slug>[bot]" and only see
the repositories of their installation.
"""

from __future__ import annotations

import json
import re
import threading
import time
import traceback
import uuid
from http import HTTPStatus

import jwt
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from . import github_routes_checks, github_routes_git, github_routes_installation, github_routes_issues, github_routes_org
from .github_calls import Call, Reply, RouteTable
from .github_git import Person
from .github_payloads import ping_event, pull_request_event
from .github_routes_org import RATE_LIMIT
from .github_shapes import GitHubShapes
from .github_records import AccessToken, ApiError, App, Installation, Team, not_found, now
from .github_state import GitHubState
from .server import BackgroundServer, CallLog, Fault, FaultQueue, RecordedCall

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
APP_PATHS = re.compile(r"^/app(/|$)|^/(repos/[^/]+/[^/]+|orgs/[^/]+|users/[^/]+)/installation$")
OPEN_PATHS = re.compile(r"^/rate_limit$|^/_raw/")
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


class FakeGitHub:
    def __init__(self, strict_tokens: bool = False, default_login: str = "promotion-gate-bot"):
        """`strict_tokens`: only tokens given to `add_token` (or issued to an installation) work;
        otherwise any token acts as `default_login`."""
        self.strict_tokens, self.default_login = strict_tokens, default_login
        self._lock = threading.RLock()
        self._routes = RouteTable(  # statuses before the catch-all /commits/{ref:path}
            github_routes_checks.ROUTES + github_routes_issues.ROUTES + github_routes_git.ROUTES + github_routes_org.ROUTES
            + github_routes_installation.ROUTES
        )
        app = Starlette(routes=[StarletteRoute("/{path:path}", self._endpoint, methods=METHODS)])
        self._server = BackgroundServer(app, "fake-github")
        self._faults, self._log = FaultQueue(), CallLog()
        self.base_url = ""
        self.state = GitHubState()
        self.server_errors: list[str] = []

    # lifecycle

    def start(self) -> FakeGitHub:
        port = self._server.start()
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every repository, user, app, recorded call and armed fault."""
        with self._lock:
            self.state = GitHubState()
            self.server_errors = []
        self._faults.clear()
        self._log.clear()

    @property
    def shapes(self) -> GitHubShapes:
        return GitHubShapes(self.state, self.base_url)

    # HTTP

    async def _endpoint(self, request: Request) -> Response:
        raw = await request.body()
        method, path, query = request.method, request.url.path, dict(request.query_params)
        authorization = request.headers.get("authorization", "")
        fault = self._faults.take(f"{method} {path}")
        with self._lock:
            if fault is None or fault.applied:  # a lost answer: the call is carried out, its answer replaced
                reply = self._handle(method, path, query, raw, authorization)
            if fault is not None:
                reply = self._fault_reply(fault)
            headers = self._rate_headers() | reply.headers
        try:
            body = _parse_json(raw)
        except ApiError:
            body = raw.decode(errors="replace")
        token = authorization.partition(" ")[2] or None
        self._log.add(RecordedCall(method, path, reply.status, query, body, token))
        return _response(reply, headers)

    def _handle(self, method: str, path: str, query: dict, raw: bytes, authorization: str) -> Reply:
        try:
            match = self._routes.match(method, path)
            if match is None:
                raise not_found()
            handler, params = match
            call = Call(self.state, self.shapes, method, path, params, query, None)
            self._authenticate(call, authorization)
            call.body = _parse_json(raw)
            return handler(call)
        except ApiError as error:
            return Reply(error.status, error.body(), error.headers)
        except Exception:  # a bug in the fake: answer 500 and keep the traceback for the test
            self.server_errors.append(traceback.format_exc())
            return Reply(500, {"message": "fake GitHub failed; see FakeGitHub.server_errors"})

    def _authenticate(self, call: Call, authorization: str) -> None:
        if OPEN_PATHS.match(call.path):
            return
        scheme, _, credential = authorization.partition(" ")
        if not credential.strip():
            raise ApiError(401, "Requires authentication")
        if scheme.lower() not in ("token", "bearer"):
            raise ApiError(401, "Bad credentials")
        if APP_PATHS.match(call.path):
            call.app = self._verify_jwt(credential.strip())
            return
        token = self.state.tokens.get(credential.strip())
        if token is None and not self.strict_tokens and credential.count(".") != 2:
            token = AccessToken(credential, self.default_login, None, None)
        if token is None or (token.expires_at and token.expires_at < now()):
            raise ApiError(401, "Bad credentials")
        call.actor = token
        self.state.rate_remaining = max(self.state.rate_remaining - 1, 0)

    def _verify_jwt(self, credential: str) -> App:
        try:
            issuer = jwt.decode(credential, options={"verify_signature": False})["iss"]
            app = self.state.apps[int(issuer)]
            claims = jwt.decode(credential, app.public_key_pem, algorithms=["RS256"],
                                options={"require": ["exp", "iat", "iss"]})
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            raise ApiError(401, "A JSON web token could not be decoded") from None
        if claims["exp"] - claims["iat"] > 600:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        return app

    def _rate_headers(self) -> dict[str, str]:
        remaining = self.state.rate_remaining
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT), "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(self.state.rate_reset),
            "X-RateLimit-Used": str(RATE_LIMIT - remaining), "X-RateLimit-Resource": "core",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
        }

    @staticmethod
    def _fault_reply(fault: Fault) -> Reply:
        body = fault.body
        if body is None:
            body = {"message": HTTPStatus(fault.status).phrase, "documentation_url": "https://docs.github.com/rest"}
        return Reply(fault.status, body, dict(fault.headers))

    # faults

    def fail_next(self, pattern: str, status: int = 502, times: int = 1,
                  headers: dict[str, str] | None = None, body: object = None) -> None:
        """Answer the next `times` calls whose "METHOD /path" matches `pattern` (fnmatch) with
        `status`, `headers` and `body` (a JSON value or text; default GitHub's error shape)."""
        self._faults.arm(Fault(pattern, status, times, dict(headers or {}), body))

    def lose_answer_next(self, pattern: str, status: int = 502, times: int = 1,
                         headers: dict[str, str] | None = None, body: object = None) -> None:
        """Carry out the next `times` calls matching `pattern` (the state changes as GitHub applied
        them), then answer `status` instead: an answer lost after GitHub did the work (a proxy's
        502/504 in front of it). Recorded with the status the client saw."""
        self._faults.arm(Fault(pattern, status, times, dict(headers or {}), body, applied=True))

    def fail_secondary_rate_limit(self, pattern: str = "*", retry_after: int = 1, times: int = 1) -> None:
        """403 with Retry-After and GitHub's secondary rate limit message."""
        body = {"message": SECONDARY_MESSAGE,
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}
        self.fail_next(pattern, 403, times, {"Retry-After": str(retry_after)}, body)

    def fail_primary_rate_limit(self, pattern: str = "*", reset_in: int = 1, status: int = 403,
                                times: int = 1) -> None:
        """403 (or 429) with X-RateLimit-Remaining: 0 and a reset `reset_in` seconds away."""
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Used": str(RATE_LIMIT),
                   "X-RateLimit-Reset": str(int(time.time()) + reset_in)}
        body = {"message": "API rate limit exceeded for user ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}
        self.fail_next(pattern, status, times, headers, body)

    # recorded calls

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        return [(c.method, c.path, c.status) for c in self._log.all()]

    def calls(self, method: str | None = None, pattern: str | None = None) -> list[RecordedCall]:
        """Recorded calls, filtered by method and an fnmatch pattern on the path."""
        return self._log.filter(method, pattern)

    # arranging state

    def add_user(self, login: str, name: str | None = None, email: str | None = None,
                 type: str = "User") -> None:
        with self._lock:
            self.state.user(login, name=name, email=email, type=type)

    def add_team(self, org: str, slug: str, members: list[str], name: str | None = None) -> None:
        with self._lock:
            self.state.user(org, type="Organization")
            for login in members:
                self.state.user(login)
            team = Team(self.state.next_id(), org, slug, name or slug, list(members))
            self.state.teams[(org.lower(), slug.lower())] = team

    def add_token(self, token: str, login: str) -> None:
        with self._lock:
            self.state.user(login)
            self.state.tokens[token] = AccessToken(token, login, None, None)

    def register_app(self, app_id: int, key_pem: bytes | str, slug: str = "promotion-gate",
                     owner: str = "acme") -> None:
        """A GitHub App whose JWTs verify with `key_pem` (a public key, or the private key)."""
        key_pem = key_pem.encode() if isinstance(key_pem, str) else key_pem
        if b"PRIVATE KEY" in key_pem:
            public = serialization.load_pem_private_key(key_pem, password=None).public_key()
            key_pem = public.public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
        with self._lock:
            self.state.user(owner, type="Organization")
            self.state.apps[app_id] = App(app_id, slug, key_pem, owner)

    def add_installation(self, installation_id: int, app_id: int, account: str,
                         repositories: list[str] | None = None) -> None:
        with self._lock:
            self.state.user(account)
            self.state.installations[installation_id] = Installation(
                installation_id, app_id, account, repositories
            )

    def create_repo(self, full_name: str, default_branch: str = "main", *,
                    fork_of: str | None = None, files: dict[str, bytes | str] | None = None) -> str:
        """A repository with one commit (`files`, or a README) on `default_branch`; a fork
        starts with its parent's branches."""
        with self._lock:
            repo = self.state.create_repo(full_name, default_branch, fork_of)
        if not fork_of:
            initial = files if files is not None else {"README.md": f"# {repo.name}\n"}
            self.commit_files(full_name, default_branch, initial, "Initial commit", author_login=repo.owner)
        return full_name

    def commit_files(self, full_name: str, branch: str, files: dict[str, bytes | str | None],
                     message: str = "Update files", parent: str | None = None,
                     author_login: str | None = None, symlinks: dict[str, str] | None = None) -> str:
        """Commit `files` (None deletes a path) and `symlinks` (path -> target) on `branch` and return
        the commit SHA. A new branch starts from `parent` or the default branch. Open PRs from the
        branch follow it."""
        with self._lock:
            repo = self.state.repo(full_name)
            user = self.state.user(author_login or repo.owner)
            email = user.email or f"{user.id}+{user.login}@users.noreply.github.com"
            author = Person(user.name or user.login, email, now())
            if parent is None and branch not in repo.branches:
                parent = repo.branches.get(repo.default_branch)
            data = {p: v.encode() if isinstance(v, str) else v for p, v in files.items()}
            return self.state.commit_files(repo, branch, data, message, author, parent, symlinks)

    def open_pull(self, full_name: str, head_branch: str, base_branch: str, title: str,
                  user_login: str, labels: tuple[str, ...] = (), head_repo_full_name: str | None = None,
                  body: str | None = None, draft: bool = False) -> int:
        """Open a PR as `user_login`; `head_repo_full_name` names a fork. Returns its number."""
        with self._lock:
            repo = self.state.repo(full_name)
            head_owner = (head_repo_full_name or full_name).split("/")[0]
            issue = self.state.open_pull(repo, f"{head_owner}:{head_branch}", base_branch, title,
                                         body, user_login, draft)
            self.state.add_labels(repo, issue, list(labels))
            return issue.number

    def add_labels(self, full_name: str, number: int, *names: str) -> None:
        with self._lock:
            repo = self.state.repo(full_name)
            self.state.add_labels(repo, self.state.issue(repo, number), list(names))

    def remove_label(self, full_name: str, number: int, name: str) -> None:
        with self._lock:
            repo = self.state.repo(full_name)
            self.state.remove_label(repo, self.state.issue(repo, number), name)

    # asserting end state

    def pulls(self, full_name: str) -> list[dict]:
        """Every PR of the repository (any state), in REST shape, newest first."""
        with self._lock:
            repo = self.state.repo(full_name)
            found = [i for i in repo.issues.values() if i.pull]
            return [self.shapes.pull(repo, i) for i in sorted(found, key=lambda i: -i.number)]

    def pull(self, full_name: str, number: int) -> dict:
        with self._lock:
            repo = self.state.repo(full_name)
            return self.shapes.pull(repo, self.state.pull(repo, number))

    def statuses(self, full_name: str, sha: str) -> dict[str, dict]:
        """The latest status of each context on `sha`, by context."""
        with self._lock:
            repo = self.state.repo(full_name)
            return {s.context: self.shapes.status(repo, sha, s) for s in self.state.latest_statuses(repo, sha)}

    def status_history(self, full_name: str, sha: str) -> list[dict]:
        """Every status ever set on `sha`, newest first."""
        with self._lock:
            repo = self.state.repo(full_name)
            return [self.shapes.status(repo, sha, s) for s in repo.statuses.get(sha, [])]

    def comments(self, full_name: str, number: int) -> list[dict]:
        with self._lock:
            repo = self.state.repo(full_name)
            return [self.shapes.comment(repo, c) for c in self.state.comments_on(repo, number)]

    def labels(self, full_name: str, number: int) -> list[str]:
        with self._lock:
            repo = self.state.repo(full_name)
            return list(self.state.issue(repo, number).labels)

    def branch_sha(self, full_name: str, branch: str) -> str | None:
        with self._lock:
            return self.state.repo(full_name).branches.get(branch)

    def ref_log(self, full_name: str, ref: str) -> list[str]:
        """The commits of a ref outside refs/heads (refs/promotion-gate/ledger), newest first, along first parents."""
        with self._lock:
            sha, out = self.state.repo(full_name).refs.get(ref), []
            while sha:
                out.append(sha)
                parents = self.state.git.commit(sha).parents
                sha = parents[0] if parents else None
            return out

    def force_ref(self, full_name: str, ref: str, sha: str) -> None:
        """Move a ref as a force-push would (what an insider with push rights can do)."""
        with self._lock:
            self.state.set_ref(self.state.repo(full_name), ref, sha, force=True)

    def file_at(self, full_name: str, ref: str, path: str) -> bytes | None:
        with self._lock:
            repo = self.state.repo(full_name)
            entry = self.state.git.lookup(self.state.git.commit(self.state.resolve(repo, ref)).tree, path)
            return self.state.git.blob(entry.sha).data if entry and entry.type == "blob" else None

    # webhook payloads from the current state

    def pull_request_event(self, full_name: str, number: int, action: str, *,
                           label: str | None = None, sender: str | None = None,
                           installation_id: int | None = None) -> dict:
        """A `pull_request` webhook payload for the PR as it is now; synchronize carries the
        head before and after the last push."""
        with self._lock:
            repo = self.state.repo(full_name)
            issue = self.state.pull(repo, number)
            shapes = self.shapes
            return pull_request_event(
                action, shapes.pull(repo, issue), shapes.repo(repo), shapes.user(sender or issue.user),
                label=shapes.label(repo, self.state.label(repo, label)) if label else None,
                before=issue.pull.previous_head_sha, after=issue.pull.head_sha,
                installation_id=installation_id,
            )

    def ping_event(self, full_name: str, config_url: str, hook_id: int = 1,
                   sender: str | None = None) -> dict:
        with self._lock:
            repo = self.state.repo(full_name)
            return ping_event(hook_id, self.shapes.repo(repo), self.shapes.user(sender or repo.owner),
                              config_url)


def _parse_json(raw: bytes):
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "Problems parsing JSON") from None


def _response(reply: Reply, headers: dict[str, str]) -> Response:
    if reply.status == 204 or reply.data is None:
        return Response(status_code=reply.status, headers=headers)
    if isinstance(reply.data, bytes | str):
        return Response(reply.data, reply.status, headers, media_type=headers.get("Content-Type", "text/plain"))
    return Response(json.dumps(reply.data), reply.status, headers,
                    media_type="application/json; charset=utf-8")
