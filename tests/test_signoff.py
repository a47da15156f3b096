"""The quorum reducer and the click judge, as tables."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from promotion_gate.checklists.signoff import Action, Click, RefusedClick, Signoff, judge, tally
from promotion_gate.config.policy_source import load_policy

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
        # a reviewer who approved and then finds a problem stops the promotion: the later reject counts
        ([click("sam"), click("sam", "reject"), click("rene")], "rejected", ["no longer waiting"]),
        ([click("sam"), click("sam", "reject"), click("sam", "reject")], "rejected", ["no longer waiting"]),
        # a change of mind goes one way only: an approve after one's own reject is refused (the run has ended anyway)
        ([click("sam", "reject"), click("sam")], "rejected", ["no longer waiting"]),
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


def test_a_reject_after_ones_own_approve_while_waiting_counts_and_an_approve_twice_does_not() -> None:
    """While the run still waits (risk has not approved), sam withdraws his approval by rejecting."""
    given = []
    first = judge(click("sam"), policy=POLICY, quorum=QUORUM, digest=DIGEST, excluded={"dana"}, given=given, waiting=True)
    given.append(first)
    again = judge(click("sam"), policy=POLICY, quorum=QUORUM, digest=DIGEST, excluded={"dana"}, given=given, waiting=True)
    assert isinstance(again, RefusedClick) and "already signed off" in again.reason
    stop = judge(click("sam", "reject"), policy=POLICY, quorum=QUORUM, digest=DIGEST, excluded={"dana"}, given=given, waiting=True)
    assert isinstance(stop, Signoff) and stop.action == Action.reject
    assert tally(QUORUM, [first, stop]).status == "rejected"


# Who holds a role: the policy's `members` are the reviewed list; the role's Slack user group, where
# set, can only take a member out (moved off the team), never put someone in; a role without members
# is its user group. (role, reviewer, the group as Slack answers it (None: unreadable), counts)
ROLE_CASES = [
    ("security", "U0SAM", {"U0SAM", "U0ALEX"}, True),     # listed and in the group
    ("security", "U0PRIYA", {"U0SAM", "U0PRIYA"}, False),  # in the group only: whoever edits the group does not make a reviewer
    ("security", "U0ALEX", {"U0SAM"}, False),             # listed, but taken out of the group
    ("security", "U0ALEX", None, True),                   # the group cannot be read: the reviewed list decides
    ("platform", "U0PRIYA", {}, True),                    # no group: the list
]


@pytest.mark.parametrize(("role", "reviewer", "group", "counts"), ROLE_CASES)
def test_the_policy_lists_who_holds_a_role_and_the_user_group_only_takes_away(role, reviewer, group, counts) -> None:
    spec = POLICY.roles[role]
    groups = {spec.slack_usergroup: group} if spec.slack_usergroup else {}
    out = judge(click(reviewer, channel="slack", role=role), policy=POLICY, quorum={role: 1}, digest=DIGEST, excluded=set(),
                given=[], waiting=True, usergroups=groups)
    assert isinstance(out, Signoff) == counts, out


def test_a_role_without_members_is_its_user_group() -> None:
    policy = POLICY.model_copy(update={"roles": {**POLICY.roles, "security": POLICY.roles["security"].model_copy(update={"members": []})}})
    for group, counts in (({"U0PRIYA"}, True), (set(), False), (None, False)):
        out = judge(click("U0PRIYA", channel="slack", role="security"), policy=policy, quorum={"security": 1}, digest=DIGEST,
                    excluded=set(), given=[], waiting=True, usergroups={"S0SECURITY": group})
        assert isinstance(out, Signoff) == counts, (group, out)


def test_usergroup_membership_grants_the_role() -> None:
    given, refused, state = run([click("U0DANA2", channel="slack")], usergroups={"S0RISK": {"U0DANA2"}})
    assert refused and "not a known reviewer" in refused[0].reason  # no identity: never counts


def test_rejection_names_reviewer() -> None:
    _, _, state = run([click("rene", "reject")])
    assert state.status == "rejected" and state.rejection.identity == "rene"


# --- waiver grants: the console syntax and the reducer ------------------------------------------

from datetime import date  # noqa: E402

from promotion_gate.checklists.results import WaiverRequest  # noqa: E402
from promotion_gate.cli.console_signoff import parse_approval  # noqa: E402

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


# identity: the Slack id decides, the email confirms; only this workspace, only live humans (issue 10)

from promotion_gate.checklists.identity import (  # noqa: E402
    FOREIGN_WORKSPACE, GUEST, IDENTITY_CONFLICT, NOT_A_PERSON, SlackAccount, Workspace, account_problem, parse_coauthors,
)

WORKSPACE = Workspace(team="T0ACME", enterprise="E0ACME", app="A0GATE")
HOME = dict(team="T0ACME", enterprise="E0ACME", app="A0GATE", user_team="T0ACME")


def slack_click(user: str, email: str | None, guest: bool = False, role: str | None = "security") -> Click:
    return Click(reviewer=user, channel="slack", action=Action.approve, digest=DIGEST, at=AT, role=role, email=email, guest=guest)


def judged(c: Click, excluded: set[str] = frozenset({"dana"}), policy=POLICY):
    return judge(c, policy=policy, quorum=QUORUM, digest=DIGEST, excluded=set(excluded), given=[], waiting=True)


@pytest.mark.parametrize(("case", "c", "excluded", "code", "reason"), [
    ("the requester's own account, email set to a reviewer's address",
     slack_click("U0DANA", "sam@example.com"), {"dana"}, IDENTITY_CONFLICT, "Slack id U0DANA is dana but its profile email is sam@example.com"),
    ("an unmapped account carrying a reviewer's email", slack_click("U0NEW", "sam@example.com"), set(), IDENTITY_CONFLICT,
     "Slack id U0NEW is not sam's"),
    ("a reviewer's id with an email nobody in the policy has", slack_click("U0SAM", "sam@personal.example"), set(),
     IDENTITY_CONFLICT, "its profile email is sam@personal.example"),
    ("an unmapped account with an unknown email", slack_click("U0NEW", "x@example.com"), set(), None, "not a known reviewer"),
    ("the committer's email, unmapped in the policy, is the reviewer's", slack_click("U0SAM", "sam@example.com"),
     {"email:sam@example.com"}, None, "may not sign it off"),
    ("the PR author's GitHub login is the reviewer's", slack_click("U0SAM", None), {"github:sam-sec"}, None, "may not sign it off"),
    ("the requester's Slack id", slack_click("U0SAM", None), {"slack:U0SAM"}, None, "may not sign it off"),
    ("a co-author named in a Co-authored-by trailer", slack_click("U0SAM", "sam@example.com"),
     {f"email:{e}" for e in parse_coauthors("fix\n\nCo-authored-by: Sam <SAM@example.com>\n")}, None, "may not sign it off"),
    ("a guest, the policy refusing guests for the role", slack_click("U0SAM", "sam@example.com", guest=True), set(), GUEST,
     "signs in as a Slack guest"),
])
def test_identity_table_refusals(case, c, excluded, code, reason) -> None:
    out = judged(c, excluded)
    assert isinstance(out, RefusedClick), case
    assert out.code == code and reason in out.reason, (case, out)


# How an author spells their own mailbox in a commit or a trailer so that their approval would still count.
SAMS_MAILBOX = [
    ("a +tag", "sam+ci@example.com"),
    ("a trailing dot on the domain", "sam@example.com."),
    ("case and a trailing space", "sam@EXAMPLE.com "),
    ("full-width letters", "ｓａｍ@example.com"),
    ("a full-width domain", "sam@ｅｘａｍｐｌｅ.com"),
    ("a zero-width space", "s\u200bam@example.com"),
    ("a mailto: prefix", "mailto:sam@example.com"),
    ("GitHub's noreply address for sam's login", "12345+sam-sec@users.noreply.github.com"),
    ("the older noreply form, in capitals", "SAM-SEC@users.noreply.github.com"),
]
SOMEONE_ELSE = ["samuel@example.com", "sam@example.org", "12345+sam-security@users.noreply.github.com", "sam-sec@example.com"]


@pytest.mark.parametrize(("case", "email"), SAMS_MAILBOX, ids=[c for c, _ in SAMS_MAILBOX])
def test_an_author_is_excluded_however_their_mailbox_is_spelled(case, email) -> None:
    from promotion_gate.checklists.identity import committers_of

    assert committers_of(POLICY, {email}) == {"sam"}, case  # as the forges map commit and trailer emails
    out = judged(slack_click("U0SAM", "sam@example.com"), {f"email:{email.lower()}"})  # however a producer spelled the key
    assert isinstance(out, RefusedClick) and "may not sign it off" in out.reason, case


@pytest.mark.parametrize("email", SOMEONE_ELSE)
def test_another_mailbox_does_not_exclude_sam(email) -> None:
    from promotion_gate.checklists.identity import committers_of

    assert "sam" not in committers_of(POLICY, {email})
    assert isinstance(judged(slack_click("U0SAM", "sam@example.com"), {"dana", f"email:{email}"}), Signoff), email


@pytest.mark.parametrize(("case", "c"), [
    ("the id and its own email agree", slack_click("U0SAM", "sam@example.com")),
    ("the email differs only in case and spaces", slack_click("U0SAM", " Sam@Example.COM ")),
    ("no email from users.info: the id alone", slack_click("U0SAM", None)),
])
def test_identity_table_counted(case, c) -> None:
    out = judged(c)
    assert isinstance(out, Signoff) and out.identity == "sam", case


def test_a_guest_counts_where_the_role_allows_guests() -> None:
    roles = {**POLICY.roles, "security": POLICY.roles["security"].model_copy(update={"allow_guests": True})}
    policy = POLICY.model_copy(update={"roles": roles})
    out = judged(slack_click("U0SAM", "sam@example.com", guest=True), policy=policy)
    assert isinstance(out, Signoff) and out.role == "security"


@pytest.mark.parametrize(("case", "account", "code"), [
    ("this workspace, a live person", SlackAccount(user="U0SAM", **HOME), None),
    ("another team id on the click", SlackAccount(user="U0SAM", **{**HOME, "team": "T0EVIL"}), FOREIGN_WORKSPACE),
    ("no team id on the click", SlackAccount(user="U0SAM", **{**HOME, "team": None}), FOREIGN_WORKSPACE),
    ("another enterprise", SlackAccount(user="U0SAM", **{**HOME, "enterprise": "E0EVIL"}), FOREIGN_WORKSPACE),
    ("no enterprise where one is set", SlackAccount(user="U0SAM", **{**HOME, "enterprise": None}), FOREIGN_WORKSPACE),
    ("another app's api_app_id", SlackAccount(user="U0SAM", **{**HOME, "app": "A0OTHER"}), FOREIGN_WORKSPACE),
    ("a deactivated account", SlackAccount(user="U0SAM", deleted=True, **HOME), NOT_A_PERSON),
    ("a bot user", SlackAccount(user="U0SAM", bot=True, **HOME), NOT_A_PERSON),
    ("an app user", SlackAccount(user="U0SAM", app_user=True, **HOME), NOT_A_PERSON),
])
def test_account_table(case, account, code) -> None:
    problem = account_problem(account, WORKSPACE)
    assert (problem[0] if problem else None) == code, case


def test_a_users_home_team_must_be_the_workspace_outside_a_grid() -> None:
    plain = Workspace(team="T0ACME")
    assert account_problem(SlackAccount(user="U0SAM", team="T0ACME", user_team="T0EVIL"), plain)[0] == FOREIGN_WORKSPACE
    assert account_problem(SlackAccount(user="U0SAM", team="T0ACME", user_team="T0ACME"), plain) is None


@pytest.mark.parametrize(("message", "emails"), [
    ("one\n\nCo-authored-by: Sam Sec <sam@example.com>", {"sam@example.com"}),
    ("two\n\nco-authored-by:Rene <Rene@Example.com>\nCo-Authored-By: A B <ab@x.io>  ", {"rene@example.com", "ab@x.io"}),
    ("in the body: Co-authored-by: Sam <sam@example.com> is quoted mid-line", set()),
    ("no angle brackets\n\nCo-authored-by: sam@example.com", set()),
    ("doubled brackets\n\nCo-authored-by: Sam <<sam@example.com>>", {"sam@example.com"}),
    ("a mailto link\n\nCo-authored-by: Sam <mailto:Sam@example.com>", {"sam@example.com"}),
    ("a +tag and a note after\n\nCo-authored-by: Sam <sam+pair@example.com> (pairing)", {"sam@example.com"}),
    ("full-width\n\nCo-authored-by: Sam <ｓａｍ@example.com>", {"sam@example.com"}),
    ("", set()),
])
def test_coauthor_trailers(message, emails) -> None:
    assert parse_coauthors(message) == emails
