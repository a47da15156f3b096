"""Run a command and read its own peak resident memory: the largest process, and the whole tree at once.

``resource.getrusage(RUSAGE_CHILDREN)`` in the bench itself counts every child the bench ever
waited for, including the moment after ``fork`` and before ``exec``, when the child is a copy of the
bench (hundreds of MiB after building a store in process): that reading is the bench's, not the
command's. So the command runs under a small launcher process, and the launcher reports what its
own children peaked at (``peak_kib``: the largest single process, from the kernel, exact).

``tree_kib`` is the largest sum, over the command and all its descendants alive at one moment, of
their resident memory, sampled from ``/proc`` every 20 ms (Linux; 0 elsewhere). It counts a page
shared by a forked worker and its parent once per process (RSS, not PSS): an upper bound of what
the tree holds. ``tree_pss_kib`` is the same sum of proportional set sizes (a shared page counted once
across the processes that share it; /proc/PID/smaps_rollup): what the tree costs the machine. A peak
shorter than a sample period can be missed; ``peak_kib`` cannot miss one.
"""

from __future__ import annotations

import json
import subprocess
import sys

LAUNCHER = r"""
import json, os, resource, subprocess, sys, tempfile, time
cmd, cwd = json.loads(sys.argv[1])

def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0

def tree_kib(root):
    parent, rss = {}, {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            parent[int(name)] = int(fields[1])
            rss[int(name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024
        except (OSError, IndexError, ValueError):
            continue
    inside, total, grew = {root}, 0, True
    while grew:
        grew = False
        for pid, ppid in parent.items():
            if ppid in inside and pid not in inside:
                inside.add(pid)
                grew = True
    return sum(rss.get(pid, 0) for pid in inside), sum(pss_kib(pid) for pid in inside)

with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err)
    tree = pss = 0
    while proc.poll() is None:
        now_rss, now_pss = tree_kib(proc.pid)
        tree, pss = max(tree, now_rss), max(pss, now_pss)
        time.sleep(0.02)
    wall = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out.seek(0)
    err.seek(0)
    print(json.dumps({"code": proc.returncode, "stdout": out.read().decode(errors="replace"),
                      "stderr": err.read().decode(errors="replace"), "seconds": wall, "peak_kib": usage.ru_maxrss,
                      "tree_kib": tree, "tree_pss_kib": pss, "cpu_seconds": usage.ru_utime + usage.ru_stime}))
"""


def run_measured(cmd: list[str], cwd) -> dict:
    """``code``, ``stdout``, ``stderr``, ``seconds`` (wall clock, timed by the launcher around the command),
    ``peak_kib`` (the peak RSS of the largest process of the command: it, or a worker of its pool),
    ``tree_kib`` / ``tree_pss_kib`` (the largest RSS / PSS of the command and its workers together, sampled) and ``cpu_seconds``
    (user + system time of the command and its workers)."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, json.dumps([cmd, str(cwd)])], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)
