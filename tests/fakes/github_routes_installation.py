"""GET /installation/repositories: the repositories an installation token can reach, as GitHub
answers it (``{"total_count", "repository_selection", "repositories": [...]}``, paged with Link).
Only an installation token may call it; a personal token gets 403 as on GitHub."""

from __future__ import annotations

from .github_calls import Call, Reply, route
from .github_records import ApiError


@route("GET", "/installation/repositories")
def list_installation_repositories(call: Call) -> Reply:
    if call.actor is None or call.actor.installation_id is None:
        raise ApiError(403, "You must authenticate with an installation access token in order to list repositories for an installation.")
    installation = call.state.installations[call.actor.installation_id]
    names = {r.lower() for r in installation.repositories or []}
    repos = sorted((r for r in call.state.repos.values() if r.owner.lower() == installation.account.lower()
                    and (installation.repositories is None or r.full_name.lower() in names)), key=lambda r: r.full_name.lower())
    page = call.page(repos, call.shapes.repo)
    selection = "all" if installation.repositories is None else "selected"
    return Reply(200, {"total_count": len(repos), "repository_selection": selection, "repositories": page.data}, page.headers)


ROUTES = [list_installation_repositories]
