"""What production runs, read from GitHub: each repository's production branch, and the App's installations."""

from __future__ import annotations

from promotion_gate.checklists.recertify import ProductionSystem
from promotion_gate.forge.candidate_reader import SourceError
from promotion_gate.forge.production_reader import build_system, lock_approvers, system_of


def read_github_systems(settings, repositories: list[str], store: str | None = None) -> list[ProductionSystem]:
    """Every lock file on each repository's production branch (the setting, else the default branch)."""
    from promotion_gate.github_api.client import open_github, retrying_from
    from promotion_gate.github_api.source import AtRef

    call = retrying_from(settings)
    systems = []
    for full_name in repositories:
        repo = open_github(settings, full_name).get_repo(full_name)
        branch = settings.production_branch or repo.default_branch
        head = call(f"read branch {branch}", repo.get_branch, branch).commit.sha
        tree = call(f"list the tree of {branch}", repo.get_git_tree, head, recursive=True)
        if tree.raw_data.get("truncated"):
            raise SourceError(f"{full_name}: GitHub lists only part of the tree of {branch} (truncated): "
                              "the inventory would miss systems")
        at_head = AtRef(repo, head, call)
        for name in sorted(e.path for e in tree.tree if e.type == "blob" and system_of(e.path)):
            try:
                lock_bytes = at_head.read(name, regular=True)  # a link's target could change unguarded
            except SourceError as exc:
                systems.append(ProductionSystem(repository=full_name, system=system_of(name), problems=[str(exc)]))
                continue
            systems.append(build_system(full_name, system_of(name), lock_bytes,
                                        lambda commit, p, repo=repo: AtRef(repo, commit, call).read(p), lock_approvers(lock_bytes, store)))
    return systems


def installed_repositories(settings) -> tuple[list[str], list[str]]:
    """Every repository the GitHub App is installed on (GET /app/installations, then GET
    /installation/repositories with each installation's token; only the configured installation
    when ``github_installation_id`` is set), and notes on installations that were left out."""
    from github import Auth, GithubIntegration
    from promotion_gate.config.secrets import require_secret
    from promotion_gate.config.settings import SettingsError
    from promotion_gate.github_api.client import retrying_from

    if settings.github_app_id is None:
        raise SettingsError("--github without OWNER/REPO lists the GitHub App's installations: set "
                            "PROMOTION_GATE_GITHUB_APP_ID and its private key, or name the repositories")
    app = Auth.AppAuth(settings.github_app_id, require_secret(settings, "github_app_private_key").get_secret_value())
    integration = GithubIntegration(base_url=settings.github_api_url, auth=app, retry=None,
                                    timeout=settings.github_timeout_seconds)
    call = retrying_from(settings)
    if settings.github_installation_id:
        installations = [call("read the App installation", integration.get_app_installation, settings.github_installation_id)]
    else:
        installations = call("list the App's installations", lambda: list(integration.get_installations()))
    names, notes = {}, []
    for inst in installations:
        if inst.suspended_at is not None:
            notes.append(f"installation {inst.id} is suspended: its repositories are not in the inventory")
            continue
        for name in call(f"list the repositories of installation {inst.id}", lambda i=inst: [r.full_name for r in i.get_repos()]):
            names.setdefault(name.lower(), name)
    return sorted(names.values(), key=str.lower), notes
