"""The command each flow run starts with (prefect_api/engine_command.py, prefect.yaml's build step).

Rows for what an operator would get wrong: a worker started without an activated environment (no
right `python` on its PATH), an interpreter path with a space, a machine without `nice`, a
deployment added to prefect.yaml without the command (it would quietly go back to two processes
per run), or a gate run niced like the background runs (a team's decision slowed by the fan-out)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
import yaml

from promotion_gate.prefect_api.engine_command import NICENESS, engine_commands

ROOT = Path(__file__).resolve().parent.parent


def test_the_gate_runs_the_engine_with_the_deploying_interpreter_at_normal_priority():
    commands = engine_commands(nice="/usr/bin/nice")
    assert shlex.split(commands["gate"]) == [sys.executable, "-m", "prefect.engine"]
    assert shlex.split(commands["background"]) == ["/usr/bin/nice", "-n", str(NICENESS), sys.executable, "-m", "prefect.engine"]


@pytest.mark.parametrize("python", ["/opt/my envs/bin/python", "/srv/gate;rm -rf ~/bin/python", "/venv/bin/python3.11"])
def test_an_interpreter_path_survives_the_split_the_worker_makes(python):
    commands = engine_commands(python=python, nice="/bin/nice")
    assert shlex.split(commands["gate"])[0] == python  # one argument, nothing interpreted by a shell
    assert shlex.split(commands["background"])[3] == python


def test_without_nice_the_background_runs_start_like_the_gate_runs():
    commands = engine_commands(python="/venv/bin/python", nice="")
    assert commands["background"] == commands["gate"] == "/venv/bin/python -m prefect.engine"


def test_an_empty_interpreter_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(sys, "executable", "")
    with pytest.raises(RuntimeError, match="no Python interpreter"):
        engine_commands()


def test_gate_and_request_runs_start_the_engine_directly_and_the_sweeper_keeps_the_workers_own_start():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    [step] = config["build"]
    [(fqn, inputs)] = step.items()
    assert fqn == f"{engine_commands.__module__}.{engine_commands.__name__}" and inputs["id"] == "engine"
    commands = {d["name"]: d["work_pool"]["job_variables"].get("command") for d in config["deployments"]}
    assert commands.pop("promotion-gate") == "{{ engine.gate }}"
    assert commands.pop("promotion-request") == "{{ engine.background }}"
    # the safety net for crashed runs does not depend on the interpreter path resolved at deploy time
    assert commands == {"promotion-gate-sweeper": None, "recertify": None}, commands
