"""A pytest plugin: every JSON document goes through the streaming walk, never the json.loads fast
path (checklists/evidence/_jsonstream.py). Run the evidence tests with it to show they hold on
both paths:

    .venv/bin/python -m pytest -p tests.jsonstream_streaming_only tests/test_evidence_*.py tests/test_hostile.py -q
"""

from __future__ import annotations

from promotion_gate.checklists.evidence import _jsonstream


def pytest_configure(config) -> None:
    _jsonstream.FAST_MAX_BYTES = -1
    config.addinivalue_line("markers", "streaming_only: this session reads JSON evidence on the streaming path alone")


def pytest_report_header(config) -> str:
    return "JSON evidence: streaming walk only (the json.loads fast path is off)"
