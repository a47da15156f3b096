"""The three layers, imports one way: the shell -> notifications/ -> checklists/; and the shell's
rooms, each holding what talks to one thing (GitHub, Slack, the Prefect server, git, the terminal)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHELL = ("flows", "gateway", "cli", "config", "forge", "github_api", "slack_api", "audit_store", "local_repo", "prefect_api")
FORBIDDEN = {
    "checklists": {"prefect", "github", "slack_sdk", "httpx", "requests", "urllib3", "aiohttp", "socket",
                   "subprocess", "starlette", "uvicorn", "jinja2", "notifications", "os", "time", "retrying", *SHELL},
    "notifications": {"prefect", "github", "httpx", "requests", "urllib3", "aiohttp", "socket", "subprocess",
                      "starlette", "uvicorn", "os", "time", "retrying", *SHELL},
}
# Who may import the SDK of what the gate talks to: the room named for it, and nobody else.
TALKS_TO = {
    "github": {"github_api"},  # PyGithub
    "slack_sdk.web": {"slack_api"},
    "slack_sdk.http_retry": {"slack_api"},
    "subprocess": {"local_repo", "cli"},  # git, and the demo's `git init` of its example repository
    "starlette": {"gateway"},
    "uvicorn": {"gateway", "cli"},  # `promotion-gate serve`
}
ALLOWED_SLACK = {"slack_sdk.models", "slack_sdk.signature", "slack_sdk.models.blocks"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "getenv"}


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno))
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_inward(layer: str) -> None:
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for module, line in _imports(path):
            parts = module.split(".")
            top = parts[1] if parts[0] == "promotion_gate" and len(parts) > 1 else parts[0]
            if module in ALLOWED_SLACK or any(module.startswith(a + ".") for a in ALLOWED_SLACK):
                continue
            if top in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == []


def test_core_reads_no_clock_or_environment() -> None:
    bad = []
    for path in sorted((ROOT / "checklists").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOCK_CALLS:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} calls .{node.func.attr}()")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} opens a file")
    assert bad == []


def test_no_module_shadows_a_dependency() -> None:
    names = {p.name for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    assert not names & {"github.py", "yaml.py", "slack_sdk.py", "prefect.py", "utils.py", "helpers.py"}


def test_check_command_does_not_import_prefect() -> None:
    code = "import sys; from promotion_gate.cli.main import build_parser, cmd_check; import promotion_gate.checklists.checklist, promotion_gate.forge.candidate_reader, promotion_gate.config.policy_source, promotion_gate.notifications.terminal; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _shell_modules():
    for room in SHELL:
        for path in sorted((ROOT / room).rglob("*.py")):
            yield room, path


@pytest.mark.parametrize("sdk", sorted(TALKS_TO))
def test_each_sdk_is_imported_only_by_its_room(sdk: str) -> None:
    bad = [f"{path.relative_to(ROOT)}:{line} imports {module}"
           for room, path in _shell_modules() for module, line in _imports(path)
           if (module == sdk or module.startswith(sdk + ".")) and room not in TALKS_TO[sdk]]
    assert bad == []


def test_flows_holds_the_flows_and_their_seams() -> None:
    """Every module in flows/ defines a flow or a task, or is a seam a flow calls through."""
    seams = {"__init__.py", "signoff_channels.py", "withdrawn_runs.py", "recert_actions.py", "deployment_rule.py",
             "lock_guard_flow.py"}
    bare = [p.name for p in sorted((ROOT / "flows").glob("*.py"))
            if p.name not in seams and "@flow" not in p.read_text() and "@task" not in p.read_text()]
    assert bare == []


def test_both_forges_implement_the_forge_protocol() -> None:
    import inspect

    from promotion_gate.forge.protocol import Forge
    from promotion_gate.github_api.forge import GitHubForge
    from promotion_gate.local_repo.forge import LocalForge

    wanted = {name: inspect.signature(fn) for name, fn in vars(Forge).items() if inspect.isfunction(fn) and not name.startswith("_")}
    for cls in (LocalForge, GitHubForge):
        assert hasattr(cls, "has_statuses")
        for name, signature in wanted.items():
            mine = inspect.signature(getattr(cls, name))
            assert list(mine.parameters) == list(signature.parameters), f"{cls.__name__}.{name}{mine} != Forge.{name}{signature}"


def test_an_items_ensure_title_has_one_source_the_policy() -> None:
    """A check function names its item's id; the "Ensure ..." title lives only in the policy."""
    import re

    from promotion_gate.config.policy_source import load_policy

    items = {item.id for item in load_policy(None).items}
    restated, named = [], set()
    for path in sorted((ROOT / "checklists").rglob("*.py")):
        text = path.read_text()
        restated += [f"{path.relative_to(ROOT)}: {m}" for m in re.findall(r'"""(PG-[A-Z]+-\d{3}): Ensure ', text)]
        named |= set(re.findall(r'"""(PG-[A-Z]+-\d{3}) \(its title', text))
    assert restated == []
    assert named and named <= items, f"check functions for ids the policy lacks: {sorted(named - items)}"
