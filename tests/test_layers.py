"""The three layers, imports one way: shell (flows/, gateway/) -> notifications/ -> checklists/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "checklists": {"prefect", "github", "slack_sdk", "httpx", "requests", "urllib3", "aiohttp", "socket",
                   "subprocess", "starlette", "uvicorn", "jinja2", "notifications", "flows", "gateway", "os", "time"},
    "notifications": {"prefect", "github", "httpx", "requests", "urllib3", "aiohttp", "socket", "subprocess",
                      "starlette", "uvicorn", "flows", "gateway", "os", "time"},
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
    code = "import sys; from promotion_gate.flows.cli import build_parser, cmd_check; import promotion_gate.checklists.checklist, promotion_gate.flows.candidate_reader, promotion_gate.flows.policy_source, promotion_gate.notifications.terminal; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
