"""The inventory of production: golden outputs (table, JSON, CSV) on the example repository after
the demo's promotions are merged, and the rows' facts, totals and statuses."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from promotion_gate.checklists.inventory import build_inventory
from promotion_gate.checklists.policy import parse_policy
from promotion_gate.checklists.policy_diff import diff_policies
from promotion_gate.notifications.policy_diff_text import render_diff_text
from promotion_gate.local_repo.inventory import read_local_systems
from promotion_gate.config.policy_source import load_policy
from promotion_gate.notifications.inventory_render import render_inventory_csv, render_inventory_json, render_inventory_table
from tests.conftest import ROOT

GOLDEN = Path(__file__).resolve().parent / "golden"
POLICY_YAML = (ROOT / "checklists" / "policy" / "policy.yaml").read_text()


@pytest.fixture(scope="module")
def production(tmp_path_factory, prefect_harness):
    """The example repository after the demo: every promotion branch merged into main (as its PR would be)."""
    from datetime import datetime, timezone

    from promotion_gate.checklists.decision import PromotionRequest
    from promotion_gate.cli.demo import SYSTEMS, build_example_repo
    from promotion_gate.flows.promotion import promotion_gate

    base = tmp_path_factory.mktemp("inventory")
    repo, store = base / "repo", base / "store"
    commit = build_example_repo(repo, datetime.now(timezone.utc))
    for system, approvals in SYSTEMS:
        request = PromotionRequest(repository=str(repo), system=system, commit=commit, requester="dana-dev",
                                   requested_at=datetime.now(timezone.utc))
        promotion_gate(request, approvals=approvals, store=str(store))
    env = {**os.environ, "GIT_AUTHOR_NAME": "Platform", "GIT_AUTHOR_EMAIL": "platform@example.com",
           "GIT_COMMITTER_NAME": "Platform", "GIT_COMMITTER_EMAIL": "platform@example.com"}
    branches = subprocess.run(["git", "-C", str(repo), "branch", "--list", "promote/*", "--format=%(refname:short)"],
                              check=True, capture_output=True, text=True).stdout.split()
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "main"], check=True, env=env)
    for branch in branches:
        subprocess.run(["git", "-C", str(repo), "merge", "-q", "--no-edit", branch], check=True, env=env)
    systems = read_local_systems(str(repo), "main", store=str(store))
    today = max(s.lock.promoted_at for s in systems).date()  # the day of the promotions: ages are 0 days
    return repo, systems, today


def store_of(repo: Path) -> Path:
    """The audit store the fixture's promotions were recorded in (its demo key is beside it)."""
    return repo.parent / "store"


def inventory_json(repo: Path, *extra: str, env: dict | None = None) -> tuple[dict, str]:
    import json

    out = subprocess.run([str(ROOT / ".venv" / "bin" / "promotion-gate"), "inventory", str(repo), "--format", "json", *extra],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return {r["system"]: (r["status"], [f.split(":")[0] for f in r["findings"]]) for r in json.loads(out.stdout)["rows"]}, out.stderr


def production_clone(repo: Path, tmp_path: Path, edit) -> Path:
    """A clone of the fixture's production repository with ``edit(clone)`` committed on main."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    edit(clone)
    env = {**os.environ, "GIT_AUTHOR_NAME": "Insider", "GIT_AUTHOR_EMAIL": "insider@example.com",
           "GIT_COMMITTER_NAME": "Insider", "GIT_COMMITTER_EMAIL": "insider@example.com"}
    subprocess.run(["git", "-C", str(clone), "commit", "-qam", "edit production", "--allow-empty"], check=True, env=env)
    return clone


def _set(clone: Path, system: str, **fields):
    import json

    path = clone / "ai-systems" / system / "production.lock.json"
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data, indent=2))


def _copy_lock(clone: Path, source: str, target: str):
    (clone / "ai-systems" / target / "production.lock.json").write_bytes(
        (clone / "ai-systems" / source / "production.lock.json").read_bytes())


def _resign(clone: Path, system: str):
    """The lock re-signed by an insider's own key, its approvers changed: a well-formed, signed lock."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from promotion_gate.checklists.attestation import key_id
    from promotion_gate.checklists.candidate import parse_lock
    from promotion_gate.checklists.lock_guard import build_signed_lock

    path = clone / "ai-systems" / system / "production.lock.json"
    lock = parse_lock(path.read_bytes(), str(path)).model_copy(update={"approved_by": ["cto"]})
    key = Ed25519PrivateKey.generate()
    path.write_bytes(build_signed_lock(lock, key, key_id(key.public_key())))


# How an insider or a careless operator would have the inventory list a lock the gate did not write
# as a governed, current system: each lock reaches the production branch past the lock guard.
LOCK_ATTACKS = [
    ("a hand edit of the approvers", lambda c: _set(c, "helpdesk-summarizer", approved_by=["cto"]), "helpdesk-summarizer"),
    ("a hand edit of the policy version", lambda c: _set(c, "helpdesk-summarizer", policy_version="2099.1"), "helpdesk-summarizer"),
    ("the lock copied from another system", lambda c: _copy_lock(c, "support-assistant", "helpdesk-summarizer"), "helpdesk-summarizer"),
    ("the lock re-signed with another key", lambda c: _resign(c, "support-assistant"), "support-assistant"),
]


@pytest.mark.parametrize("how,edit,system", LOCK_ATTACKS, ids=[a[0] for a in LOCK_ATTACKS])
def test_inventory_cli_puts_a_lock_the_gate_did_not_write_out_of_policy(production, tmp_path, how, edit, system):
    repo, _, _ = production
    before, _ = inventory_json(repo, "--store", str(store_of(repo)))
    assert before[system] == ("current", [])
    clone = production_clone(repo, tmp_path, edit)
    after, _ = inventory_json(clone, "--store", str(store_of(repo)))
    assert after[system][0] == "out-of-policy" and "PG-RECERT-007" in after[system][1], (how, after)
    table = subprocess.run([str(ROOT / ".venv" / "bin" / "promotion-gate"), "inventory", str(clone), "--store", str(store_of(repo))],
                           capture_output=True, text=True).stdout
    assert "cto" not in table and "by nobody known (the lock is not one the gate wrote" in table, table  # its approvers are a claim
    assert all(v == ("current", []) for k, v in after.items() if k != system), after  # the others still verify


def test_inventory_cli_without_the_ledger_or_a_key_verifies_nothing(production, tmp_path):
    """No ledger (the wrong --store) or no key: no lock can be shown to be the gate's, so none is current."""
    repo, _, _ = production
    rows, _ = inventory_json(repo, "--store", str(tmp_path / "empty-store"))
    assert {k: v[0] for k, v in rows.items()} == {k: "out-of-policy" for k in rows} and all("PG-RECERT-007" in v[1] for v in rows.values())
    other = tmp_path / "other.pub.pem"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from promotion_gate.checklists.attestation import public_pem

    other.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    rows, said = inventory_json(repo, "--store", str(store_of(repo)), "--key", str(other))
    assert all(v[0] == "out-of-policy" and "PG-RECERT-007" in v[1] for v in rows.values()) and "1 pinned key" in said


def normalise(text: str, repo: Path) -> str:
    text = text.replace(str(repo.resolve()), "<repo>")
    text = re.sub(r"\b([a-z-]+)-[0-9a-f]{7}-[0-9a-f]{10}\b", r"\1-<sha7>-<id>", text)
    text = re.sub(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?", "<time>", text)
    return re.sub(r"(?<![-\w])\d{4}-\d{2}-\d{2}\b", "<date>", text)


@pytest.mark.parametrize("fmt,render", [("table", render_inventory_table), ("json", render_inventory_json),
                                        ("csv", render_inventory_csv)])
def test_golden_inventory_of_the_example_repository(production, fmt, render):
    repo, systems, today = production
    out = normalise(render(build_inventory(systems, load_policy(), today)), repo)
    golden = GOLDEN / f"inventory.{'txt' if fmt == 'table' else fmt}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(out)
    assert out == golden.read_text()


def test_one_row_per_system_in_production(production):
    _, systems, today = production
    inv = build_inventory(systems, load_policy(), today)
    rows = {r.system: r for r in inv.rows}
    assert set(rows) == {"helpdesk-summarizer", "support-assistant"}  # loan-prescreener was blocked
    s = rows["support-assistant"]
    assert (s.owner, s.escalation, s.tier, s.provider, s.model, s.version) == (
        "@acme/support-ai", "support-ai-oncall@example.com", "high", "anthropic", "claude-sonnet-4", "claude-sonnet-4-20250514")
    assert s.approved_by == ["rene", "sam"] and s.status.value == "current" and s.approval_age_days == 0
    assert s.projected_monthly_usd == pytest.approx((80 * 3 + 40 * 15) / 1e6 * 150000, rel=0.05)
    assert inv.cost.by_owner["@acme/support-ai"] == s.projected_monthly_usd
    assert set(inv.cost.by_provider) == {"anthropic", "openai"}


def policy_with(edit):
    data = yaml.safe_load(POLICY_YAML)
    edit(data)
    return parse_policy(yaml.safe_dump(data).encode(), "new-policy.yaml")


def test_status_ages_with_the_day(production):
    _, systems, today = production
    inv = build_inventory(systems, load_policy(), today + timedelta(days=91))
    statuses = {r.system: (r.status.value, [f.split(":")[0] for f in r.findings]) for r in inv.rows}
    assert statuses["support-assistant"] == ("recertification-due", ["PG-RECERT-004", "PG-RECERT-005", "PG-RECERT-005"])
    assert statuses["helpdesk-summarizer"] == ("current", [])


def test_tampered_lock_is_out_of_policy_never_current(production, tmp_path):
    from promotion_gate.forge.production_reader import build_system

    repo, systems, today = production
    good = next(s for s in systems if s.system == "helpdesk-summarizer")
    lock = good.lock.model_copy(update={"manifest_sha256": "0" * 64}).model_dump_json().encode()
    from promotion_gate.local_repo.git import LocalRepo

    tampered = build_system(str(repo), "helpdesk-summarizer", lock, LocalRepo(repo).read)
    row = build_inventory([tampered], load_policy(), today).rows[0]
    assert row.status.value == "out-of-policy"
    assert row.findings == ["PG-RECERT-006: ai-systems/helpdesk-summarizer/promotion.yaml at "
                            f"{good.lock.source_commit[:12]} does not hash to the lock's manifest_sha256"]


def drop_pii(data):
    data["providers"]["anthropic"]["data_classes"] = ["public", "internal", "confidential", "health"]


def test_policy_diff_lists_the_systems_a_change_puts_out_of_policy(production):
    _, systems, today = production
    old, new = load_policy(), policy_with(drop_pii)
    diff = diff_policies(old, new, systems, today)
    assert [(i.system, i.before.value, i.after.value, [f.id for f in i.new_findings]) for i in diff.worsened] == [
        ("support-assistant", "current", "out-of-policy", ["PG-RECERT-002"])]
    assert "anthropic may no longer receive pii" in render_diff_text(diff)
    back = diff_policies(new, old, systems, today)
    assert back.worsened == [] and [i.system for i in back.impacts] == ["support-assistant"]


def test_policy_diff_of_an_unchanged_policy_is_empty(production):
    _, systems, today = production
    diff = diff_policies(load_policy(), load_policy(), systems, today)
    assert diff.impacts == [] and "no production system gains a finding" in render_diff_text(diff)


def test_policy_diff_cli(production, tmp_path):
    repo, _, _ = production
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump(yaml.safe_load(POLICY_YAML) | {"version": "2026.12.1"}))
    data = yaml.safe_load(POLICY_YAML)
    drop_pii(data)
    worse = tmp_path / "worse.yaml"
    worse.write_text(yaml.safe_dump(data))
    old = str(ROOT / "checklists" / "policy" / "policy.yaml")
    cli = [str(ROOT / ".venv" / "bin" / "promotion-gate"), "policy", "diff", old]
    at = ["--inventory", str(repo), "--store", str(store_of(repo))]
    same = subprocess.run(cli + [str(new)] + at, capture_output=True, text=True)
    assert same.returncode == 0, same.stderr
    out = subprocess.run(cli + [str(worse)] + at, capture_output=True, text=True)
    assert out.returncode == 1 and "support-assistant: current -> out-of-policy" in out.stdout
    bad = subprocess.run(cli + [str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_inventory_cli_formats(production):
    repo, _, _ = production
    exe = str(ROOT / ".venv" / "bin" / "promotion-gate")
    for fmt in ("table", "json", "csv"):
        out = subprocess.run([exe, "inventory", str(repo), "--format", fmt, "--store", str(store_of(repo))],
                             capture_output=True, text=True)
        assert out.returncode == 0 and "support-assistant" in out.stdout, out.stderr
        assert "policy: the embedded policy" in out.stderr and "the DEMO key" in out.stderr
    missing = subprocess.run([exe, "inventory", str(repo / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.splitlines()[-1].startswith("error:") and "Traceback" not in missing.stderr


def _lock_bytes(good, **cost) -> bytes:
    """``good``'s lock with its cost fields changed and a manifest_sha256 that pins nothing (the manifest
    is not loaded, so the lock's own volume is what a projection would use), as JSON text."""
    import json

    data = good.lock.model_dump(mode="json") | {"manifest_sha256": "0" * 64}
    data["cost"] = (data["cost"] or {}) | cost
    return json.dumps(data).encode()


# A lock's cost fields as an insider or a broken writer could leave them: each must be a problem on
# the system (PG-RECERT-006, out of policy) or, for a finite lock whose projection is not a number
# (1e308 a request), a cost the inventory calls unknown; never a crash, "$inf", "$-..." or Infinity.
LOCK_COST_ATTACKS = [
    ("requests 1 followed by 400 zeros", {"expected_monthly_requests": 10**400}, "cost.expected_monthly_requests"),
    ("requests above the manifest's cap", {"expected_monthly_requests": 10**12 + 1}, "cost.expected_monthly_requests"),
    ("negative requests", {"expected_monthly_requests": -1}, "cost.expected_monthly_requests"),
    ("negative cost per request", {"cost_per_request_usd": -100.0}, "cost.cost_per_request_usd"),
    ("negative projected month", {"projected_monthly_usd": -5.0}, "cost.projected_monthly_usd"),
    ("1e308 a request", {"cost_per_request_usd": 1e308, "expected_monthly_requests": 10**12}, None),
]


@pytest.mark.parametrize("how,cost,field", LOCK_COST_ATTACKS, ids=[a[0] for a in LOCK_COST_ATTACKS])
def test_a_lock_with_impossible_cost_is_a_problem_never_a_crash(production, how, cost, field):
    from promotion_gate.forge.production_reader import build_system
    from promotion_gate.local_repo.git import LocalRepo

    repo, systems, today = production
    good = next(s for s in systems if s.system == "support-assistant")
    bad = build_system(str(repo), "support-assistant", _lock_bytes(good, **cost), LocalRepo(repo).read)
    inv = build_inventory([bad, *(s for s in systems if s.system != "support-assistant")], load_policy(), today)
    row = next(r for r in inv.rows if r.system == "support-assistant")
    assert row.status.value == "out-of-policy" and row.projected_monthly_usd is None, (how, row)
    assert "support-assistant" in inv.cost.unknown and inv.cost.total_monthly_usd == 0.72
    if field is not None:
        assert bad.lock is None and any(field in p for p in bad.problems), bad.problems
        assert any(f.startswith("PG-RECERT-006") and field in f for f in row.findings), row.findings
    for render in (render_inventory_table, render_inventory_json, render_inventory_csv):
        out = render(inv)
        assert not re.search(r"\$-|\$inf|inf\b|Infinity|NaN", out, re.IGNORECASE), (how, render.__name__, out)


@pytest.mark.parametrize("how,cost,field", LOCK_COST_ATTACKS[:1] + LOCK_COST_ATTACKS[3:4], ids=[a[0] for a in LOCK_COST_ATTACKS[:1] + LOCK_COST_ATTACKS[3:4]])
def test_inventory_cli_lists_a_lock_with_impossible_cost_as_a_problem(production, tmp_path, how, cost, field):
    repo, systems, _ = production
    good = next(s for s in systems if s.system == "support-assistant")
    path = lambda c: c / "ai-systems" / "support-assistant" / "production.lock.json"  # noqa: E731
    clone = production_clone(repo, tmp_path, lambda c: path(c).write_bytes(_lock_bytes(good, **cost)))
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "promotion-gate"), "inventory", str(clone), "--store", str(store_of(repo))],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "Traceback" not in out.stderr, (how, out.stderr)
    assert f"! PG-RECERT-006: ai-systems/support-assistant/production.lock.json: {field}:" in out.stdout, out.stdout
    assert "$-" not in out.stdout and "projected monthly cost: $0.72 (unknown for support-assistant)" in out.stdout, out.stdout


def test_inventory_cli_says_one_line_when_building_or_rendering_fails(production, monkeypatch, capsys):
    """Whatever the inventory's build or rendering raises is one ``error:`` line and exit 2, never a traceback."""
    from promotion_gate.cli import inventory as cli

    repo, systems, _ = production

    def overflow(*_):
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(cli, "read_systems", lambda *a, **k: systems)
    monkeypatch.setattr(cli, "build_inventory", overflow)
    code = cli.run_inventory(str(repo), github=None, fmt="table", policy=None, production_branch=None, store=None)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1] == "error: could not build the inventory: OverflowError: int too large to convert to float", err


# A lock the gate did not write (``unverified``: its signature, ledger entry or content fails) is no
# source of fact: its claimed approvers are not shown, and its claimed cost feeds no total.
UNVERIFIED = [
    ("approvers hand-edited into the lock", "support-assistant", {"approved_by": ["cto"]}, []),
    ("the ledger's approvers of the decision an unverified lock names", "support-assistant", {"approved_by": []}, ["rene", "sam"]),
    ("a cost claimed by an unverified lock", "helpdesk-summarizer", {}, []),
]


@pytest.mark.parametrize("how,system,lock_update,approvers", UNVERIFIED, ids=[u[0] for u in UNVERIFIED])
def test_an_unverified_lock_feeds_no_total_and_names_no_approver(production, how, system, lock_update, approvers):
    _, systems, today = production
    s = next(x for x in systems if x.system == system)
    forged = s.model_copy(update={"lock": s.lock.model_copy(update=lock_update), "approvers": approvers,
                                  "unverified": "its signature is by no trusted key"})
    inv = build_inventory([forged, *(x for x in systems if x.system != system)], load_policy(), today)
    row = next(r for r in inv.rows if r.system == system)
    assert row.status.value == "out-of-policy" and any(f.startswith("PG-RECERT-007") for f in row.findings)
    assert row.approved_by == [] and row.projected_monthly_usd is None, (how, row)
    assert inv.cost.unknown == [system] and system not in "".join(inv.cost.by_owner)
    table = render_inventory_table(inv).split(f"\n{system} ")[1].split("\n    evaluations")[0]
    assert "approved " in table and not re.search(r"\bby (cto|rene|sam)\b", table), table


def deprecate_and_block(blocking):
    """support-assistant's model deprecated since 2026-01-01 (PG-RECERT-001), and ``blocking`` the policy's list."""
    def edit(data):
        data["providers"]["anthropic"]["deprecated"] = {"claude-sonnet-4-20250514": "2026-01-01"}
        data["recertification"]["blocking"] = blocking
    return edit


# Only a finding's blocking status changes: its id and reason are the same under both policies, but
# whether support-assistant's next promotion is blocked (PG-RECERT-010) is not.
BLOCKING_CHANGES = [
    ("the finding becomes blocking", ["PG-RECERT-002"], ["PG-RECERT-001", "PG-RECERT-002"], True,
     "PG-RECERT-001 now blocks the next promotion"),
    ("the finding stops blocking", ["PG-RECERT-001", "PG-RECERT-002"], ["PG-RECERT-002"], False,
     "PG-RECERT-001 no longer blocks the next promotion"),
]


@pytest.mark.parametrize("how,old,new,worse,says", BLOCKING_CHANGES, ids=[b[0] for b in BLOCKING_CHANGES])
def test_policy_diff_sees_a_finding_whose_blocking_changes(production, how, old, new, worse, says):
    _, systems, today = production
    diff = diff_policies(policy_with(deprecate_and_block(old)), policy_with(deprecate_and_block(new)), systems, today)
    assert [i.system for i in diff.impacts] == ["support-assistant"], (how, diff.impacts)
    assert [i.system for i in diff.worsened] == (["support-assistant"] if worse else []), how
    i = diff.impacts[0]
    assert (i.new_findings, i.resolved_findings) == ([], [])  # the same finding: its blocking changed, nothing else
    assert [f.id for f in (i.newly_blocking if worse else i.no_longer_blocking)] == ["PG-RECERT-001"]
    text = render_diff_text(diff)
    assert says in text and ("no production system gains a finding" in text) != worse, text


# A manifest's owner and tool names as a team could write them: the table shows each control as text
# and keeps one line per row; the CSV, a spreadsheet's input, never starts a cell with a formula.
#   (payload, as the table shows it, as the CSV's owner cell holds it)
HOSTILE_CELLS = [
    ("\x1b[31m@acme/red\x1b[0m", "\\x1b[31m@acme/red\\x1b[0m", "\\x1b[31m@acme/red\\x1b[0m"),
    ("@acme/a\rPAID", "@acme/a\\x0dPAID", "'@acme/a\\x0dPAID"),
    ("@acme/a\nSYSTEM  current", "@acme/a\\nSYSTEM  current", "'@acme/a\nSYSTEM  current"),
    ('=HYPERLINK("https://evil.example","open")', '=HYPERLINK("https://evil.example","open")', '\'=HYPERLINK("https://evil.example","open")'),
    ("+cmd|' /C calc'!A0", "+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("@SUM(A1:A9)", "@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("-2+3", "-2+3", "'-2+3"),
]


@pytest.mark.parametrize("payload,shown,cell", HOSTILE_CELLS, ids=[repr(h[0])[:30] for h in HOSTILE_CELLS])
def test_inventory_shows_manifest_text_never_obeys_it(production, payload, shown, cell):
    import csv
    import io

    from promotion_gate.checklists.inventory import ToolRow

    _, systems, today = production
    inv = build_inventory(systems, load_policy(), today)
    plain_lines = len(render_inventory_table(inv).splitlines())
    rows = [r.model_copy(update={"owner": payload, "tools": [ToolRow(name=payload, permission="read")]}) for r in inv.rows]
    hostile = inv.model_copy(update={"rows": rows})
    table = render_inventory_table(hostile)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", table) and len(table.splitlines()) == plain_lines, table
    assert f"tools {shown} (read)" in table and f"  {shown}" in table, table
    records = list(csv.DictReader(io.StringIO(render_inventory_csv(hostile))))
    assert len(records) == len(rows) and all(r["owner"] == cell for r in records), records
    assert all(r["tools"][:1] not in "=+-@\t\r" or r["tools"][:1] == "" for r in records) and all(
        r["tools"] == cell + ":read" for r in records), records
