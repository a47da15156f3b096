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

from promotion_gate import __version__
from promotion_gate.cli.audit import run_index
from tests.audit_support import HOSTILE, signing_key, spread_store
from tests.browser.cdp import Browser, find_chromium
from tests.conftest import ROOT

pytestmark = pytest.mark.browser
ARTIFACTS = ROOT / "test-artifacts"
VISIBLE_ROWS = "Array.from(document.querySelectorAll('#decisions tbody tr')).filter(r => r.offsetParent !== null).length"


@pytest.fixture(scope="module")
def audit_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser") / "store"
    key = signing_key("browser")
    decisions = spread_store(root, key)
    pinned = root.parent / "gate.pub.pem"  # the auditor's copy of the key, outside the store: the index turns green
    pinned.write_bytes((root / "keys" / f"{key.key_id}.pub.pem").read_bytes())
    assert run_index(str(root), keys=[str(pinned)]) == 0
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
    """Set a filter (a select by its option's text), wait for the table, return the visible rows."""
    page.evaluate(f"""(() => {{ const el = document.getElementById({element!r});
                     const opt = el.tagName === 'SELECT' ? Array.from(el.options).find(o => o.text === {value!r}) : null;
                     el.value = opt ? opt.value : {value!r};
                     el.dispatchEvent(new Event('change', {{bubbles: true}})); }})()""")
    page.evaluate("PG.settled()")
    return page.evaluate(VISIBLE_ROWS)


def shown(page) -> int:
    return int(page.evaluate("PG.settled().then(() => document.getElementById('shown').textContent)"))


def test_the_index_opens_without_errors_or_network_and_its_filters_work(page, audit_store) -> None:
    root, decisions = audit_store
    page.open((root / "index.html").as_uri())
    page.evaluate("PG.settled()")
    assert page.evaluate("document.title") == "Promotion decisions: audit index"
    assert page.evaluate(VISIBLE_ROWS) == len(decisions)
    recorded_by = "Array.from(document.querySelectorAll('#decisions tbody tr'), tr => tr.lastChild.textContent)"
    assert set(page.evaluate(recorded_by)) == {f"promotion-gate {__version__}"}
    assert "Ledger verified" in page.evaluate("document.getElementById('verification').innerText")
    support = sum(d.request.system == "support-assistant" for d in decisions)
    assert set_filter(page, "filter-system", "support-assistant") == support
    assert page.evaluate("document.getElementById('shown').textContent") == str(support)
    blocked = sum(d.request.system == "support-assistant" and d.verdict.value == "blocked" for d in decisions)
    assert set_filter(page, "filter-verdict", "blocked") == blocked
    page.evaluate("document.getElementById('filter-reset').click()")
    page.evaluate("PG.settled()")
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
    page.evaluate("PG.settled()")
    hrefs = page.evaluate("Array.from(document.querySelectorAll('#decisions tbody a')).map(a => a.href)")
    assert len(hrefs) == len(decisions)
    page.open(hrefs[-1])
    assert page.evaluate("document.querySelector('h1').innerText").startswith("Promotion")
    assert page.errors() == []


def many_decisions(n: int) -> list:
    """``n`` decisions across 40 systems and every outcome of the spread store, one every 7 minutes."""
    from datetime import timedelta

    from tests.audit_support import decision
    from tests.conftest import NOW

    kinds = [decision(k, commit=f"{i:040x}") for i, k in enumerate(("promoted", "blocked", "expired", "error_without_checklist"))]
    out = []
    for i in range(n):
        d = kinds[(i // 40) % len(kinds)]
        at = NOW - timedelta(minutes=7 * i)
        req = d.request.model_copy(update={"system": f"system-{i % 40:02d}", "commit": f"{i:040x}", "requested_at": at - timedelta(minutes=30)})
        out.append(d.model_copy(update={"decision_id": f"system-{i % 40:02d}-{i:07x}", "request": req, "decided_at": at}))
    return out


def test_the_index_serves_ten_thousand_decisions(page, tmp_path) -> None:
    from datetime import datetime, timezone

    from promotion_gate.audit_store.index_build import write_index
    from promotion_gate.notifications.index_data import IndexData

    decisions = many_decisions(10_000)
    data = IndexData()
    for d in decisions:
        data.add(d)
    root = tmp_path / "big"
    root.mkdir()
    assert write_index(root, data, generated_at=datetime(2026, 11, 24, tzinfo=timezone.utc),
                       verification={"ok": True, "summary": "test", "head": "0" * 64, "entries": 10_000}) == 10_000
    assert (root / "index.html").stat().st_size < 300_000 and len(list((root / "data").glob("page-*.js"))) == 10
    page.open((root / "index.html").as_uri())
    assert shown(page) == 10_000 and page.evaluate(VISIBLE_ROWS) == 100
    expect = sum(d.request.system == "system-07" for d in decisions)
    assert set_filter(page, "filter-system", "system-07") == 100 and shown(page) == expect == 250
    blocked = sum(d.request.system == "system-07" and d.verdict.value == "blocked" for d in decisions)
    assert set_filter(page, "filter-verdict", "blocked") == min(blocked, 100) and shown(page) == blocked
    rows = page.evaluate("Array.from(document.querySelectorAll('#decisions tbody tr')).map(r => r.dataset.system + '/' + r.dataset.verdict)")
    assert set(rows) == {"system-07/blocked"}
    page.evaluate("document.getElementById('filter-reset').click()")
    since = sorted(d.decided_at.date().isoformat() for d in decisions)[-1000]
    assert set_filter(page, "filter-from", since) > 0
    assert shown(page) == sum(d.decided_at.date().isoformat() >= since for d in decisions)
    page.evaluate("document.getElementById('filter-reset').click()")
    page.evaluate("document.getElementById('page-next').click()")
    page.evaluate("PG.settled()")
    second = page.evaluate("document.querySelector('#decisions tbody td').textContent")
    assert second == decisions[100].decided_at.strftime("%Y-%m-%d %H:%M")  # newest first, the second view of 100
    assert page.errors() == []
    assert [u for u in page.requests() if not u.startswith(("file:", "data:"))] == []
