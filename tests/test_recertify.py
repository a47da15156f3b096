"""Re-certification triggers, as a table: each case changes the policy, the lock or the day the
way production drifts (or a team hopes it does not show) and names the exact findings."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from promotion_gate.checklists.candidate import LockedCost, LockedEvidence, ProductionLock
from promotion_gate.checklists.findings import RecertStatus
from promotion_gate.checklists.manifest import parse_manifest
from promotion_gate.checklists.policy import parse_policy
from promotion_gate.checklists.recertification import build_recertification_decision, recertification_id
from promotion_gate.checklists.recertify import ProductionSystem, recertify
from promotion_gate.config.policy_source import load_policy

ROOT = Path(__file__).resolve().parent.parent
POLICY_YAML = (ROOT / "checklists" / "policy" / "policy.yaml").read_text()
EXAMPLES = ROOT / "examples" / "repo" / "ai-systems"
TODAY = date(2026, 11, 24)
APPROVED = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)


def policy_with(edit=None):
    data = yaml.safe_load(POLICY_YAML)
    if edit:
        edit(data)
    return parse_policy(yaml.safe_dump(data).encode(), "policy.yaml")


def manifest(system="support-assistant", replace=None):
    text = (EXAMPLES / system / "promotion.yaml").read_text()
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    return parse_manifest(text, f"ai-systems/{system}/promotion.yaml")


def system(model="anthropic/claude-sonnet-4@claude-sonnet-4-20250514", pass_rate=0.995, promoted=APPROVED,
           produced=APPROVED, m=None, lock=True, problems=(), metrics=None, unverified=None, cost=0.0084):
    main = {"pass_rate": pass_rate} if metrics is None else metrics
    ev = [LockedEvidence(path="evals/promptfoo.json", format="promptfoo", sha256="a" * 64,
                         metrics=main, samples={k: 400 for k in main}, produced_at=produced),
          LockedEvidence(path="evals/fallback-drill.xml", format="junit", sha256="b" * 64,
                         metrics={"pass_rate": 0.5}, samples={"pass_rate": 120}, produced_at=produced)]
    the_lock = ProductionLock(system="support-assistant", source_commit="c" * 40, manifest_sha256="d" * 64, model=model,
                              evidence=ev, decision_id="support-assistant-ccccccc-0000000000", policy_version="2026.11.1",
                              policy_digest="e" * 64, promoted_at=promoted,
                              cost=LockedCost(cost_per_request_usd=cost, method="evidence", expected_monthly_requests=150000)
                              if cost is not None else None) if lock else None
    return ProductionSystem(repository="acme/models", system="support-assistant", lock=the_lock, lock_sha256="f" * 64,
                            manifest=manifest() if m is None else m, problems=list(problems), unverified=unverified)


def drop_version(data):
    data["providers"]["anthropic"]["models"]["claude-sonnet-4"] = ["claude-sonnet-4-20260101"]


def drop_model(data):
    del data["providers"]["anthropic"]["models"]["claude-sonnet-4"]


def drop_provider(data):
    del data["providers"]["anthropic"]
    data["prices"] = {k: v for k, v in data["prices"].items() if not k.startswith("anthropic/")}


def deprecate(day):
    def edit(data):
        data["providers"]["anthropic"]["deprecated"] = {"claude-sonnet-4-20250514": day}
    return edit


def deprecate_fallback(data):
    data["providers"]["openai"]["deprecated"] = {"gpt-4o-2024-08-06": "2026-11-01"}


def drop_pii(data):
    data["providers"]["anthropic"]["data_classes"] = ["public", "internal", "confidential", "health"]


def raise_floor(data):
    data["tiers"]["high"]["metric_floors"] = {"pass_rate": {"min": 0.999}}


def shorten_period(data):
    data["tiers"]["high"]["recertify_after_days"] = 3


def shorten_evidence(data):
    data["tiers"]["high"]["recertification_evidence_max_age_days"] = 2


def budget(per_request=None, per_month=None):
    def edit(data):
        data["tiers"]["high"]["budgets"] = {"per_request_usd": per_request, "per_month_usd": per_month}
    return edit


def retention(days):
    def edit(data):
        data["tiers"]["high"]["max_log_retention_days"] = days
    return edit


CASES = [
    # (name, policy edit, system kwargs, today, expected finding ids, status)
    ("current", None, {}, TODAY, [], RecertStatus.current),
    ("version withdrawn", drop_version, {}, TODAY, ["PG-RECERT-001"], RecertStatus.out_of_policy),
    ("model withdrawn", drop_model, {}, TODAY, ["PG-RECERT-001"], RecertStatus.out_of_policy),
    ("provider withdrawn: model and every data class", drop_provider, {}, TODAY, ["PG-RECERT-001", "PG-RECERT-002"], RecertStatus.out_of_policy),
    ("deprecated today counts", deprecate("2026-11-24"), {}, TODAY, ["PG-RECERT-001"], RecertStatus.out_of_policy),
    ("deprecation announced for tomorrow: not yet", deprecate("2026-11-25"), {}, TODAY, [], RecertStatus.current),
    ("the fallback model deprecated", deprecate_fallback, {}, TODAY, ["PG-RECERT-001"], RecertStatus.out_of_policy),
    ("a data class withdrawn from the provider", drop_pii, {}, TODAY, ["PG-RECERT-002"], RecertStatus.out_of_policy),
    ("floors raised above the approved metric", raise_floor, {}, TODAY, ["PG-RECERT-003"], RecertStatus.out_of_policy),
    ("floors raised: the drill is not an evaluation", None, {"pass_rate": 0.96}, TODAY, [], RecertStatus.current),
    ("approved metric below today's floor", None, {"pass_rate": 0.94}, TODAY, ["PG-RECERT-003"], RecertStatus.out_of_policy),
    ("approved on metrics no floor names: the floors judge nothing (high: unfloored_evidence fail)", None,
     {"metrics": {"helpfulness": 0.9}}, TODAY, ["PG-RECERT-003"], RecertStatus.out_of_policy),
    ("the same where the policy lets unfloored evidence warn", lambda d: d["tiers"]["high"].__setitem__("unfloored_evidence", "warn"),
     {"metrics": {"helpfulness": 0.9}}, TODAY, [], RecertStatus.current),
    ("a lock the gate did not write (merged past the lock guard)", None, {"unverified": "the lock carries no signature"}, TODAY,
     ["PG-RECERT-007"], RecertStatus.out_of_policy),
    ("approval past the period", shorten_period, {}, TODAY, ["PG-RECERT-004"], RecertStatus.due),
    ("approval exactly at the period is still current", None, {"promoted": APPROVED - timedelta(days=86)}, TODAY, [], RecertStatus.current),
    ("approval one day past the embedded 90 days", None, {"promoted": APPROVED - timedelta(days=87), "produced": APPROVED}, TODAY, ["PG-RECERT-004"], RecertStatus.due),
    ("evidence too old, each file", shorten_evidence, {}, TODAY, ["PG-RECERT-005", "PG-RECERT-005"], RecertStatus.due),
    ("undated evidence ages from its approval", shorten_evidence, {"produced": None}, TODAY, ["PG-RECERT-005", "PG-RECERT-005"], RecertStatus.due),
    ("a lock from the future is not younger than zero", None, {"promoted": APPROVED + timedelta(days=30)}, TODAY, [], RecertStatus.current),
    ("out of policy outranks due", lambda d: (drop_pii(d), shorten_period(d)), {}, TODAY, ["PG-RECERT-002", "PG-RECERT-004"], RecertStatus.out_of_policy),
    ("no lock file", None, {"lock": False}, TODAY, ["PG-RECERT-006"], RecertStatus.out_of_policy),
    ("manifest unavailable: judged at the high tier, never current", None, {"m": False, "problems": ["manifest missing"]}, TODAY, ["PG-RECERT-006"], RecertStatus.out_of_policy),
    ("an unpinned model in the lock", None, {"model": "anthropic/claude-sonnet-4@None"}, TODAY, ["PG-RECERT-001"], RecertStatus.out_of_policy),
    # what a policy tightened after the promotion asks of production (the embedded high tier: $0.05 a request, $5,000 a month)
    ("production's cost within today's budget", None, {}, TODAY, [], RecertStatus.current),
    ("the budget per request cut below production's cost", budget(per_request=0.005), {}, TODAY, ["PG-RECERT-008"], RecertStatus.out_of_policy),
    ("the monthly budget cut below production's projection ($1,260)", budget(per_month=1000), {}, TODAY, ["PG-RECERT-008"], RecertStatus.out_of_policy),
    ("the budget removed altogether", budget(), {}, TODAY, [], RecertStatus.current),
    ("production's cost unknown: nothing to judge (PG-COST-001 warned at promotion)", budget(per_request=0.005), {"cost": None}, TODAY, [], RecertStatus.current),
    ("log retention shortened below the manifest's 30 days", retention(7), {}, TODAY, ["PG-RECERT-009"], RecertStatus.out_of_policy),
    ("log retention exactly the manifest's", retention(30), {}, TODAY, [], RecertStatus.current),
    ("a lock naming a model nobody approved", None, {"model": "anthropic/claude-sonnet-4@claude-sonnet-4-20250514-jailbroken"}, TODAY, ["PG-RECERT-001"], RecertStatus.out_of_policy),
]


@pytest.mark.parametrize("name,edit,kwargs,today,expected,status", CASES, ids=[c[0] for c in CASES])
def test_recertification_triggers(name, edit, kwargs, today, expected, status):
    kwargs = dict(kwargs)
    if kwargs.get("m") is False:
        kwargs["m"] = None
        s = system(**kwargs).model_copy(update={"manifest": None})
    else:
        s = system(**kwargs)
    rc = recertify(s, policy_with(edit), today)
    assert sorted(f.id for f in rc.findings) == sorted(expected), [f.reason for f in rc.findings]
    assert rc.status == status


def test_blocking_findings_follow_the_policy():
    rc = recertify(system(), policy_with(lambda d: (drop_version(d), drop_pii(d), shorten_period(d))), TODAY)
    assert {f.id: f.blocking for f in rc.findings} == {"PG-RECERT-001": True, "PG-RECERT-002": True, "PG-RECERT-004": False}


def test_reasons_name_what_changed():
    rc = recertify(system(), policy_with(raise_floor), TODAY)
    assert rc.findings[0].reason == "answer-quality.pass_rate was approved at 0.995; the high tier's floor is now >= 0.999"
    rc = recertify(system(), policy_with(deprecate("2026-11-01")), TODAY)
    assert rc.findings[0].reason == "model version claude-sonnet-4-20250514 is deprecated since 2026-11-01"


def test_a_data_source_the_provider_may_no_longer_receive_puts_it_out_of_policy_listed_or_not():
    """A class only a data source declares (financial here, not in use_case.data_classes) is judged as
    the gate judges it at promotion: a provider that may no longer receive it is out of policy."""
    with_payroll = manifest(replace=("  - name: help-centre-articles\n    classification: internal",
                                     "  - name: help-centre-articles\n    classification: internal\n"
                                     "  - name: refunds-ledger\n    classification: financial"))
    assert "financial" not in with_payroll.use_case.data_classes
    rc = recertify(system(m=with_payroll), load_policy(), TODAY)
    assert rc.findings[0].reason == "anthropic may no longer receive financial"
    assert recertify(system(), load_policy(), TODAY).status.value != "out-of-policy"


def test_the_decision_id_is_the_idempotency_key():
    policy = load_policy()
    first = recertify(system(), policy, TODAY)
    again = recertify(system(), policy, TODAY)
    assert recertification_id(first) == recertification_id(again)
    assert recertification_id(recertify(system(), policy, TODAY + timedelta(days=1))) != recertification_id(first)
    assert recertification_id(recertify(system(), policy_with(shorten_period), TODAY)) != recertification_id(first)
    other_lock = system().model_copy(update={"lock_sha256": "0" * 64})
    assert recertification_id(recertify(other_lock, policy, TODAY)) != recertification_id(first)


def test_the_recertification_decision_is_of_its_kind():
    rc = recertify(system(), policy_with(drop_pii), TODAY)
    now = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
    decision = build_recertification_decision(rc, "c" * 40, now)
    assert decision.kind == "recertification"
    assert decision.verdict.value == "out-of-policy"
    assert decision.reasons == ["PG-RECERT-002: anthropic may no longer receive pii (blocks the next promotion)"]
    assert decision.decision_id.startswith("support-assistant-recert-20261124-")
    assert decision.blocked  # a recertification never promotes anything


def policy_text_with(edit) -> bytes:
    data = yaml.safe_load(POLICY_YAML)
    edit(data)
    return yaml.safe_dump(data).encode()


# Entries the loader took and nothing ever read: a deprecation keyed by something that is not one of
# the provider's approved versions (recertify looks a version up), a blocking id no finding has.
NO_OP_ENTRIES = [
    ("a model name where a version belongs", lambda d: d["providers"]["openai"].__setitem__("deprecated", {"gpt-4o-mini": "2026-01-01"}),
     "providers.openai.deprecated", "gpt-4o-mini"),
    ("another provider's version", lambda d: d["providers"]["openai"].__setitem__("deprecated", {"claude-sonnet-4-20250514": "2026-01-01"}),
     "providers.openai.deprecated", "claude-sonnet-4-20250514"),
    ("a version with a typo", lambda d: d["providers"]["anthropic"].__setitem__("deprecated", {"claude-sonnet-4-2025514": "2026-01-01"}),
     "providers.anthropic.deprecated", "claude-sonnet-4-2025514"),
    ("a blocking id with a digit missing", lambda d: d["recertification"].__setitem__("blocking", ["PG-RECERT-001", "PG-RECERT-01"]),
     "recertification.blocking", "PG-RECERT-01"),
    ("a blocking id that is the promotion item, not a finding", lambda d: d["recertification"].__setitem__("blocking", ["PG-RECERT-010"]),
     "recertification.blocking", "PG-RECERT-010"),
    ("a blocking id in lower case", lambda d: d["recertification"].__setitem__("blocking", ["pg-recert-001"]),
     "recertification.blocking", "pg-recert-001"),
]


@pytest.mark.parametrize("how,edit,field,value", NO_OP_ENTRIES, ids=[n[0] for n in NO_OP_ENTRIES])
def test_a_policy_entry_that_would_do_nothing_is_refused(how, edit, field, value):
    from promotion_gate.checklists.policy import PolicyError

    with pytest.raises(PolicyError) as err:
        parse_policy(policy_text_with(edit), "policy.yaml")
    message = str(err.value)
    assert field in message and value in message and "\n" not in message, (how, message)


def test_the_entries_that_do_something_still_load():
    assert policy_with(deprecate("2026-11-01")).providers["anthropic"].deprecated
    assert policy_with(lambda d: d["recertification"].__setitem__("blocking", ["PG-RECERT-004", "PG-RECERT-007"])).recertification.blocking


# The manifest's owner is the team's text: in the GitHub issue and the Slack notice it is shown, never
# obeyed (no link, image, mention or channel ping; controls shown as text).
HOSTILE_OWNERS = [
    ("a link, an image and a channel ping",
     "@acme/it-helpdesk ![ok](https://evil.example/pixel.png) [Re-approve here](https://evil.example/login) <!channel>"),
    ("a Slack link and a user ping", "<https://evil.example/login|Re-approve here> <@U024BE7LH> <!here>"),
    ("terminal controls and a line break", "\x1b[31m@acme/red\x1b[0m\r\n### Approved by the CISO"),
]


@pytest.mark.parametrize("how,owner", HOSTILE_OWNERS, ids=[h[0] for h in HOSTILE_OWNERS])
def test_the_owner_is_shown_never_obeyed_in_the_issue_and_the_notice(how, owner):
    from promotion_gate.notifications.recert_messages import build_issue_body, build_owner_notice

    rc = recertify(system(), policy_with(drop_pii), TODAY)
    body = build_issue_body(rc, rc.approved_decision, owner)
    owner_line = next(line for line in body.splitlines() if line.startswith("Owner: ")).split(". Decision ")[0]
    assert not re.search(r"(?<!\\)[\[\]()<>!]", owner_line), (how, owner_line)  # Markdown's link, image and HTML, escaped
    for live in ("@acme", "@U0", "https://", "\x1b", "\r"):  # a mention, an autolink, a control obeyed
        assert live not in owner_line, (how, live, owner_line)
    assert "Re-approve here" in owner_line or "acme" in owner_line  # shown, as text
    assert not any(line.startswith("###") and "CISO" in line for line in body.splitlines()), body
    notice = build_owner_notice(rc, owner)
    for live in ("<!", "<@", "<http", "\x1b", "\r"):
        assert live not in notice, (how, live, notice)
    assert notice.startswith("promotion-gate: support-assistant (owner ") and len(notice.splitlines()) == 1 + len(rc.findings), notice
