"""The `recertify` flow under Prefect's harness against the fake GitHub and Slack: the issue is
opened once, edited in place, closed when resolved; a second run on the same day records nothing;
GitHub or Slack down still ends in a recorded decision."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from promotion_gate.checklists.decision import Decision
from tests.conftest import NOW, ROOT
from tests.fakes import FakeGitHub
from tests.fakes.fake_slack import FakeSlack
from tests.github_support import REPO, gate_env, system_files

SYSTEM = "support-assistant"
POLICY_YAML = (ROOT / "checklists" / "policy" / "policy.yaml").read_text()
MARKER = f"<!-- promotion-gate:recertify:{SYSTEM} -->"


def production_repo(fake: FakeGitHub, store: Path) -> str:
    """acme/models: the system's files on `sandbox`; on main, the lock the gate wrote for its promoted
    decision (judged, signed off by sam and rene, recorded in `store`, signed with the store's key)."""
    from promotion_gate.audit_store.lock_signing import build_signed_lock_file
    from promotion_gate.audit_store.store import AuditStore
    from promotion_gate.checklists.decision import build_lock
    from tests.audit_support import decision
    from tests.github_support import request_for

    fake.create_repo(REPO)
    files = system_files(SYSTEM, NOW)
    source = fake.commit_files(REPO, "sandbox", files, "Add the support assistant", author_login="dana")
    promoted = decision("promoted", system=SYSTEM, commit=source)
    promoted = promoted.model_copy(update={"request": request_for(source, 1, SYSTEM),
                                           "checklist": promoted.checklist.model_copy(update={"commit": source})})
    assert promoted.verdict.value == "promoted" and hashlib.sha256(files[f"ai-systems/{SYSTEM}/promotion.yaml"]).hexdigest() \
        == promoted.checklist.manifest_sha256
    AuditStore(store).record(promoted)
    lock = build_signed_lock_file(build_lock(promoted), str(store))
    fake.commit_files(REPO, "main", {f"ai-systems/{SYSTEM}/production.lock.json": lock},
                      "Promote the support assistant", author_login="promotion-gate-bot")
    return source


def hand_written_lock(fake: FakeGitHub, source: str) -> None:
    """The same system's lock as someone writes it by hand and merges past the lock guard."""
    manifest = system_files(SYSTEM, NOW)[f"ai-systems/{SYSTEM}/promotion.yaml"]
    lock = {"schema_version": 1, "system": SYSTEM, "source_commit": source,
            "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
            "model": "anthropic/claude-sonnet-4@claude-sonnet-4-20250514",
            "evidence": [{"path": "evals/promptfoo.json", "format": "promptfoo", "sha256": "a" * 64,
                          "metrics": {"pass_rate": 0.995}, "samples": {"pass_rate": 400}, "produced_at": NOW.isoformat()}],
            "decision_id": f"{SYSTEM}-{source[:7]}-0123456789", "policy_version": "2026.11.1",
            "policy_digest": "b" * 64, "promoted_at": NOW.isoformat(), "approved_by": ["rene", "sam"]}
    fake.commit_files(REPO, "main", {f"ai-systems/{SYSTEM}/production.lock.json": json.dumps(lock, indent=2) + "\n"},
                      "Promote by hand", author_login="mallory")


def write_policy(path: Path, *edits) -> None:
    data = yaml.safe_load(POLICY_YAML)
    for edit in edits:
        edit(data)
    path.write_text(yaml.safe_dump(data))


def drop_pii(data):
    data["providers"]["anthropic"]["data_classes"] = ["public", "internal", "confidential", "health"]


def raise_floor(data):
    data["tiers"]["high"]["metric_floors"] = {"pass_rate": {"min": 0.999}}


@pytest.fixture
def env(fake_github, fake_slack, monkeypatch, tmp_path, prefect_harness):
    gate_env(monkeypatch, fake_github, tmp_path / "store")
    policy = tmp_path / "policy.yaml"
    write_policy(policy)
    for name, value in {"POLICY_PATH": str(policy), "SLACK_API_URL": fake_slack.base_url,
                        "SLACK_BOT_TOKEN": FakeSlack.BOT_TOKEN, "SLACK_RETRIES": "0",
                        "SLACK_RETRY_BACKOFF_SECONDS": "0", "RECERTIFY_REPOSITORIES": json.dumps([REPO])}.items():
        monkeypatch.setenv(f"PROMOTION_GATE_{name}", value)
    fake_slack.add_channel("C0SUPPORT", "support-ai-oncall")
    source = production_repo(fake_github, tmp_path / "store")
    return {"source": source, "store": tmp_path / "store", "policy": policy, "github": fake_github, "slack": fake_slack}


def run(on=None):
    from promotion_gate.flows.recertify import recertify_production

    return recertify_production(on=(on or NOW).date())


def gate_issues(fake: FakeGitHub) -> list:
    repo = fake.state.repo(REPO)
    return [i for i in repo.issues.values() if i.pull is None and (i.body or "").startswith(MARKER)]


def ledger(store: Path) -> list[dict]:
    """The re-certifications on record (not the promotion `production_repo` recorded)."""
    path = store / "ledger.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [e for e in entries if e["verdict"] != "promoted"]


def decision(store: Path, decision_id: str) -> Decision:
    return Decision.model_validate_json((store / "decisions" / decision_id / "decision.json").read_bytes())


def test_out_of_policy_opens_one_issue_updates_it_in_place_and_closes_it_when_resolved(env):
    store, fake, slack = env["store"], env["github"], env["slack"]
    [first] = run()
    assert first.status == "current" and first.recorded
    assert gate_issues(fake) == [] and slack.messages("C0SUPPORT") == []
    assert decision(store, first.decision_id).kind == "recertification"

    write_policy(env["policy"], drop_pii)                       # the vendor loses pii
    [out] = run()
    assert out.status == "out-of-policy" and out.recorded
    [issue] = gate_issues(fake)
    assert issue.state == "open" and "PG-RECERT-002" in issue.body and issue.user == "promotion-gate-bot"
    assert "PG-RECERT-002" in slack.messages("C0SUPPORT")[-1]["text"]
    d = decision(store, out.decision_id)
    assert d.verdict.value == "out-of-policy" and d.recertification.findings[0].id == "PG-RECERT-002"
    assert any(e.event == f"issue: #{issue.number} opened" for e in d.timeline)

    lines, messages = len(ledger(store)), len(slack.messages("C0SUPPORT"))
    [again] = run()                                             # same day, same policy, same lock
    assert not again.recorded and again.decision_id == out.decision_id
    assert len(ledger(store)) == lines and len(slack.messages("C0SUPPORT")) == messages
    assert len(gate_issues(fake)) == 1

    write_policy(env["policy"], drop_pii, raise_floor)          # a second finding: the same issue, edited
    [worse] = run()
    [same] = gate_issues(fake)
    assert same.number == issue.number and "PG-RECERT-003" in same.body and same.state == "open"

    write_policy(env["policy"])                                 # the policy restored: resolved (the next
    [back] = run(NOW + timedelta(days=1))                       # day: today's key under it is recorded)
    assert back.status == "current"
    [closed] = gate_issues(fake)
    assert closed.number == issue.number and closed.state == "closed"
    assert slack.messages("C0SUPPORT")[-1]["text"].endswith("re-certified under policy 2026.12.7: current.")
    assert len(ledger(store)) == lines + 2


def test_a_new_day_records_a_new_decision(env):
    [today] = run()
    [tomorrow] = run(NOW + timedelta(days=1))
    assert today.decision_id != tomorrow.decision_id and tomorrow.recorded
    assert len(ledger(env["store"])) == 2


def test_github_and_slack_down_still_end_in_a_recorded_decision(env):
    write_policy(env["policy"], drop_pii)
    env["github"].fail_next("GET /repos/*/issues", status=502, times=20)
    env["slack"].fail_next("chat.postMessage", status=503, times=20)
    [out] = run()
    assert out.recorded and out.status == "out-of-policy"
    d = decision(env["store"], out.decision_id)
    events = [e.event for e in d.timeline]
    assert any(e.startswith("issue: not synced:") for e in events), events
    assert any(e.startswith("slack: notice not sent:") for e in events), events
    assert gate_issues(env["github"]) == []


def test_recertify_changes_nothing_in_production(env):
    fake = env["github"]
    before = dict(fake.state.repo(REPO).branches)
    write_policy(env["policy"], drop_pii)
    run()
    assert fake.state.repo(REPO).branches == before


def _no_key(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMOTION_GATE_SIGNING_KEY")


def _no_key_demo_dir_set(monkeypatch, tmp_path):
    """Pointing the demo key somewhere else is still the demo key."""
    monkeypatch.delenv("PROMOTION_GATE_SIGNING_KEY")
    monkeypatch.setenv("PROMOTION_GATE_DEMO_KEY_DIR", str(tmp_path / "elsewhere"))


def _key_file(monkeypatch, tmp_path):
    from tests.github_support import gate_key_pem

    monkeypatch.delenv("PROMOTION_GATE_SIGNING_KEY")
    (tmp_path / "gate.pem").write_text(gate_key_pem())
    monkeypatch.setenv("PROMOTION_GATE_SIGNING_KEY_PATH", str(tmp_path / "gate.pem"))


#   the signing key the recertify flow finds on GitHub, and whether it starts (then what it signed with)
SIGNING_KEYS = [("no signing key: the demo key", _no_key, None),
                ("no signing key, the demo key moved", _no_key_demo_dir_set, None),
                ("a configured key (environment)", lambda monkeypatch, tmp_path: None, "configured"),
                ("a configured key (file)", _key_file, "configured")]


@pytest.mark.parametrize("name, setup, kind", SIGNING_KEYS, ids=[row[0] for row in SIGNING_KEYS])
def test_recertify_on_github_refuses_the_demo_key_as_the_gate_does(env, monkeypatch, tmp_path, name, setup, kind):
    store, fake, slack = env["store"], env["github"], env["slack"]
    write_policy(env["policy"], drop_pii)  # out of policy: a run that starts opens an issue and tells Slack
    setup(monkeypatch, tmp_path)
    if kind is None:
        with pytest.raises(Exception, match="the recertify flow on GitHub refuses the generated demo key.*PROMOTION_GATE_SIGNING_KEY_PATH"):
            run()
        assert ledger(store) == [] and gate_issues(fake) == [] and slack.messages("C0SUPPORT") == []  # before any side effect
        assert not (tmp_path / "elsewhere").exists() and not (store.parent / "demo-keys").exists()  # no demo key was made
        return
    [out] = run()
    assert out.recorded and out.status == "out-of-policy" and len(gate_issues(fake)) == 1
    assert decision(store, out.decision_id).signing_key.kind == kind


def test_recertify_with_no_github_repository_does_not_need_a_signing_key(env, monkeypatch):
    """The refusal is the GitHub path's: a run with nothing on GitHub starts (a local run may use the demo key)."""
    from promotion_gate.flows.recertify import recertify_production

    monkeypatch.delenv("PROMOTION_GATE_SIGNING_KEY")
    assert recertify_production(repositories=[], on=NOW.date()) == []


def test_a_lock_merged_past_the_guard_is_out_of_policy(env):
    """The gate's own lock re-certifies as current; a lock written by hand (merged with a bypass) over it,
    whose facts look as good, is PG-RECERT-007: the inventory never shows it as a current system."""
    [genuine] = run()
    assert genuine.status == "current", genuine
    hand_written_lock(env["github"], env["source"])
    [forged] = run()
    assert forged.status == "out-of-policy" and forged.recorded
    found = decision(env["store"], forged.decision_id)
    reasons = [f.reason for f in found.recertification.findings if f.id == "PG-RECERT-007"]
    assert reasons and "not written by the gate for a promoted decision: the lock carries no signature" in reasons[0], reasons
