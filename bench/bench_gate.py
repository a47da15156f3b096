"""Measures `promotion-gate check` wall time and the flow's time per promotion on the examples.

Run: make bench   (or .venv/bin/python bench/bench_gate.py --runs 10; --check-only for `check` alone)
Prints a Markdown table; docs/benchmarks.md keeps the figures.

`check` and its floor run with a bytecode cache, as an installed package has one (pip compiles
on install): PYTHONDONTWRITEBYTECODE is dropped for the children and PYTHONPYCACHEPREFIX points
at a temporary folder, filled by one run of each before the timed runs. Without it every run of
`check` compiles the gate's modules, which the floor (site-packages, compiled) never does. Each
child's CPU time (user + system, from wait4) is printed beside its wall time: on a shared machine
the minimum CPU time moves less than the wall time. --instructions counts the instructions each
command executes under valgrind (callgrind), which the machine's load does not move at all.
--minimum also times, interleaved, what any `check` built on pydantic models pays at least: the
floor's imports and one model, pydantic's plugin loader a stand-in as `check` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


NOW = "2026-11-24T12:00:00Z"  # the examples' evidence is dated 2026-11-20: judge it as of a fixed day
CHECK = [sys.executable, "-m", "promotion_gate.cli", "check", "examples/repo", "--system", "support-assistant", "--now", NOW]
FLOOR = [sys.executable, "-c", "import pydantic, yaml"]


def time_command(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run of ``cmd``."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


RUN_TREE = """
import runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, sys.argv.pop(1))
sys.argv[0] = "promotion-gate"
runpy.run_module("promotion_gate.cli" if __import__("os").path.isdir(sys.path[0] + "/promotion_gate/cli") else "promotion_gate.cli.main",
                 run_name="__main__", alter_sys=True)
"""


def tree_command(tree: Path, mapped: Path) -> list[str]:
    """`check` run from another copy of the source (e.g. `git archive <commit>`), not the installed
    package: ``mapped`` gets a promotion_gate/ whose subpackages link to the copy's folders, as
    its pyproject.toml maps them, and the editable install's finder is left out."""
    import tomllib

    dirs = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    (mapped / "promotion_gate").mkdir(parents=True)
    for name, folder in dirs.items():
        if name == "promotion_gate":
            (mapped / "promotion_gate" / "__init__.py").write_bytes((tree / folder / "__init__.py").read_bytes())
        else:
            (mapped / "promotion_gate" / name.split(".", 1)[1]).symlink_to((tree / folder).resolve())
    return [sys.executable, "-c", RUN_TREE, str(mapped)] + CHECK[3:4] + [str(ROOT / "examples" / "repo")] + CHECK[5:]


PHASES = """
import sys, time
if len(sys.argv) > 2:
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, sys.argv[2])
cpu = [time.process_time()]
import pydantic, yaml
cpu.append(time.process_time())
from datetime import datetime, timezone
from pathlib import Path
from promotion_gate.checklists.checklist import evaluate
from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
from promotion_gate.config.policy_source import load_policy
from promotion_gate.notifications.terminal import render_checklist_table
cpu.append(time.process_time())
policy = load_policy(None)
cpu.append(time.process_time())
tree = WorkingTree(Path(sys.argv[1]))
candidate = read_candidate(tree, "support-assistant", "0" * 40, baseline=tree)
cpu.append(time.process_time())
render_checklist_table(evaluate(candidate, policy, datetime(2026, 11, 24, 12, tzinfo=timezone.utc)))
cpu.append(time.process_time())
print(" ".join(f"{b - a:.6f}" for a, b in zip(cpu, cpu[1:])), file=sys.stderr)
"""
PHASE_NAMES = ("import pydantic, yaml (the floor's imports)", "import the gate's modules (models built)", "load the embedded policy",
               "read the manifest and evidence", "evaluate and render")


def time_phases(runs: int, trees: list[Path]) -> list[list[float]]:
    """CPU seconds of each phase of `check`, in-process (the minimum of ``runs``), for the installed
    package and for each tree; interpreter start-up is not in it."""
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(cache) / "pycache")
        mapped = [None] + [Path(cache) / f"tree{i}" for i in range(len(trees))]
        for tree, folder in zip(trees, mapped[1:], strict=True):
            tree_command(tree.resolve(), folder)
        best = [[float("inf")] * len(PHASE_NAMES) for _ in mapped]
        for n in range(runs + 1):
            for i, folder in enumerate(mapped):
                cmd = [sys.executable, "-c", PHASES, str(ROOT / "examples" / "repo")] + ([str(folder)] if folder else [])
                done = subprocess.run(cmd, cwd=folder or ROOT, env=env, capture_output=True, text=True, check=True)
                if n:  # the first run fills the bytecode cache
                    best[i] = [min(a, float(b)) for a, b in zip(best[i], done.stderr.split()[-len(PHASE_NAMES):], strict=True)]
        out = best
    return out


def time_check(runs: int, trees: list[Path], minimum: bool = False
               ) -> tuple[list[tuple[float, float]], list[tuple[float, float]], list[list[tuple[float, float]]]]:
    """`check` and its floor (an interpreter importing pydantic and yaml), interleaved in one run,
    both with a warm bytecode cache; and `check` from each of ``trees``, interleaved too; with
    ``minimum``, last, pydantic's minimum as `check` runs it (MINIMUM)."""
    check, floor, others = [], [], [[] for _ in range(len(trees) + minimum)]
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(cache) / "pycache")
        commands = [(tree_command(tree.resolve(), Path(cache) / f"tree{i}"), env) for i, tree in enumerate(trees)]
        commands += [(MINIMUM, env | NO_PLUGINS)] * minimum
        for cmd, cmd_env in [(FLOOR, env), (CHECK, env), *commands]:
            time_command(cmd, cmd_env)  # fill the cache
        for _ in range(runs):
            floor.append(time_command(FLOOR, env))
            check.append(time_command(CHECK, env))
            for (cmd, cmd_env), out in zip(commands, others, strict=True):
                out.append(time_command(cmd, cmd_env))
    return check, floor, others


ONE_MODEL = [sys.executable, "-c", "from pydantic import BaseModel\nclass M(BaseModel):\n    x: int"]
STAND_IN = ("import sys, types\nloader = types.ModuleType('pydantic.plugin._loader')\nloader.get_plugins = tuple\n"
            "sys.modules[loader.__name__] = loader\n")  # as `check` runs: cli/main.py, _without_pydantic_plugins
CORE_IMPORTS = [sys.executable, "-c", STAND_IN + "import gc\ngc.disable()\n"
                + "\n".join(line for line in PHASES.splitlines() if line.startswith("from promotion_gate"))
                + "\ngc.freeze()\ngc.enable()"]
CORE_AND_READ = CORE_IMPORTS[:2] + [CORE_IMPORTS[2] + "\nfrom datetime import datetime, timezone\nfrom pathlib import Path\n"
                                     "policy = load_policy(None)\ntree = WorkingTree(Path('examples/repo'))\n"
                                     "candidate = read_candidate(tree, 'support-assistant', '0' * 40, baseline=tree)"]
"""The imports of `check` and its reading (the embedded policy, the manifest, the evidence), no checklist: run from ROOT."""
NO_PLUGINS: dict[str, str] = {}  # the stand-in in the command does what `check` does (the environment unwritten)
MINIMUM = ONE_MODEL[:2] + [STAND_IN + "import yaml\n" + ONE_MODEL[2]]
"""What any `check` built on pydantic models pays at least: the floor's imports and one model."""
INSTRUCTION_ROWS = (
    ("bare interpreter: `python -c pass`", [sys.executable, "-c", "pass"], {}),
    ("floor: `python -c 'import pydantic, yaml'`", FLOOR, {}),
    ("`from pydantic import BaseModel` alone, no model", [sys.executable, "-c", "from pydantic import BaseModel"], {}),
    ("pydantic's own minimum: `from pydantic import BaseModel` and one model of one `int` field", ONE_MODEL, {}),
    ("... and `import yaml`, pydantic's plugin loader a stand-in (as `check` runs)", MINIMUM, NO_PLUGINS),
    ("the imports of `check` (the core's modules, their models built; the collector as `entry` holds it; the loader a stand-in)",
     CORE_IMPORTS, NO_PLUGINS),
    ("... and reading what `check` reads (the embedded policy, the manifest, 484 KB of promptfoo and 12 KB of JUnit evidence)",
     CORE_AND_READ, NO_PLUGINS),
    ("`promotion-gate check` (support-assistant)", CHECK, {}),
)


def count_instructions(cmd: list[str], env: dict[str, str]) -> int:
    """Instructions executed by one run of ``cmd`` under valgrind's callgrind: unlike a clock, the
    count does not move with the machine's load (it does not see cache misses, so it understates
    memory-bound work such as the collector's passes)."""
    subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)  # fill the cache
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    counts = [line.split()[-1] for line in done.stderr.splitlines() if "Collected :" in line]
    if not counts:
        raise SystemExit(f"valgrind did not count {' '.join(cmd)}: {done.stderr[-500:]}")
    return int(counts[-1])


def _row(what: str, samples: list[tuple[float, float]]) -> str:
    wall, cpu = [w for w, _ in samples], [c for _, c in samples]
    return (f"| {what} | {statistics.median(wall):.3f} s | {min(wall):.3f} s | {max(wall):.3f} s "
            f"| {statistics.median(cpu):.3f} s | {min(cpu):.3f} s |")


def time_flow(runs: int) -> tuple[float, list[float]]:
    os.environ.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from promotion_gate.checklists.decision import PromotionRequest
    from promotion_gate.cli.demo import build_example_repo
    from promotion_gate.flows.promotion import promotion_gate

    times = []
    with tempfile.TemporaryDirectory() as tmp, temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        repo = Path(tmp) / "repo"
        commit = build_example_repo(repo, datetime.now(timezone.utc))
        first = None
        for i in range(runs + 1):
            system = ("helpdesk-summarizer", "support-assistant", "loan-prescreener")[i % 3]
            req = PromotionRequest(repository=str(repo), system=system, commit=commit, requester=f"bench-{i}",
                                   requested_at=datetime.now(timezone.utc))
            start = time.perf_counter()
            promotion_gate(req, approvals=["sam", "rene"], store=str(Path(tmp) / "store"))
            elapsed = time.perf_counter() - start
            if first is None:
                first = elapsed
            else:
                times.append(elapsed)
    return first, times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--check-only", action="store_true", help="time `check` and its floor, not the flow")
    parser.add_argument("--tree", action="append", type=Path, default=[], metavar="DIR",
                        help="also time `check` from this copy of the source (e.g. git archive of an earlier commit), interleaved")
    parser.add_argument("--minimum", action="store_true",
                        help="also time pydantic's minimum as `check` runs it (yaml and one model, the plugin loader a stand-in), interleaved")
    parser.add_argument("--phases", action="store_true", help="CPU time of each phase of `check`, in-process, instead")
    parser.add_argument("--instructions", action="store_true",
                        help="instructions executed (valgrind callgrind, one run each) by the floor, pydantic's minimum, "
                             "the imports of `check` and `check`, instead")
    args = parser.parse_args()
    if args.instructions:
        with tempfile.TemporaryDirectory() as cache:
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env["PYTHONPYCACHEPREFIX"] = str(Path(cache) / "pycache")
            rows = [(what, count_instructions(cmd, env | extra)) for what, cmd, extra in INSTRUCTION_ROWS]
            rows += [(f"`check` from {tree}", count_instructions(tree_command(tree.resolve(), Path(cache) / f"tree{i}"), env))
                     for i, tree in enumerate(args.tree)]
        floor = rows[1][1]
        print("| what | instructions | ratio to the floor |")
        print("|---|---|---|")
        for what, count in rows:
            print(f"| {what} | {count / 1e6:.0f} M | {count / floor:.2f}x |")
        return
    if args.phases:
        names = ["installed"] + [str(t) for t in args.tree]
        rows = time_phases(args.runs, args.tree)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; CPU seconds, minimum of {args.runs} runs")
        print("| phase | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for j, phase in enumerate(PHASE_NAMES):
            print(f"| {phase} | " + " | ".join(f"{r[j]:.3f} s" for r in rows) + " |")
        print("| total in-process | " + " | ".join(f"{sum(r):.3f} s" for r in rows) + " |")
        return
    check, floor, others = time_check(args.runs, args.tree, args.minimum)
    med = lambda samples, i: statistics.median(s[i] for s in samples)  # noqa: E731
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| what | wall median | wall min | wall max | CPU median | CPU min |")
    print("|---|---|---|---|---|---|")
    print(_row(f"floor: `python -c 'import pydantic, yaml'` ({args.runs} runs)", floor))
    print(_row(f"`promotion-gate check` (support-assistant, {args.runs} runs, incl. interpreter)", check))
    print(f"| `check` as a ratio to the floor | {med(check, 0) / med(floor, 0):.2f}x (medians) | {min(c for c, _ in check) / min(f for f, _ in floor):.2f}x (minima) | "
          f"| {med(check, 1) / med(floor, 1):.2f}x | {min(c for _, c in check) / min(c for _, c in floor):.2f}x |")
    names = [f"`check` from {tree}" for tree in args.tree]
    names += ["pydantic's minimum as `check` runs it: `import yaml`, one model of one `int` field, the plugin loader a stand-in"] * args.minimum
    for name, samples in zip(names, others, strict=True):
        print(_row(name, samples))
        print(f"| ... as a ratio to the floor | {med(samples, 0) / med(floor, 0):.2f}x (medians) | {min(c for c, _ in samples) / min(f for f, _ in floor):.2f}x (minima) | "
              f"| {med(samples, 1) / med(floor, 1):.2f}x | {min(c for _, c in samples) / min(c for _, c in floor):.2f}x |")
    if args.check_only:
        return
    first, flow = time_flow(args.runs)
    print()
    print("| what | median | min | max |")
    print("|---|---|---|---|")
    print(f"| flow per promotion, embedded server warm ({len(flow)} runs, heartbeats off) | {statistics.median(flow):.3f} s | {min(flow):.3f} s | {max(flow):.3f} s |")
    print(f"| first flow run, including starting Prefect's embedded server | {first:.3f} s | | |")


if __name__ == "__main__":
    main()
