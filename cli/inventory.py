"""`promotion-gate inventory` and `promotion-gate policy diff`: read production, judge it, print.

No Prefect import: both are read-only and fast. Exit codes: 0 printed (inventory), or no system
gains a finding (diff); 1 the policy change puts a production system out of policy or gives it
a finding; 2 unusable input (a policy that does not load, a repository that cannot be read).
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timezone

from promotion_gate.checklists.inventory import build_inventory
from promotion_gate.checklists.policy import PolicyError
from promotion_gate.checklists.policy_diff import diff_policies
from promotion_gate.notifications.inventory_render import render_inventory_csv, render_inventory_json, render_inventory_table
from promotion_gate.notifications.policy_diff_text import render_diff_text

RENDERERS = {"table": render_inventory_table, "json": render_inventory_json, "csv": render_inventory_csv}


def today() -> date:
    return datetime.now(timezone.utc).date()


def read_systems(path: str | None, github: list[str] | None, production_branch: str | None, store: str | None = None,
                 keys: list[str] | None = None):
    """What production runs, each lock judged as the lock guard judges one (forge/production_reader.py
    ``verify_locks``) against ``store`` (else the configured audit store) and ``keys`` (else the
    trusted-keys setting, else the gate's own key): a lock merged past the guard is out of policy."""
    from promotion_gate.audit_store.lookup import read_trusted
    from promotion_gate.audit_store.signing_keys import lock_reading_keys
    from promotion_gate.config.settings import load_settings
    from promotion_gate.forge.production_reader import verify_locks
    from promotion_gate.github_api.inventory import installed_repositories, read_github_systems
    from promotion_gate.local_repo.inventory import read_local_systems

    settings = load_settings()
    store = store or settings.audit_store
    if github is not None:  # --github with no OWNER/REPO: every repository the App is installed on
        if production_branch:
            settings = settings.model_copy(update={"production_branch": production_branch})
        if not github:
            github, notes = installed_repositories(settings)
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
        systems, on_github = read_github_systems(settings, github, store=store), set(github)
    elif not path:
        raise ValueError("give a repository PATH or --github OWNER/REPO ...")
    else:
        systems, on_github = read_local_systems(path, production_branch or settings.production_branch or "main", store=store), set()
    if not any(s.lock is not None for s in systems):
        return systems
    trusted, said = lock_reading_keys(store, keys or (), settings=settings)
    print(f"note: {said}", file=sys.stderr)
    return verify_locks(systems, read_trusted(store, trusted), on_github)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_inventory(path: str | None, *, github: list[str] | None, fmt: str, policy: str | None,
                  production_branch: str | None, store: str | None, keys: list[str] | None = None) -> int:
    from promotion_gate.audit_store.signing_keys import SigningKeyError
    from promotion_gate.config.policy_source import load_policy, policy_origin
    from promotion_gate.config.settings import SettingsError, load_settings

    try:
        policy_path, origin = policy_origin(policy, load_settings().policy_path)
        loaded = load_policy(policy_path)
        print(f"policy: {origin}, version {loaded.version}", file=sys.stderr)
        systems = read_systems(path, github, production_branch, store, keys)
    except (PolicyError, SettingsError, SigningKeyError, ValueError, OSError) as exc:
        return _fail(str(exc))
    except Exception as exc:  # git or GitHub failures: one line, never a traceback
        return _fail(f"could not read production: {type(exc).__name__}: {exc}")
    try:
        text = RENDERERS[fmt](build_inventory(systems, loaded, today()))
    except Exception as exc:  # a fact no lock bound caught: one line, never a traceback
        return _fail(f"could not build the inventory: {type(exc).__name__}: {exc}")
    sys.stdout.write(text)
    return 0


def run_policy_diff(old: str, new: str, *, inventory: str | None, github: list[str] | None,
                    production_branch: str | None, fmt: str, store: str | None = None, keys: list[str] | None = None) -> int:
    from promotion_gate.audit_store.signing_keys import SigningKeyError
    from promotion_gate.config.policy_source import load_policy
    from promotion_gate.config.settings import SettingsError

    try:
        before, after = load_policy(old), load_policy(new)
    except PolicyError as exc:
        return _fail(f"policy: {exc}")
    except OSError as exc:
        return _fail(f"policy: {exc}")
    try:
        systems = read_systems(inventory, github, production_branch, store, keys) if (inventory or github is not None) else []
    except (SettingsError, SigningKeyError, ValueError, OSError) as exc:
        return _fail(str(exc))
    except Exception as exc:
        return _fail(f"could not read production: {type(exc).__name__}: {exc}")
    diff = diff_policies(before, after, systems, today())
    print(json.dumps(diff.model_dump(mode="json"), indent=2, sort_keys=True) if fmt == "json" else render_diff_text(diff))
    return 1 if diff.worsened else 0
