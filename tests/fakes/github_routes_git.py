"""Routes of the fake GitHub for repository content: repository, branches, refs, git objects,
commits and the contents API."""

from __future__ import annotations

import base64
import binascii
import posixpath
from datetime import datetime
from urllib.parse import quote

from .github_calls import Call, Reply, Route, route
from .github_git import FILE_MODE, SYMLINK_MODE, Commit, Person, TreeEntry
from .github_shapes import GitHubShapes, b64_lines, node_id
from .github_records import ApiError, Repo, not_found, now
from .github_state import GitHubState


def author_of(call: Call, given: dict | None) -> Person:
    user = call.state.user(call.login)
    given = given or {}
    default_email = f"{user.id}+{user.login}@users.noreply.github.com"
    date = datetime.fromisoformat(given["date"].replace("Z", "+00:00")) if given.get("date") else now()
    return Person(given.get("name") or user.name or user.login, given.get("email") or default_email, date)


def git_commit_json(shapes: GitHubShapes, repo: Repo, sha: str) -> dict:
    commit = shapes.state.git.commit(sha)
    base = shapes.repo_url(repo)
    return {
        "sha": sha, "node_id": node_id("Commit", sha), "url": f"{base}/git/commits/{sha}",
        "html_url": f"{shapes.api}/{repo.full_name}/commit/{sha}",
        "author": shapes.person(commit.author), "committer": shapes.person(commit.committer),
        "tree": {"sha": commit.tree, "url": f"{base}/git/trees/{commit.tree}"},
        "message": commit.message,
        "parents": [{"sha": p, "url": f"{base}/git/commits/{p}",
                     "html_url": f"{shapes.api}/{repo.full_name}/commit/{p}"} for p in commit.parents],
        "verification": {"verified": False, "reason": "unsigned", "signature": None,
                         "payload": None, "verified_at": None},
    }


def commit_json(shapes: GitHubShapes, repo: Repo, sha: str) -> dict:
    git = shapes.state.git
    commit = git.commit(sha)
    base = shapes.repo_url(repo)
    parent_tree = git.commit(commit.parents[0]).tree if commit.parents else None
    files = [shapes.pull_file(repo, change, sha) for change in git.diff(parent_tree, commit.tree)]
    inner = git_commit_json(shapes, repo, sha)
    by_email = {f"{u.id}+{u.login}@users.noreply.github.com": u.login for u in shapes.state.users.values()}
    by_email |= {u.email: u.login for u in shapes.state.users.values() if u.email}
    author = by_email.get(commit.author.email)
    return {
        "sha": sha, "node_id": inner["node_id"], "url": f"{base}/commits/{sha}",
        "html_url": inner["html_url"], "comments_url": f"{base}/commits/{sha}/comments",
        "commit": {k: inner[k] for k in ("author", "committer", "message", "tree", "verification")}
        | {"url": inner["url"], "comment_count": 0},
        "author": shapes.user(author) if author else None,
        "committer": shapes.user(author) if author else None,
        "parents": [{"sha": p, "url": f"{base}/commits/{p}",
                     "html_url": f"{shapes.api}/{repo.full_name}/commit/{p}"} for p in commit.parents],
        "stats": {"additions": sum(f["additions"] for f in files),
                  "deletions": sum(f["deletions"] for f in files),
                  "total": sum(f["changes"] for f in files)},
        "files": files,
    }


def ref_json(shapes: GitHubShapes, repo: Repo, branch: str) -> dict:
    sha = repo.branches[branch]
    base = shapes.repo_url(repo)
    return {"ref": f"refs/heads/{branch}", "node_id": node_id("Ref", f"{repo.id}:{branch}"),
            "url": f"{base}/git/refs/heads/{branch}",
            "object": {"sha": sha, "type": "commit", "url": f"{base}/git/commits/{sha}"}}


def branch_json(shapes: GitHubShapes, repo: Repo, branch: str) -> dict:
    base = shapes.repo_url(repo)
    return {"name": branch, "commit": commit_json(shapes, repo, repo.branches[branch]),
            "_links": {"self": f"{base}/branches/{branch}",
                       "html": f"{shapes.api}/{repo.full_name}/tree/{branch}"},
            "protected": False, "protection": {"enabled": False, "required_status_checks": {
                "enforcement_level": "off", "contexts": [], "checks": []}},
            "protection_url": f"{base}/branches/{branch}/protection"}


def content_json(shapes: GitHubShapes, repo: Repo, ref: str, commit: str, path: str,
                 entry: TreeEntry, with_content: bool) -> dict:
    base, is_file = shapes.repo_url(repo), entry.type == "blob"
    data = shapes.state.git.blob(entry.sha).data if is_file else b""
    urls = {"url": f"{base}/contents/{quote(path)}?ref={quote(ref)}",
            "git_url": f"{base}/git/{'blobs' if is_file else 'trees'}/{entry.sha}",
            "html_url": f"{shapes.api}/{repo.full_name}/{'blob' if is_file else 'tree'}/{ref}/{path}"}
    shape = {"type": "file" if is_file else "dir", "size": len(data), "name": path.rsplit("/", 1)[-1],
             "path": path, "sha": entry.sha} | urls
    shape["download_url"] = f"{shapes.api}/_raw/{repo.full_name}/{commit}/{path}" if is_file else None
    shape["_links"] = {"self": urls["url"], "git": urls["git_url"], "html": urls["html_url"]}
    if with_content:
        shape |= {"content": b64_lines(data), "encoding": "base64"}
    return shape


TREE_ENTRIES_LISTED = 100_000
"""GitHub: a recursive tree lists at most 100,000 entries (or 7 MB) and then says ``truncated: true``."""


def tree_json(shapes: GitHubShapes, repo: Repo, sha: str, recursive: bool) -> dict:
    base, git = shapes.repo_url(repo), shapes.state.git
    entries = []
    for path, entry in git.walk(sha, recursive):
        item = {"path": path, "mode": entry.mode, "type": entry.type, "sha": entry.sha}
        if entry.type == "blob":
            item["size"] = len(git.blob(entry.sha).data)
        item["url"] = f"{base}/git/{entry.type}s/{entry.sha}"
        entries.append(item)
    truncated = len(entries) > TREE_ENTRIES_LISTED
    return {"sha": sha, "url": f"{base}/git/trees/{sha}", "tree": entries[:TREE_ENTRIES_LISTED], "truncated": truncated}


def custom_ref(ref: str) -> str | None:
    """The full name of a ref outside heads/ and tags/ (refs/promotion-gate/ledger), or None."""
    ref = ref.removeprefix("refs/")
    if ref.startswith(("heads/", "tags/", "pull/")) or "/" not in ref:
        return None
    return f"refs/{ref}"


def custom_ref_json(shapes: GitHubShapes, repo: Repo, name: str) -> dict:
    sha, base = repo.refs[name], shapes.repo_url(repo)
    return {"ref": name, "node_id": node_id("Ref", f"{repo.id}:{name}"), "url": f"{base}/git/{name}",
            "object": {"sha": sha, "type": "commit", "url": f"{base}/git/commits/{sha}"}}


def branch_name(ref: str) -> str:
    if not ref.startswith("heads/"):
        raise not_found()
    return ref.removeprefix("heads/")


@route("GET", "/repos/{owner}/{repo}")
def get_repo(call: Call) -> Reply:
    return Reply(200, call.shapes.repo(call.repo()))


@route("GET", "/repos/{owner}/{repo}/branches")
def list_branches(call: Call) -> Reply:
    repo = call.repo()
    return call.page(sorted(repo.branches), lambda b: {
        "name": b, "commit": {"sha": repo.branches[b],
                              "url": f"{call.shapes.repo_url(repo)}/commits/{repo.branches[b]}"},
        "protected": False})


@route("GET", "/repos/{owner}/{repo}/branches/{branch:path}")
def get_branch(call: Call) -> Reply:
    repo, branch = call.repo(), call.params["branch"]
    if branch not in repo.branches:
        raise ApiError(404, "Branch not found")
    return Reply(200, branch_json(call.shapes, repo, branch))


@route("GET", "/repos/{owner}/{repo}/git/ref/{ref:path}")
def get_ref(call: Call) -> Reply:
    if (name := custom_ref(call.params["ref"])) is not None:
        return _get_custom_ref(call, name)
    repo, branch = call.repo(), branch_name(call.params["ref"])
    if branch not in repo.branches:
        raise not_found()
    return Reply(200, ref_json(call.shapes, repo, branch))


@route("GET", "/repos/{owner}/{repo}/git/refs/{ref:path}")
def get_refs(call: Call) -> Reply:
    """The exact ref as an object; otherwise the refs under that prefix, as GitHub answers."""
    if (name := custom_ref(call.params["ref"])) is not None:
        return _get_custom_ref(call, name)
    repo, branch = call.repo(), branch_name(call.params["ref"])
    if branch in repo.branches:
        return Reply(200, ref_json(call.shapes, repo, branch))
    found = _refs_under(call, repo, branch)
    if not found:
        raise not_found()
    return Reply(200, found)


@route("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref:path}")
def list_matching_refs(call: Call) -> Reply:
    repo = call.repo()
    return Reply(200, _refs_under(call, repo, branch_name(call.params["ref"])))


def _get_custom_ref(call: Call, name: str) -> Reply:
    repo = call.repo()
    if name not in repo.refs:
        raise not_found()
    return Reply(200, custom_ref_json(call.shapes, repo, name))


def _refs_under(call: Call, repo: Repo, prefix: str) -> list[dict]:
    return [ref_json(call.shapes, repo, b) for b in sorted(repo.branches) if b.startswith(prefix)]


@route("POST", "/repos/{owner}/{repo}/git/refs")
def create_ref(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("ref", "sha")
    ref, sha = body["ref"], body["sha"]
    if (name := custom_ref(ref)) is not None and ref.startswith("refs/"):
        if name in repo.refs:
            raise ApiError(422, "Reference already exists")
        _require_commit(call.state, sha)
        call.state.set_ref(repo, name, sha)
        return Reply(201, custom_ref_json(call.shapes, repo, name))
    if not ref.startswith("refs/heads/") or ref == "refs/heads/":
        raise ApiError(422, "Reference name must start with 'refs/heads/' in this fake")
    branch = ref.removeprefix("refs/heads/")
    if branch in repo.branches:
        raise ApiError(422, "Reference already exists")
    _require_commit(call.state, sha)
    call.state.set_branch(repo, branch, sha)
    return Reply(201, ref_json(call.shapes, repo, branch))


@route("PATCH", "/repos/{owner}/{repo}/git/refs/{ref:path}")
def update_ref(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("sha")
    if (name := custom_ref(call.params["ref"])) is not None:
        if name not in repo.refs:
            raise ApiError(422, "Reference does not exist")
        _require_commit(call.state, body["sha"])
        call.state.set_ref(repo, name, body["sha"], force=bool(body.get("force")))
        return Reply(200, custom_ref_json(call.shapes, repo, name))
    branch = branch_name(call.params["ref"])
    if branch not in repo.branches:
        raise ApiError(422, "Reference does not exist")
    _require_commit(call.state, body["sha"])
    call.state.set_branch(repo, branch, body["sha"], force=bool(body.get("force")))
    return Reply(200, ref_json(call.shapes, repo, branch))


@route("DELETE", "/repos/{owner}/{repo}/git/refs/{ref:path}")
def delete_ref(call: Call) -> Reply:
    if (name := custom_ref(call.params["ref"])) is not None:
        if call.repo().refs.pop(name, None) is None:
            raise ApiError(422, "Reference does not exist")
        return Reply(204, None)
    repo, branch = call.repo(), branch_name(call.params["ref"])
    if repo.branches.pop(branch, None) is None:
        raise ApiError(422, "Reference does not exist")
    for issue in repo.issues.values():  # as GitHub does: an open PR whose head branch is deleted is closed
        if issue.pull is not None and issue.state == "open" and issue.pull.head_ref == branch \
                and issue.pull.head_repo == repo.full_name:
            issue.state = "closed"
    return Reply(204, None)


def _require_commit(state: GitHubState, sha: str) -> None:
    if not state.git.has(sha) or state.git.kind(sha) != "commit":
        raise ApiError(422, "Object does not exist")


@route("POST", "/repos/{owner}/{repo}/git/blobs")
def create_blob(call: Call) -> Reply:
    repo, body = call.repo(), call.fields("content")
    if body.get("encoding", "utf-8") == "base64":
        try:
            data = base64.b64decode(body["content"])
        except binascii.Error:
            raise ApiError(422, "Invalid base64 content") from None
    else:
        data = body["content"].encode()
    sha = call.state.git.put_blob(data)
    return Reply(201, {"url": f"{call.shapes.repo_url(repo)}/git/blobs/{sha}", "sha": sha})


@route("GET", "/repos/{owner}/{repo}/git/blobs/{sha}")
def get_blob(call: Call) -> Reply:
    repo, sha = call.repo(), call.params["sha"]
    data = call.state.git_object("blob", sha).data
    return Reply(200, {"sha": sha, "node_id": node_id("Blob", sha), "size": len(data),
                       "url": f"{call.shapes.repo_url(repo)}/git/blobs/{sha}",
                       "content": b64_lines(data), "encoding": "base64"})


@route("POST", "/repos/{owner}/{repo}/git/trees")
def create_tree(call: Call) -> Reply:
    repo, body, git = call.repo(), call.fields("tree"), call.state.git
    files = {}
    if body.get("base_tree"):
        call.state.git_object("tree", body["base_tree"])
        files = git.flatten(body["base_tree"])
    for item in body["tree"]:
        path = item["path"].strip("/")
        if "content" in item:
            files[path] = (item.get("mode", FILE_MODE), git.put_blob(item["content"].encode()))
        elif item.get("sha") is None:
            files = {p: v for p, v in files.items() if p != path and not p.startswith(f"{path}/")}
        elif item.get("type") == "tree":
            if not git.has(item["sha"]) or git.kind(item["sha"]) != "tree":
                raise ApiError(422, f"tree.sha {item['sha']} is not a valid tree")
            files |= {f"{path}/{p}": v for p, v in git.flatten(item["sha"]).items()}
        elif not git.has(item["sha"]):
            raise ApiError(422, f"tree.sha {item['sha']} is not a valid blob")
        else:
            files[path] = (item.get("mode", FILE_MODE), item["sha"])
    return Reply(201, tree_json(call.shapes, repo, git.build_tree(files), recursive=False))


@route("GET", "/repos/{owner}/{repo}/git/trees/{sha:path}")
def get_tree(call: Call) -> Reply:
    repo, git, ish = call.repo(), call.state.git, call.params["sha"]
    if git.has(ish) and git.kind(ish) == "tree":
        sha = ish
    else:
        sha = git.commit(call.state.resolve(repo, ish)).tree
    recursive = call.query.get("recursive") not in (None, "", "0", "false")
    return Reply(200, tree_json(call.shapes, repo, sha, recursive))


@route("POST", "/repos/{owner}/{repo}/git/commits")
def create_commit(call: Call) -> Reply:
    repo, body, git = call.repo(), call.fields("message", "tree"), call.state.git
    if not git.has(body["tree"]) or git.kind(body["tree"]) != "tree":
        raise ApiError(422, "Tree SHA does not exist")
    parents = tuple(body.get("parents") or ())
    for parent in parents:
        if not git.has(parent) or git.kind(parent) != "commit":
            raise ApiError(422, "Parent SHA does not exist or is not a commit object")
    author = author_of(call, body.get("author"))
    committer = author_of(call, body.get("committer") or body.get("author"))
    sha = git.put_commit(Commit(body["tree"], parents, author, committer, body["message"]))
    return Reply(201, git_commit_json(call.shapes, repo, sha))


@route("GET", "/repos/{owner}/{repo}/git/commits/{sha}")
def get_git_commit(call: Call) -> Reply:
    repo, sha = call.repo(), call.params["sha"]
    call.state.git_object("commit", sha)
    return Reply(200, git_commit_json(call.shapes, repo, sha))


@route("GET", "/repos/{owner}/{repo}/commits")
def list_commits(call: Call) -> Reply:
    repo, git = call.repo(), call.state.git
    shas = list(reversed(git.log(call.state.resolve(repo, call.query.get("sha")), None)))
    if path := call.query.get("path"):
        shas = [s for s in shas if _touches(git, s, path)]
    return call.page(shas, lambda sha: commit_json(call.shapes, repo, sha))


def _touches(git, sha: str, path: str) -> bool:
    commit = git.commit(sha)
    parent_tree = git.commit(commit.parents[0]).tree if commit.parents else None
    return any(c.path == path or c.path.startswith(f"{path}/") for c in git.diff(parent_tree, commit.tree))


@route("GET", "/repos/{owner}/{repo}/commits/{ref:path}")
def get_commit(call: Call) -> Reply:
    repo = call.repo()
    sha = call.state.resolve(repo, call.params["ref"])
    return Reply(200, commit_json(call.shapes, repo, sha))


@route("GET", "/repos/{owner}/{repo}/contents/{path:path}")
def get_contents(call: Call) -> Reply:
    repo, path = call.repo(), call.params.get("path", "").strip("/")
    ref = call.query.get("ref") or repo.default_branch
    commit = call.state.resolve(repo, ref)
    entry = call.state.git.lookup(call.state.git.commit(commit).tree, path)
    if entry is None:
        raise not_found()
    if entry.mode == SYMLINK_MODE:  # GitHub answers with the target file when the link points at one
        target = posixpath.normpath(posixpath.join(posixpath.dirname(path), call.state.git.blob(entry.sha).data.decode()))
        resolved = call.state.git.lookup(call.state.git.commit(commit).tree, target)
        if resolved is not None and resolved.type == "blob" and resolved.mode != SYMLINK_MODE:
            return Reply(200, content_json(call.shapes, repo, ref, commit, target, resolved, True))
        shape = content_json(call.shapes, repo, ref, commit, path, entry, False)
        return Reply(200, shape | {"type": "symlink", "target": call.state.git.blob(entry.sha).data.decode()})
    if entry.type == "blob":
        return Reply(200, content_json(call.shapes, repo, ref, commit, path, entry, True))
    listing = call.state.git.walk(entry.sha, recursive=False, prefix=f"{path}/" if path else "")
    return Reply(200, [content_json(call.shapes, repo, ref, commit, p, e, False) for p, e in listing])


@route("PUT", "/repos/{owner}/{repo}/contents/{path:path}")
def put_contents(call: Call) -> Reply:
    repo, body, path = call.repo(), call.fields("message", "content"), call.params["path"].strip("/")
    existing = _file_on_branch(call, repo, path, body)
    try:
        data = base64.b64decode(body["content"], validate=True)
    except binascii.Error:
        raise ApiError(422, "content is not valid Base64") from None
    author = author_of(call, body.get("author") or body.get("committer"))
    branch = body.get("branch") or repo.default_branch
    sha = call.state.commit_files(repo, branch, {path: data}, body["message"], author)
    entry = call.state.git.lookup(call.state.git.commit(sha).tree, path)
    content = content_json(call.shapes, repo, branch, sha, path, entry, with_content=False)
    return Reply(200 if existing else 201,
                 {"content": content, "commit": git_commit_json(call.shapes, repo, sha)})


@route("DELETE", "/repos/{owner}/{repo}/contents/{path:path}")
def delete_contents(call: Call) -> Reply:
    repo, body, path = call.repo(), call.fields("message", "sha"), call.params["path"].strip("/")
    if _file_on_branch(call, repo, path, body) is None:
        raise not_found()
    author = author_of(call, body.get("author") or body.get("committer"))
    branch = body.get("branch") or repo.default_branch
    sha = call.state.commit_files(repo, branch, {path: None}, body["message"], author)
    return Reply(200, {"content": None, "commit": git_commit_json(call.shapes, repo, sha)})


def _file_on_branch(call: Call, repo: Repo, path: str, body: dict) -> TreeEntry | None:
    """The file being replaced; 422 when its sha is not given, 409 when it does not match."""
    branch = body.get("branch") or repo.default_branch
    if branch not in repo.branches:
        if branch == repo.default_branch and not repo.branches:
            return None
        raise ApiError(404, f"Branch {branch} not found")
    entry = call.state.git.lookup(call.state.git.commit(repo.branches[branch]).tree, path)
    if entry is not None and not body.get("sha"):
        raise ApiError(422, "Invalid request.\n\n\"sha\" wasn't supplied.")
    if entry is not None and body["sha"] != entry.sha:
        raise ApiError(409, f"{path} does not match {body['sha']}")
    return entry


@route("GET", "/_raw/{owner}/{repo}/{sha}/{path:path}")
def get_raw(call: Call) -> Reply:
    repo = call.state.repo(f"{call.params['owner']}/{call.params['repo']}")
    commit = call.state.git_object("commit", call.state.resolve(repo, call.params["sha"]))
    entry = call.state.git.lookup(commit.tree, call.params["path"])
    if entry is None or entry.type != "blob":
        raise not_found()
    return Reply(200, call.state.git.blob(entry.sha).data, {"Content-Type": "text/plain; charset=utf-8"})


get_root_contents = Route("GET", "/repos/{owner}/{repo}/contents", get_contents.handler)

ROUTES = [
    get_repo, list_branches, get_branch, get_ref, get_refs, list_matching_refs, create_ref,
    update_ref, delete_ref, create_blob, get_blob, create_tree, get_tree, create_commit,
    get_git_commit, list_commits, get_commit, get_contents, get_root_contents, put_contents, delete_contents, get_raw,
]
