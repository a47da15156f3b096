"""The auditor's pages in a real browser: the index and a report open with no console error and no
network request, the filters work, and screenshots (and an A4 print) are written to test-artifacts/.

Needs Debian's chromium (``make test`` installs it with ``.ci/install-chromium`` where it can).
Without it these tests are skipped with the reason, except under ``make test-all`` (CI), where
they fail.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import missing_service

from promotion_gate.flows.audit_cli import run_index
from tests.audit_support import HOSTILE, signing_key, spread_store
from tests.browser.cdp import Browser, find_chromium
from tests.conftest import ROOT

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "test-artifacts"
VISIBLE_ROWS = "Array.from(document.querySelectorAll('#decisions tbody tr')).filter(r => r.offsetParent !== null).length"


@pytest.fixture(scope="module")
def audit_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser") / "store"
    decisions = spread_store(root, signing_key("browser"))
    assert run_index(str(root)) == 0
    return root, decisions


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    binary = find_chromium()
    if binary is None:
        missing_service("chromium is not installed (/usr/bin/chromium; .ci/install-chromium installs it)")
    browser = Browser(binary, tmp_path_factory.mktemp("chromium-profile"))
    page = browser.page()
    yield page
    page.close()
    browser.close()


def set_filter(page, element: str, value: str) -> int:
    page.evaluate(f"""(() => {{ const el = document.getElementById({element!r}); el.value = {value!r};
                     el.dispatchEvent(new Event('change', {{bubbles: true}})); }})()""")
    return page.evaluate(VISIBLE_ROWS)


def test_the_index_opens_without_errors_or_network_and_its_filters_work(page, audit_store) -> None:
    root, decisions = audit_store
    page.open((root / "index.html").as_uri())
    assert page.evaluate("document.title") == "Promotion decisions: audit index"
    assert page.evaluate(VISIBLE_ROWS) == len(decisions)
    assert "Ledger verified" in page.evaluate("document.getElementById('verification').innerText")
    support = sum(d.request.system == "support-assistant" for d in decisions)
    assert set_filter(page, "filter-system", "support-assistant") == support
    assert page.evaluate("document.getElementById('shown').textContent") == str(support)
    blocked = sum(d.request.system == "support-assistant" and d.verdict.value == "blocked" for d in decisions)
    assert set_filter(page, "filter-verdict", "blocked") == blocked
    page.evaluate("document.getElementById('filter-reset').click()")
    assert page.evaluate(VISIBLE_ROWS) == len(decisions)
    since = sorted(d.decided_at.date().isoformat() for d in decisions)[5]
    assert set_filter(page, "filter-from", since) == sum(d.decided_at.date().isoformat() >= since for d in decisions)
    assert set_filter(page, "filter-tier", "low") == sum(
        d.checklist is not None and d.checklist.tier.value == "low" and d.decided_at.date().isoformat() >= since for d in decisions)
    page.evaluate("document.getElementById('filter-reset').click()")
    for plot in ("plot-over-time", "plot-blocking", "plot-time-to-decision"):
        assert page.evaluate(f"document.querySelectorAll('#{plot} svg rect').length") > 0, plot
    assert page.evaluate("document.querySelectorAll('#coverage td.pass').length") > 0
    shot = page.screenshot(ARTIFACTS / "audit-index.png")
    assert shot.startswith(b"\x89PNG") and len(shot) > 20_000
    assert page.errors() == []
    assert [u for u in page.requests() if not u.startswith(("file:", "data:"))] == []


def test_a_report_with_hostile_text_opens_as_text_and_prints_on_a4(page, audit_store) -> None:
    root, decisions = audit_store
    hostile = next(d for d in decisions if d.checklist is not None and d.checklist.owner == HOSTILE)
    page.open((root / "decisions" / hostile.decision_id / "report.html").as_uri())
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    assert page.evaluate("document.querySelectorAll('a').length") == 0
    assert HOSTILE in page.evaluate("document.body.innerText")
    assert page.errors() == []
    assert [u for u in page.requests() if not u.startswith(("file:", "data:"))] == []
    assert page.screenshot(ARTIFACTS / "audit-report.png").startswith(b"\x89PNG")
    pdf = page.pdf_a4(ARTIFACTS / "audit-report.pdf")
    boxes = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    assert pdf.startswith(b"%PDF") and boxes
    assert all(abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1 for w, h in boxes)  # A4 in points


def test_the_index_links_open_each_report(page, audit_store) -> None:
    root, decisions = audit_store
    page.open((root / "index.html").as_uri())
    hrefs = page.evaluate("Array.from(document.querySelectorAll('#decisions tbody a')).map(a => a.href)")
    assert len(hrefs) == len(decisions)
    page.open(hrefs[-1])
    assert page.evaluate("document.querySelector('h1').innerText").startswith("Promotion")
    assert page.errors() == []
