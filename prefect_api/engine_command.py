"""The command each flow run starts with, resolved once when ``prefect deploy`` runs (a build step).

Without a ``command`` job variable, Prefect's process worker starts every flow run in two Python
processes, one after the other: a workspace supervisor (it imports Prefect, reads the run and
its deployment, then ``exec``s) and the engine (it imports Prefect again, then the flow). Each is
a second or more of CPU. The gate pulls no code (``pull: []``), so the supervisor has nothing to
prepare; with ``command`` set, the worker starts the engine directly: one process per run.

The command names the interpreter ``prefect deploy`` runs in (``sys.executable``), the one the
package is installed in, so a worker started as ``.venv/bin/prefect worker start`` (no activated
environment, no ``python`` of the right kind on its PATH) runs the flows with the right one.
Deploy from the environment the worker runs in (docs/operations.md, "Capacity"): a path that does
not exist on the worker crashes each run at its start, and the sweeper decides it as an error.

Two commands, because two kinds of run share the pool:

- ``gate``: promotion-gate runs, the ones a team waits for, at normal priority;
- ``background``: the request runs, under ``nice -n 10`` where ``nice`` exists, so that in a
  burst of labels the gate runs already started get the CPU first and the first decisions are
  not slowed by the fan-out of every other label (bench/bench_burst.py).

The sweeper and recertify keep the worker's own start (its interpreter): the sweeper decides the
runs that crashed, so it must not crash for the same reason.
"""

from __future__ import annotations

import shlex
import shutil
import sys

NICENESS = 10


def engine_commands(python: str | None = None, nice: str | None = None) -> dict[str, str]:
    """The step's output: ``{"gate": ..., "background": ...}`` (prefect.yaml, ``build``)."""
    python = python or sys.executable
    if not python:
        raise RuntimeError("no Python interpreter to start the flow runs with (sys.executable is empty)")
    engine = f"{shlex.quote(python)} -m prefect.engine"
    nice = nice if nice is not None else shutil.which("nice")
    background = f"{shlex.quote(nice)} -n {NICENESS} {engine}" if nice else engine
    return {"gate": engine, "background": background}
