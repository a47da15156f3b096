"""What `check` loads: only the parsers of the formats its manifest names, none of the decision's
models, no Prefect (issue 13, point 9; docs/benchmarks.md has the figures). No timing here."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest

from promotion_gate.checklists.evidence import PARSERS

ROOT = Path(__file__).resolve().parent.parent
EVIDENCE = "promotion_gate.checklists.evidence."
RUN_CHECK = """
import json, runpy, sys
sys.argv = ["promotion-gate", "check", "examples/repo", "--system", sys.argv[1], "--now", "2026-11-24T12:00:00Z"]
try:
    runpy.run_module("promotion_gate.cli.main", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


@pytest.mark.parametrize("fmt", sorted(PARSERS))
def test_every_format_names_a_parser_that_exists(fmt):
    module, _, name = PARSERS[fmt].target.partition(":")
    assert callable(getattr(import_module(EVIDENCE + module), name))


def _check_modules(system: str) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", RUN_CHECK, system], cwd=ROOT, capture_output=True, text=True, timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["exit"], set(report["modules"])


@pytest.mark.parametrize("system, loaded", [
    ("support-assistant", {"promptfoo", "junit"}),   # an evaluation in promptfoo, a fallback drill in JUnit
    ("loan-prescreener", {"promptfoo"}),
])
def test_check_loads_only_the_parsers_its_manifest_names(system, loaded):
    code, modules = _check_modules(system)
    assert code in (0, 1)
    parsers = {m.removeprefix(EVIDENCE) for m in modules if m.startswith(EVIDENCE)}
    every = {PARSERS[f].target.partition(":")[0] for f in PARSERS}
    assert parsers & every == loaded
    assert not {"promotion_gate.checklists.decision", "promotion_gate.checklists.signoff", "backports.zstd"} & modules
    assert not {m for m in modules if m == "prefect" or m.startswith("prefect.") or m == "jinja2"}


GC_AFTER_CHECK = """
import gc, json, sys
from promotion_gate.cli import main as cli
argv = ["check", "examples/repo", "--system", "support-assistant", "--now", "2026-11-24T12:00:00Z"]
sys.argv = ["promotion-gate", *argv]
code = cli.entry() if {own!r} else cli.main(argv)
print(json.dumps({{"exit": code, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}), file=sys.stderr)
"""


@pytest.mark.parametrize("own_process", [True, False])
def test_check_freezes_the_cores_objects_only_in_a_process_of_its_own(own_process):
    """`entry` (the console script, `python -m`) holds the collector off while the core and its
    models are imported, then freezes them; a caller of `main` (a test) keeps its collector as it
    was. Either way the collector is on afterwards and the verdict is the same."""
    done = subprocess.run([sys.executable, "-c", GC_AFTER_CHECK.format(own=own_process)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["exit"] == 0 and report["enabled"]
    if own_process:
        assert report["frozen"] > 10_000  # the modules, classes and validators made by the imports
    else:
        assert report["frozen"] == 0
