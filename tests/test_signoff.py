"""The quorum reducer and the click judge, as tables."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from promotion_gate.checklists.signoff import Action, Click, RefusedClick, Signoff, judge, tally
from promotion_gate.flows.policy_source import load_policy

POLICY = load_policy()
QUORUM = {"security": 1, "risk": 1}
DIGEST = "ab" * 32
AT = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)


def click(who: str, action: str = "approve", digest: str = DIGEST, channel: str = "console", role: str | None = None) -> Click:
    return Click(reviewer=who, channel=channel, action=Action(action), digest=digest, at=AT, role=role)


def run(clicks: list[Click], excluded: set[str] = frozenset({"dana"}), usergroups=None):
    given, refused = [], []
    for c in clicks:
        out = judge(c, policy=POLICY, quorum=QUORUM, digest=DIGEST, excluded=set(excluded), given=given,
                    waiting=tally(QUORUM, given).status == "waiting", usergroups=usergroups)
        (given if isinstance(out, Signoff) else refused).append(out)
    return given, refused, tally(QUORUM, given)


@pytest.mark.parametrize(
    ("clicks", "status", "refusals"),
    [
        ([click("sam"), click("rene")], "approved", []),
        ([click("sam")], "waiting", []),
        ([click("sam"), click("alex")], "waiting", []),  # alex is security too: counted, yet risk is still missing
        ([click("sam"), click("sam"), click("rene")], "approved", ["already signed off"]),
        ([click("dana"), click("sam"), click("rene")], "approved", ["may not sign it off"]),
        ([click("priya"), click("sam"), click("rene")], "approved", ["does not hold the role"]),
        ([click("mallory")], "waiting", ["not a known reviewer"]),
        ([click("sam", digest="cd" * 32)], "waiting", ["digest no longer matches"]),
        ([click("sam"), click("rene", "reject")], "rejected", []),
        ([click("sam"), click("rene"), click("jordan")], "approved", ["no longer waiting"]),
        ([click("U0SAM", channel="slack"), click("U0RENE", channel="slack")], "approved", []),
        ([click("sam", role="risk")], "waiting", ["does not hold the role this sign-off needs (risk)"]),
    ],
)
def test_signoff_table(clicks, status, refusals) -> None:
    given, refused, state = run(clicks)
    assert state.status == status
    assert len(refused) == len(refusals)
    for r, expected in zip(refused, refusals):
        assert isinstance(r, RefusedClick) and expected in r.reason


def test_alex_second_security_approval_is_not_counted_twice_for_the_role() -> None:
    given, refused, state = run([click("sam"), click("alex")])
    assert state.missing == {"risk": 1}
    assert state.approvals["security"] == ["sam", "alex"]


def test_usergroup_membership_grants_the_role() -> None:
    given, refused, state = run([click("U0DANA2", channel="slack")], usergroups={"S0RISK": {"U0DANA2"}})
    assert refused and "not a known reviewer" in refused[0].reason  # no identity: never counts


def test_rejection_names_reviewer() -> None:
    _, _, state = run([click("rene", "reject")])
    assert state.status == "rejected" and state.rejection.identity == "rene"


# --- waiver grants: the console syntax and the reducer ------------------------------------------

from datetime import date  # noqa: E402

from promotion_gate.checklists.results import WaiverRequest  # noqa: E402
from promotion_gate.flows.console_signoff import parse_approval  # noqa: E402

REQUEST = WaiverRequest(item="PG-EVAL-003", reason="fixing the retriever this sprint", expires=date(2026, 12, 5),
                        waivable_by=["risk"], latest_expiry=date(2026, 12, 8))


@pytest.mark.parametrize(("text", "action", "item", "expires", "comment"), [
    ("rene", Action.approve, None, None, None),
    ("rene:waive:PG-EVAL-003", Action.waive, "PG-EVAL-003", None, None),
    ("rene:waive:PG-EVAL-003:2026-12-01", Action.waive, "PG-EVAL-003", date(2026, 12, 1), None),
    ("rene:waive:PG-EVAL-003:2026-12-01:checked the plan", Action.waive, "PG-EVAL-003", date(2026, 12, 1), "checked the plan"),
])
def test_console_sign_off_syntax(text, action, item, expires, comment) -> None:
    got = parse_approval(text, DIGEST, AT)
    assert (got.reviewer, got.action, got.item, got.expires, got.comment) == ("rene", action, item, expires, comment)


@pytest.mark.parametrize("text", ["rene:waive", "rene:waive:eval-003", "rene:waive:PG-EVAL-003:soon", "rene:grant:PG-EVAL-003"])
def test_console_sign_off_syntax_errors_name_the_text(text) -> None:
    with pytest.raises(ValueError, match="sign-off"):
        parse_approval(text, DIGEST, AT)


def waive(who: str, item: str = "PG-EVAL-003", expires: date | None = None, digest: str = DIGEST) -> Click:
    return Click(reviewer=who, channel="console", action=Action.waive, digest=digest, at=AT, item=item, expires=expires)


@pytest.mark.parametrize(("clicks", "status", "granted", "refusals"), [
    ([waive("rene"), click("sam"), click("rene")], "approved", {"PG-EVAL-003": "rene"}, []),
    ([click("sam"), click("rene")], "waiting", {}, []),  # the quorum is met, the waiver is not granted
    ([waive("sam"), click("sam"), click("rene")], "waiting", {}, ["may waive PG-EVAL-003"]),
    ([waive("dana"), click("sam"), click("rene")], "waiting", {}, ["may not sign it off"]),
    ([waive("rene", expires=date(2026, 12, 30)), click("sam"), click("rene")], "waiting", {}, ["longer than"]),
    ([waive("rene", item="PG-DATA-001"), click("sam"), click("rene")], "waiting", {}, ["can never be waived"]),
    ([waive("rene", digest="cd" * 32), click("sam"), click("rene")], "waiting", {}, ["digest"]),
    ([waive("rene"), waive("jordan"), click("sam"), click("rene")], "approved", {"PG-EVAL-003": "rene"}, ["already granted"]),
])
def test_waiver_grants_as_a_table(clicks, status, granted, refusals) -> None:
    given, refused = [], []
    for c in clicks:
        out = judge(c, policy=POLICY, quorum=QUORUM, digest=DIGEST, excluded={"dana"}, given=given, waiting=True,
                    waivers={"PG-EVAL-003": REQUEST})
        (given if isinstance(out, Signoff) else refused).append(out)
    state = tally(QUORUM, given, ["PG-EVAL-003"])
    assert state.status == status and state.waivers == granted
    assert [any(want in r.reason for want in refusals) for r in refused] == [True] * len(refusals) and len(refused) == len(refusals)
