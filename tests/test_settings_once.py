"""Settings are read once per run and passed down, never changed at run time (STYLE 16).

An AST walk over flows/ and gateway/ fails on any write to the environment; a gate run, under
Prefect's test harness, builds its Settings exactly once; no secret setting is a flow parameter."""

from __future__ import annotations

import ast
import inspect
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from promotion_gate.checklists.decision import PromotionRequest, Verdict
from promotion_gate.config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WRITERS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def environment_writes(source: str) -> list[int]:
    """Lines that write the process environment: os.environ[...] = / del / |=, its mutating
    methods, os.putenv / os.unsetenv, through any alias of os or of os.environ."""
    tree = ast.parse(source)
    os_names, environ_names = {"os"}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            environ_names |= {a.asname or a.name for a in node.names if a.name == "environ"}
            if any(a.name in ("putenv", "unsetenv") for a in node.names):
                environ_names.add("<putenv imported>")

    def is_environ(node: ast.AST) -> bool:
        return ((isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)
                 and node.value.id in os_names) or (isinstance(node, ast.Name) and node.id in environ_names))

    bad = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if is_environ(target) or (isinstance(target, ast.Subscript) and is_environ(target.value)):
                bad.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr in WRITERS and is_environ(func.value):
                bad.append(node.lineno)
            if func.attr in ("putenv", "unsetenv") and isinstance(func.value, ast.Name) and func.value.id in os_names:
                bad.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("putenv", "unsetenv") \
                and "<putenv imported>" in environ_names:
            bad.append(node.lineno)
    return bad


@pytest.mark.parametrize("source, writes", [
    ('import os\nos.environ["PROMOTION_GATE_POLICY_PATH"] = "p"', [2]),
    ('import os\nos.environ.setdefault("DO_NOT_TRACK", "1")', [2]),
    ('import os\nos.environ.update({"A": "1"})', [2]),
    ('import os\nos.environ |= {"A": "1"}', [2]),
    ('import os\ndel os.environ["A"]', [2]),
    ('import os\nos.environ.pop("A", None)', [2]),
    ('import os\nos.putenv("A", "1")', [2]),
    ('import os as o\no.environ["A"] = "1"', [2]),  # an alias of os
    ('from os import environ as env\nenv["A"] = "1"', [2]),  # an alias of os.environ
    ('from os import environ\nenviron.setdefault("A", "1")', [2]),
    ('from os import putenv\nputenv("A", "1")', [2]),
    ('import os\nos.environ = {}', [2]),
    ('import os\nx = os.environ.get("A")', []),  # reading is not writing
    ('import os\nenv = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}\nenv["B"] = "1"', []),  # a child's copy
    ('import os\nx = "A" in os.environ', []),
])
def test_the_walk_finds_each_way_of_writing_the_environment(source, writes):
    assert environment_writes(source) == writes


def test_nothing_in_the_shell_writes_the_environment():
    found = []
    from tests.test_layers import SHELL

    for folder in (*SHELL, "promotion_gate"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += [f"{path.relative_to(ROOT)}:{line}" for line in environment_writes(path.read_text())]
    assert found == []


SECRET_FIELDS = {name for name, field in Settings.model_fields.items() if field.annotation in (SecretStr, SecretStr | None)}


def test_no_secret_setting_is_a_flow_parameter():
    from promotion_gate.flows.dispatch import promotion_request
    from promotion_gate.flows.expiry import sweep_signoffs
    from promotion_gate.flows.promotion import promotion_gate
    from promotion_gate.flows.recertify import recertify_production

    assert SECRET_FIELDS >= {"github_token", "slack_bot_token", "signing_key", "github_webhook_secret"}
    for flow in (promotion_gate, promotion_request, recertify_production, sweep_signoffs):
        parameters = inspect.signature(flow.fn).parameters
        assert not set(parameters) & SECRET_FIELDS, flow.name
        assert not [p for p in parameters.values() if "Settings" in str(p.annotation) or "Secret" in str(p.annotation)], flow.name


@pytest.fixture
def settings_built(monkeypatch):
    """How many Settings objects were built (each reads the environment once)."""
    built = []
    original = Settings.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Settings, "__init__", counting)
    return built


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("system, approvals, verdict", [
    ("helpdesk-summarizer", None, Verdict.promoted),  # promoted: a branch, a lock, a report, a ledger entry
    ("loan-prescreener", None, Verdict.blocked),
    ("support-assistant", ["sam", "rene"], Verdict.promoted),  # through the sign-off channel
])
def test_a_gate_run_reads_its_settings_once(example_repo, tmp_path, settings_built, system, approvals, verdict):
    from promotion_gate.flows.promotion import promotion_gate

    repo, commit = example_repo
    request = PromotionRequest(repository=str(repo), system=system, commit=commit, requester="dana-dev",
                               requested_at=datetime.now(timezone.utc))
    decision = promotion_gate(request, approvals=approvals, store=str(tmp_path / "store"))
    assert decision.verdict == verdict
    assert len(settings_built) == 1


@pytest.mark.usefixtures("prefect_harness")
def test_a_local_run_gives_its_branch_and_policy_to_the_flow_not_to_the_environment(example_repo, tmp_path, settings_built):
    import os

    from promotion_gate.cli.local_run import run_local

    repo, commit = example_repo
    policy = next((ROOT / "checklists" / "policy").glob("*.yaml"))
    before = dict(os.environ)
    code = run_local(str(repo), "helpdesk-summarizer", commit, requester="dana-dev", approvals=[],
                     store=str(tmp_path / "store"), production_branch="main", policy=str(policy))
    assert code == 0 and dict(os.environ) == before
    assert len(settings_built) == 1  # the run's (the command reads them only to find a store it was not given)
