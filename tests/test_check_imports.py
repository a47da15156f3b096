"""What `check` loads: only the parsers of the formats its manifest names, none of the decision's
models, no Prefect (issue 13, point 9; docs/benchmarks.md has the figures). No timing here."""

from __future__ import annotations

import json
import os
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
import gc, json, os, sys
import importlib.metadata as metadata
groups, scan = [], metadata.entry_points
metadata.entry_points = lambda **kw: (groups.append(kw.get("group")), scan(**kw))[1]  # before pydantic's loader imports it
from promotion_gate.cli import main as cli
argv = ["check", "examples/repo", "--system", "support-assistant", "--now", "2026-11-24T12:00:00Z"]
sys.argv = ["promotion-gate", *argv]
code = cli.entry() if {own!r} else cli.main(argv)
from pydantic.plugin import _loader
print(json.dumps({{"exit": code, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),
                  "plugins_env": os.environ.get("PYDANTIC_DISABLE_PLUGINS"), "scanned": "pydantic" in groups}}), file=sys.stderr)
"""


def _run_check_as(own_process: bool, env: dict[str, str] | None = None) -> dict:
    full = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"} | (env or {})
    done = subprocess.run([sys.executable, "-c", GC_AFTER_CHECK.format(own=own_process)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=full)
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("own_process", [True, False])
def test_check_freezes_the_cores_objects_only_in_a_process_of_its_own(own_process):
    """`entry` (the console script, `python -m`) holds the collector off while the core and its
    models are imported, then freezes them; a caller of `main` (a test) keeps its collector as it
    was. Either way the collector is on afterwards and the verdict is the same."""
    report = _run_check_as(own_process)
    assert report["exit"] == 0 and report["enabled"]
    if own_process:
        assert report["frozen"] > 10_000  # the modules, classes and validators made by the imports
    else:
        assert report["frozen"] == 0


@pytest.mark.parametrize("own_process, preset, plugins_env, scanned", [
    (True, None, None, False),            # the console script: no pydantic plugin, no scan, the environment unwritten
    (True, "", "", True),                 # a user who wants their plugins says so (pydantic's own spelling: none disabled)
    (True, "logfire", "logfire", True),   # a user's own list of disabled plugins is kept as it is
    (False, None, None, True),            # a caller of `main` (a test, an embedding program): its environment untouched
])
def test_check_turns_pydantic_plugins_off_only_in_its_own_process_and_unless_told(own_process, preset, plugins_env, scanned):
    report = _run_check_as(own_process, None if preset is None else {"PYDANTIC_DISABLE_PLUGINS": preset})
    assert report["exit"] == 0
    assert (report["plugins_env"], report["scanned"]) == (plugins_env, scanned)


def test_check_in_its_own_process_never_imports_importlib_metadata():
    """pydantic's plugin loader imports importlib.metadata (13 ms of check); check's own process asks
    a stand-in instead, which answers as pydantic does with plugins disabled. A caller of `main`
    keeps pydantic's loader."""
    script = ("import sys\nfrom promotion_gate.cli import main as cli\n"
              "sys.argv = ['promotion-gate', 'check', 'examples/repo', '--system', 'support-assistant', '--now', '2026-11-24T12:00:00Z']\n"
              "code = cli.entry() if sys.argv.__len__() and {own} else cli.main(sys.argv[1:])\n"
              "print(code, 'importlib.metadata' in sys.modules, file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    for own, imported in ((True, "False"), (False, "True")):
        done = subprocess.run([sys.executable, "-c", script.format(own=own)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env=env)
        assert done.stderr.strip().splitlines()[-1] == f"0 {imported}", done.stderr


def test_the_models_check_builds_have_no_string_annotations():
    """The modules of models on check's path do not use `from __future__ import annotations`: for
    each string annotation pydantic compiles and evaluates a ForwardRef when it builds the model
    (20 M instructions of check for the 274 fields; docs/benchmarks.md, `check`). A model that
    needs a forward reference is written after what it names, or in a module off this path."""
    from pydantic import BaseModel

    _, modules = _check_modules("support-assistant")
    stringly = []
    for name in sorted(m for m in modules if m.startswith("promotion_gate.")):
        for value in vars(import_module(name)).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == name:
                stringly += [f"{name}.{value.__qualname__}.{field}" for field, hint in vars(value).get("__annotations__", {}).items()
                             if isinstance(hint, str)]
    assert stringly == []


def test_no_model_of_the_core_takes_a_builtin_with_a_text_signature_as_default_factory():
    """pydantic reads each default factory's signature; for `list` (not `dict`) that parses a text
    signature with tokenize, compiled on first use (docs/benchmarks.md, `check`): the core's models
    use `empty_list` (checklists/defaults.py), which gives the same models."""
    import pkgutil

    from pydantic import BaseModel

    import promotion_gate.checklists as core

    for info in pkgutil.walk_packages(core.__path__, core.__name__ + "."):
        import_module(info.name)

    def models(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from models(sub)

    slow = sorted(f"{m.__module__}.{m.__qualname__}.{name}" for m in set(models(BaseModel)) if m.__module__.startswith(core.__name__)
                  for name, field in m.model_fields.items()
                  if isinstance(field.default_factory, type) and getattr(field.default_factory, "__text_signature__", None))
    assert slow == []
