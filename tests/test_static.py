"""ruff and mypy on the pure core and the wire formats, clean (the configuration is in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LAYERS = ["checklists", "notifications"]


def tool(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (it is in the test extras: pip install -e '.[test]')", pytrace=False)
    return str(found)


def test_ruff_is_clean_on_the_core_and_the_wire_formats():
    out = subprocess.run([tool("ruff"), "check", "--no-cache", *LAYERS], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:]


def test_mypy_is_clean_on_the_core_and_the_wire_formats():
    out = subprocess.run([tool("mypy"), "--no-incremental", "--cache-dir", "/dev/null", *LAYERS], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-6000:]
