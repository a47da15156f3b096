"""Routes of the fake GitHub for the conversation around a change: pull requests, issues,
labels, comments and commit statuses."""

from __future__ import annotations

from .github_calls import Call, Reply, Route, route
from .github_routes_git import commit_json
from .github_records import ApiError, Issue, invalid, now, touched


def _matches(issue: Issue, call: Call) -> bool:
    """GitHub's list filters. A `head` without "owner:" is ignored, as on GitHub."""
    pull, query = issue.pull, call.query
    state = query.get("state", "open")
    if state != "all" and issue.state != state:
        return False
    if query.get("base") and pull.base_ref != query["base"]:
        return False
    owner, sep, ref = query.get("head", "").partition(":")
    if sep and (pull.head_repo.split("/")[0].lower() != owner.lower() or pull.head_ref != ref):
        return False
    return True


@route("GET", "/repos/{owner}/{repo}/pulls")
def list_pulls(call: Call) -> Reply:
    repo = call.repo()
    found = [i for i in repo.issues.values() if i.pull and _matches(i, call)]
    found.sort(key=lambda i: i.number, reverse=call.query.get("direction", "desc") == "desc")
    return call.page(found, lambda issue: call.shapes.pull(repo, issue))


@route("POST", "/repos/{owner}/{repo}/pulls")
def create_pull(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("head", "base")
    if not body.get("title") and not body.get("issue"):
        raise invalid("PullRequest", "title wasn't supplied.", "title")
    issue = call.state.open_pull(
        repo, body["head"], body["base"], body.get("title"), body.get("body"), call.login,
        draft=bool(body.get("draft")),
    )
    return Reply(201, call.shapes.pull(repo, issue))


@route("GET", "/repos/{owner}/{repo}/pulls/{number:int}")
def get_pull(call: Call) -> Reply:
    repo = call.repo()
    return Reply(200, call.shapes.pull(repo, call.state.pull(repo, call.params["number"])))


@route("PATCH", "/repos/{owner}/{repo}/pulls/{number:int}")
def update_pull(call: Call) -> Reply:
    repo, body = call.repo(), call.fields()
    issue = call.state.pull(repo, call.params["number"])
    for name in ("title", "body", "state"):
        if name in body:
            setattr(issue, name, body[name])
    issue.updated_at = touched(issue.updated_at)
    return Reply(200, call.shapes.pull(repo, issue))


@route("GET", "/repos/{owner}/{repo}/pulls/{number:int}/files")
def list_pull_files(call: Call) -> Reply:
    repo = call.repo()
    issue = call.state.pull(repo, call.params["number"])
    changes = call.state.pull_files(issue)[:PULL_FILES_LISTED]
    return call.page(changes, lambda c: call.shapes.pull_file(repo, c, issue.pull.head_sha))


PULL_FILES_LISTED = 3000
"""GitHub: "Responses include a maximum of 3000 files" (the PR's `changed_files` still counts them all)."""


PULL_COMMITS_LISTED = 250
"""GitHub: "Lists a maximum of 250 commits for a pull request" (the PR's `commits` still counts them all)."""


@route("GET", "/repos/{owner}/{repo}/pulls/{number:int}/commits")
def list_pull_commits(call: Call) -> Reply:
    repo = call.repo()
    issue = call.state.pull(repo, call.params["number"])
    listed = call.state.pull_commits(issue)[:PULL_COMMITS_LISTED]
    return call.page(listed, lambda sha: commit_json(call.shapes, repo, sha))


@route("POST", "/repos/{owner}/{repo}/pulls/{number:int}/requested_reviewers")
def request_reviewers(call: Call) -> Reply:
    repo, body = call.repo(), call.fields()
    issue = call.state.pull(repo, call.params["number"])
    call.state.request_reviewers(
        issue, repo, list(body.get("reviewers") or []), list(body.get("team_reviewers") or [])
    )
    return Reply(201, call.shapes.pull(repo, issue))


@route("GET", "/repos/{owner}/{repo}/issues")
def list_issues(call: Call) -> Reply:
    """GitHub lists pull requests among issues too; filters: state, creator, labels."""
    repo, query = call.repo(), call.query
    state = query.get("state", "open")
    labels = {x for x in query.get("labels", "").split(",") if x}
    found = [i for i in repo.issues.values()
             if (state == "all" or i.state == state)
             and (not query.get("creator") or i.user.lower() == query["creator"].lower())
             and labels <= {x.lower() for x in i.labels}]
    found.sort(key=lambda i: i.number, reverse=query.get("direction", "desc") == "desc")
    return call.page(found, lambda issue: call.shapes.issue(repo, issue))


@route("POST", "/repos/{owner}/{repo}/issues")
def create_issue(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("title")
    call.state.user(call.login)
    number = max(repo.issues, default=0) + 1
    stamp = now()
    issue = Issue(number, call.state.next_id(), body["title"], body.get("body"), call.login, stamp, stamp)
    repo.issues[number] = issue
    call.state.add_labels(repo, issue, list(body.get("labels") or []))
    return Reply(201, call.shapes.issue(repo, issue))


@route("PATCH", "/repos/{owner}/{repo}/issues/{number:int}")
def update_issue(call: Call) -> Reply:
    repo, body = call.repo(), call.fields()
    issue = call.state.issue(repo, call.params["number"])
    for name in ("title", "body", "state"):
        if name in body:
            setattr(issue, name, body[name])
    issue.updated_at = touched(issue.updated_at)
    return Reply(200, call.shapes.issue(repo, issue))


@route("GET", "/repos/{owner}/{repo}/issues/{number:int}")
def get_issue(call: Call) -> Reply:
    repo = call.repo()
    return Reply(200, call.shapes.issue(repo, call.state.issue(repo, call.params["number"])))


@route("GET", "/repos/{owner}/{repo}/issues/{number:int}/labels")
def list_issue_labels(call: Call) -> Reply:
    repo = call.repo()
    issue = call.state.issue(repo, call.params["number"])
    return call.page(issue.labels, lambda name: call.shapes.label(repo, call.state.label(repo, name)))


def _label_names(call: Call) -> list[str]:
    """GitHub takes a bare JSON array or {"labels": [...]}; PyGithub sends the array."""
    body = call.body.get("labels") if isinstance(call.body, dict) else call.body
    if not isinstance(body, list) or not all(isinstance(x, str) for x in body):
        raise invalid("Label", "labels must be a list of names", "labels")
    return body


@route("POST", "/repos/{owner}/{repo}/issues/{number:int}/labels")
def add_labels(call: Call) -> Reply:
    repo = call.repo()
    issue = call.state.issue(repo, call.params["number"])
    call.state.add_labels(repo, issue, _label_names(call))
    return Reply(200, call.shapes.issue_labels(repo, issue))


@route("PUT", "/repos/{owner}/{repo}/issues/{number:int}/labels")
def set_labels(call: Call) -> Reply:
    repo = call.repo()
    issue = call.state.issue(repo, call.params["number"])
    issue.labels.clear()
    call.state.add_labels(repo, issue, _label_names(call))
    return Reply(200, call.shapes.issue_labels(repo, issue))


@route("DELETE", "/repos/{owner}/{repo}/issues/{number:int}/labels/{name:path}")
def remove_label(call: Call) -> Reply:
    repo = call.repo()
    issue = call.state.issue(repo, call.params["number"])
    call.state.remove_label(repo, issue, call.params["name"])
    return Reply(200, call.shapes.issue_labels(repo, issue))


@route("GET", "/repos/{owner}/{repo}/labels/{name:path}")
def get_label(call: Call) -> Reply:
    repo = call.repo()
    label = repo.labels.get(call.params["name"].lower())
    if label is None:
        raise ApiError(404, "Not Found")
    return Reply(200, call.shapes.label(repo, label))


@route("GET", "/repos/{owner}/{repo}/issues/{number:int}/comments")
def list_comments(call: Call) -> Reply:
    repo = call.repo()
    issue = call.state.issue(repo, call.params["number"])
    found = call.state.comments_on(repo, issue.number)
    return call.page(found, lambda comment: call.shapes.comment(repo, comment))


@route("POST", "/repos/{owner}/{repo}/issues/{number:int}/comments")
def create_comment(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("body")
    issue = call.state.issue(repo, call.params["number"])
    comment = call.state.add_comment(repo, issue, body["body"], call.login)
    return Reply(201, call.shapes.comment(repo, comment))


@route("GET", "/repos/{owner}/{repo}/issues/comments/{id:int}")
def get_comment(call: Call) -> Reply:
    repo = call.repo()
    return Reply(200, call.shapes.comment(repo, call.state.comment(repo, call.params["id"])))


@route("PATCH", "/repos/{owner}/{repo}/issues/comments/{id:int}")
def edit_comment(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("body")
    comment = call.state.comment(repo, call.params["id"])
    comment.body, comment.updated_at = body["body"], now()
    return Reply(200, call.shapes.comment(repo, comment))


@route("DELETE", "/repos/{owner}/{repo}/issues/comments/{id:int}")
def delete_comment(call: Call) -> Reply:
    repo = call.repo()
    comment = call.state.comment(repo, call.params["id"])
    del call.state.comments[comment.id]
    return Reply(204, None)


@route("POST", "/repos/{owner}/{repo}/statuses/{sha}")
def create_status(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("state")
    status = call.state.add_status(repo, call.params["sha"], body, call.login)
    return Reply(201, call.shapes.status(repo, call.params["sha"], status))


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}/statuses")
def list_statuses(call: Call) -> Reply:
    repo = call.repo()
    sha = call.state.resolve(repo, call.params["ref"])
    return call.page(repo.statuses.get(sha, []), lambda s: call.shapes.status(repo, sha, s))


legacy_list_statuses = Route("GET", "/repos/{owner}/{repo}/statuses/{ref:path}", list_statuses.handler)


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}/status")
def get_combined_status(call: Call) -> Reply:
    repo = call.repo()
    sha = call.state.resolve(repo, call.params["ref"])
    return Reply(200, call.shapes.combined_status(repo, sha))


ROUTES = [
    list_pulls, create_pull, get_pull, update_pull, list_pull_files, list_pull_commits,
    request_reviewers, list_issues, create_issue, update_issue, get_issue, list_issue_labels, add_labels, set_labels, remove_label,
    get_label, list_comments, create_comment, get_comment, edit_comment, delete_comment,
    create_status, list_statuses, legacy_list_statuses, get_combined_status,
]
