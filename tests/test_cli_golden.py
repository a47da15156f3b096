"""Golden outputs of the CLI: the help of every subcommand and the JSON error shape. A change in
what a user reads shows up here as a diff; regenerate with UPDATE_GOLDEN=1 after reviewing it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden_cli"
CASES = {
    "help": ["--help"],
    "check-help": ["check", "--help"],
    "run-help": ["run", "--help"],
    "audit-verify-help": ["audit", "verify", "--help"],
    "inventory-help": ["inventory", "--help"],
    "policy-show-help": ["policy", "show", "--help"],
    "check-error-json": ["check", "/nonexistent", "--system", "x", "--format", "json"],
}


def run_cli(args: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOTION_GATE_")} | {"COLUMNS": "100"}
    out = subprocess.run([sys.executable, "-m", "promotion_gate.cli", *args], cwd=ROOT, capture_output=True,
                         text=True, env=env, timeout=120)
    return f"exit {out.returncode}\n--- stdout\n{out.stdout}--- stderr\n{out.stderr}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_output_matches_its_golden(name):
    got = run_cli(CASES[name]).replace("python -m promotion_gate.cli", "promotion-gate")
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(got)
    assert got == path.read_text(), f"{path.name} differs: review, then UPDATE_GOLDEN=1"
