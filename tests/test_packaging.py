"""The package as a user installs it: one top-level package, the example repository inside it,
`check` and `demo` working from an unrelated directory.

The wheel is built for real and installed with ``--no-deps`` into a new virtual environment whose
third-party packages come from this project's environment through a ``.pth`` line (so the test
needs no network); the editable install's finder is not on that path, so only the wheel's
``promotion_gate`` is importable. `.ci/smoke-wheel` (run by CI) installs it with its dependencies
from the registry instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(work / "dist"), str(ROOT)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((work / "dist").glob("promotion_gate-*.whl"))
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next(env_dir.glob("lib/python3*/site-packages"))
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return wheel, env_dir, work


def run_in(env_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMOTION_GATE_", "PYTHONPATH"))}
    env |= {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_HOME": str(cwd / ".prefect")}
    return subprocess.run([str(env_dir / "bin" / "python"), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_the_wheel_installs_one_top_level_package_with_the_examples_inside(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"promotion_gate"}
    for required in ("promotion_gate/checklists/policy/policy.yaml", "promotion_gate/cli/main.py",
                     "promotion_gate/examples/repo/ai-systems/loan-prescreener/promotion.yaml"):
        assert required in names
    assert any(n.startswith("promotion_gate/notifications/templates/") for n in names)


def test_check_runs_from_another_directory_on_the_wheel_alone(installed, tmp_path):
    _, env_dir, _ = installed
    code = ("import sys, promotion_gate.cli.main as cli; import promotion_gate; "
            "print(promotion_gate.__file__); sys.exit(cli.main(sys.argv[1:]))")
    examples = next(env_dir.glob("lib/python3*/site-packages/promotion_gate/examples/repo"))
    out = run_in(env_dir, tmp_path, "-c", code, "check", str(examples), "--system", "loan-prescreener", "--format", "json")
    assert out.returncode == 1, out.stderr[-2000:]
    assert str(env_dir) in out.stdout.splitlines()[0]           # the wheel's package, not the checkout's
    assert '"blocked": true' in out.stdout


def test_no_top_level_name_of_the_checkout_is_importable_from_the_wheel(installed, tmp_path):
    _, env_dir, _ = installed
    code = "import importlib.util as u; print([n for n in ('checklists', 'flows', 'notifications', 'gateway', 'cli', 'config', 'forge', 'github_api', 'slack_api', 'audit_store', 'local_repo', 'prefect_api') if u.find_spec(n)])"
    out = run_in(env_dir, tmp_path, "-c", code)
    assert out.stdout.strip() == "[]", out.stderr


def test_demo_runs_from_another_directory_on_the_wheel_alone(installed, tmp_path):
    _, env_dir, _ = installed
    out = run_in(env_dir, tmp_path, "-m", "promotion_gate.cli", "demo", "--store", str(tmp_path / "store"))
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    for system in ("helpdesk-summarizer", "support-assistant", "loan-prescreener"):
        assert system in out.stdout
    assert (tmp_path / "store" / "ledger.jsonl").is_file()


def test_the_console_script_names_a_function_of_the_wheel(installed, tmp_path):
    """pip writes the `promotion-gate` script from the wheel's entry point: it must name a function
    the wheel has, which runs the command."""
    wheel, env_dir, _ = installed
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    target = next(line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith("promotion-gate"))
    module, _, func = target.partition(":")
    out = run_in(env_dir, tmp_path, "-c", f"import sys; from {module} import {func}; sys.argv = ['promotion-gate', 'check', '--help']; sys.exit({func}())")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "exit codes:" in out.stdout and "141" in out.stdout
