"""The capacity limits are written in three places that must agree (docs/operations.md, "Capacity"):
the queue commands an operator runs, the deployments' `concurrency_limit` in prefect.yaml (the
backstop), and the topology the end-to-end test and the bench start. A limit changed in one place
only would leave the shipped pool sized differently from what was measured."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.github_topology import QUEUES

ROOT = Path(__file__).resolve().parent.parent
QUEUE_OF = {"promotion-gate": "gates", "promotion-request": "requests"}


def documented_queues() -> dict[str, tuple[int, int]]:
    text = (ROOT / "docs" / "operations.md").read_text()
    found = re.findall(r"prefect work-queue create (\S+) --pool promotion-gate-pool --priority (\d+) --limit (\d+)", text)
    return {name: (int(priority), int(limit)) for name, priority, limit in found}


def test_the_queue_commands_the_topology_and_prefect_yaml_agree():
    documented = documented_queues()
    assert documented == {name: (priority, limit) for name, priority, limit in QUEUES}
    deployments = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    for deployment, queue in QUEUE_OF.items():
        assert deployments[deployment]["work_pool"]["work_queue_name"] == queue
        assert deployments[deployment]["concurrency_limit"] == documented[queue][1], deployment


def test_gate_runs_come_first_and_are_bounded_by_the_cores():
    documented = documented_queues()
    assert documented["gates"][0] < documented["requests"][0]  # a lower number is served first
    assert 1 <= documented["gates"][1] <= 2 and documented["requests"][1] == 1  # 2 cores (docs/benchmarks.md)
