"""Shared fixtures: one Prefect test harness per session, heartbeats off; the example repository."""

from __future__ import annotations

import os

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)

pytest_plugins = ["tests.fakes.fixtures"]
REQUIRE_SERVICES = "PROMOTION_GATE_TEST_REQUIRE_SERVICES"


def missing_service(reason: str) -> None:
    """A service the suite needs (Chromium, PostgreSQL) is not here: skip with the reason, visibly,
    or fail when the run requires every service (`make test-all`, CI: PROMOTION_GATE_TEST_REQUIRE_SERVICES=1)."""
    if os.environ.get(REQUIRE_SERVICES) == "1":
        pytest.fail(f"{reason}; this run requires it ({REQUIRE_SERVICES}=1)", pytrace=False)
    pytest.skip(f"{reason}; `make test-all` (what CI runs) requires it")


@pytest.fixture(scope="session", autouse=True)
def retries_without_waiting():
    """stamina's testing mode for the whole session: every backoff, a server's Retry-After
    included, is zero; the number of tries stays what each policy says (capped at 100), so the
    GitHub and Slack call budgets hold. Flow runs served in their own process (tests'
    `serving`) get no testing mode: their settings set a zero backoff and the fakes a zero wait."""
    import stamina

    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's own test harness (a real temporary server), started once for the session."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@pytest.fixture()
def example_repo(tmp_path):
    """A fresh copy of the bundled example repository as a git repository; returns (path, commit)."""
    from promotion_gate.cli.demo import build_example_repo

    repo = tmp_path / "repo"
    commit = build_example_repo(repo, datetime.now(timezone.utc))
    return repo, commit
