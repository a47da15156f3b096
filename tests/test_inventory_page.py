"""The inventory page of the auditor's index (STORE/inventory.html, linked from index.html): per
system the latest promotion in the ledger, its lock facts and the latest re-certification of that
promotion -> status with reasons; projected monthly cost per system, owner and provider; hostile
manifest text shown as text; one self-contained page (no script, no external asset)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest

from promotion_gate.checklists.decision import Verdict, build_lock
from promotion_gate.checklists.findings import Finding, Recertification, RecertStatus
from promotion_gate.checklists.recertification import build_recertification_decision
from promotion_gate.checklists.store_inventory import StoreInventoryData
from promotion_gate.audit_store.store import AuditStore
from tests.audit_support import HOSTILE, NOW, commit_of, decision, hostile_manifest, signing_key
from tests.conftest import ROOT

KEY = signing_key("inventory-page")


def shifted(d, days: int):
    shift = timedelta(days=days)
    return d.model_copy(update={"decided_at": d.decided_at - shift,
                                "request": d.request.model_copy(update={"requested_at": d.request.requested_at - shift})})


def recert(promoted, status: RecertStatus | None, days_after: int, policy: str = "2026.12.1"):
    """A recorded re-certification of `promoted`: no finding (current) or one finding of `status`."""
    lock = build_lock(promoted)
    findings = [] if status is None else [Finding(
        id="PG-RECERT-002" if status == RecertStatus.out_of_policy else "PG-RECERT-004",
        title="t", reason="openai may no longer receive internal" if status == RecertStatus.out_of_policy else "approved 120 days ago",
        status=status, blocking=status == RecertStatus.out_of_policy)]
    on = promoted.decided_at + timedelta(days=days_after)
    rc = Recertification(system=promoted.request.system, repository=promoted.request.repository, lock_sha256="d" * 64,
                         approved_decision=lock.decision_id, approved_policy_version=lock.policy_version,
                         policy_version=policy, policy_digest="e" * 64, on=on.date(), findings=findings)
    return build_recertification_decision(rc, lock.source_commit, on)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """helpdesk-summarizer promoted twice (the older one re-certified out of policy, the newer one due);
    support-assistant promoted with hostile text in its manifest, never re-certified; loan-prescreener only blocked."""
    old = shifted(decision("promoted", commit=commit_of("helpdesk-old")), 30)
    new = shifted(decision("promoted", commit=commit_of("helpdesk-new")), 10)
    hostile = shifted(decision("waived", system="support-assistant", manifest=hostile_manifest(), commit=commit_of("hostile")), 5)
    blocked = decision("blocked", system="loan-prescreener", commit=commit_of("loan"))
    assert {d.verdict for d in (old, new, hostile)} == {Verdict.promoted} and blocked.verdict != Verdict.promoted
    recorded = [old, new, hostile, blocked, recert(old, RecertStatus.out_of_policy, 5), recert(new, None, 1, "2026.11.9"),
                recert(new, RecertStatus.due, 8)]
    root = tmp_path_factory.mktemp("inv") / "store"
    store = AuditStore(root, KEY)
    for d in [new, *recorded[2:], old]:  # out of ledger time order: the newest promotion still wins
        store.record(d)
    out = subprocess.run([sys.executable, "-m", "promotion_gate.cli", "audit", "index", str(root)], cwd=ROOT,
                         capture_output=True, text=True)
    assert (root / "inventory.html").exists(), out.stderr
    return root, {"old": old, "new": new, "hostile": hostile, "recerts": recorded[4:]}, (root / "inventory.html").read_text()


class Rows(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.scripts, self.links, self.external = {}, 0, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-system" in a:
            self.rows[a["data-system"]] = a["data-status"]
        if tag == "script":
            self.scripts += 1
        if tag == "a":
            self.links.append(a.get("href"))
        for name in ("src", "href"):
            if re.match(r"^(https?:)?//", a.get(name) or ""):
                self.external.append(a[name])


def parsed(html: str) -> Rows:
    p = Rows()
    p.feed(html)
    return p


def test_one_row_per_system_in_production_with_the_latest_recertification_status(store):
    _, d, html = store
    p = parsed(html)
    assert p.rows == {"helpdesk-summarizer": "recertification-due", "support-assistant": "current"}
    assert "PG-RECERT-004: approved 120 days ago" in html
    assert "openai may no longer receive internal" not in html  # that judged the older promotion, not production
    assert f"decisions/{d['new'].decision_id}/report.html" in p.links and f"decisions/{d['old'].decision_id}/report.html" not in p.links
    due = d["recerts"][2]
    assert f"decisions/{due.decision_id}/report.html" in p.links  # the latest re-certification of this promotion
    assert "not yet re-certified: current as approved" in html  # support-assistant


def test_cost_per_system_owner_and_provider(store):
    _, d, html = store
    data = StoreInventoryData()
    for x in (d["old"], d["new"], d["hostile"], *d["recerts"]):
        data.add(x)
    inv = data.build(NOW.date())
    by_system = {r.row.system: r.row for r in inv.rows}
    helpdesk = by_system["helpdesk-summarizer"]
    assert helpdesk.projected_monthly_usd == pytest.approx(build_lock(d["new"]).cost.projected_monthly_usd, abs=0.01)
    assert inv.cost.unknown == ["support-assistant"]  # its manifest declares no monthly volume: unknown, never $0
    assert inv.cost.by_provider == {"openai": helpdesk.projected_monthly_usd}
    assert inv.cost.by_owner == {helpdesk.owner: helpdesk.projected_monthly_usd}
    assert inv.cost.total_monthly_usd == pytest.approx(sum(inv.cost.by_owner.values()), abs=0.01)
    for table in ("cost-by-owner", "cost-by-provider", "cost-total"):
        assert f'id="{table}"' in html
    assert "openai" in html.split('id="cost-by-provider"')[1] and "unknown for support-assistant" in html


def test_hostile_manifest_text_is_shown_as_text(store):
    _, _, html = store
    p = parsed(html)
    assert p.scripts == 0 and p.external == []  # self-contained, offline, nothing runs
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="http://evil.example"' not in html
    assert "{{ 7*7 }}" in html or "{{ 7*7 }}".replace("{", "&#123;") in html  # not evaluated by the template
    assert "49" not in html.split("alert(1)")[1][:40]


def test_the_index_links_the_inventory(store):
    root, _, _ = store
    index = (root / "index.html").read_text()
    assert '<a href="inventory.html" id="inventory-link">' in index


def test_an_empty_store_has_an_empty_inventory(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    from datetime import datetime, timezone

    from promotion_gate.audit_store.index_build import read_index_data, write_index

    data, problems = read_index_data(root)
    write_index(root, data, generated_at=datetime(2026, 12, 1, tzinfo=timezone.utc), verification={"ok": True, "summary": "empty", "head": "-", "entries": 0, "states": []})
    html = (root / "inventory.html").read_text()
    assert "No promotion is recorded in this store." in html and parsed(html).rows == {}


def test_a_recertification_before_the_promotion_it_names_cannot_exist_and_an_unknown_one_is_ignored():
    promoted = decision("promoted", commit=commit_of("x"))
    stray = recert(decision("promoted", commit=commit_of("other")), RecertStatus.out_of_policy, 1)
    data = StoreInventoryData()
    data.add(stray)
    data.add(promoted)
    inv = data.build(date(2026, 12, 1))
    assert [(r.row.system, r.row.status.value, r.recertification_id) for r in inv.rows] == [("helpdesk-summarizer", "current", None)]
