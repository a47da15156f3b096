"""Run a command and read its own peak resident memory (the largest process it and its children had).

``resource.getrusage(RUSAGE_CHILDREN)`` in the bench itself counts every child the bench ever
waited for, including the moment after ``fork`` and before ``exec``, when the child is a copy of the
bench (hundreds of MiB after building a store in process): that reading is the bench's, not the
command's. So the command runs under a small launcher process, and the launcher reports what its
own children peaked at.
"""

from __future__ import annotations

import json
import subprocess
import sys

LAUNCHER = """
import json, resource, subprocess, sys, time
cmd, cwd = json.loads(sys.argv[1])
t = time.perf_counter()
out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": out.returncode, "stdout": out.stdout, "stderr": out.stderr, "seconds": wall, "peak_kib": peak}))
"""


def run_measured(cmd: list[str], cwd) -> dict:
    """``code``, ``stdout``, ``stderr``, ``seconds`` (wall clock, timed by the launcher around the command) and
    ``peak_kib``: the peak RSS of the largest process of the command (it, or a worker of its pool)."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, json.dumps([cmd, str(cwd)])], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)
