"""Who a click is: the policy identity behind an authenticated account, and every account it links.

Pure: the shell asks Slack (``users.info``) and GitHub (commits, trailers) and passes plain values.

- A Slack click is resolved from its **user id**, the one thing Slack's signature vouches for.
  The profile email is a confirmation only: when both the id's identity and an email exist they
  must agree; an id that maps to one identity and an email to another is an ``identity-conflict``.
- An account is judged before its identity: only the configured workspace (team, and enterprise
  and app where set), only live humans (not deleted, not a bot, not an app user), and guests only
  where the role allows them.
- Separation of duties compares *linked* identities: an identity's GitHub login, Slack id and
  email, so an unmapped committer email still excludes the policy identity that owns that email.
  Emails compare as mailboxes (:func:`mailbox`): a ``+tag``, case, full-width or zero-width
  characters, spaces, ``mailto:`` and a trailing dot do not make another person, and a GitHub
  noreply address (``12345+login@users.noreply.github.com``) is that login's.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, ConfigDict

from promotion_gate.checklists.policy import Policy

IDENTITY_CONFLICT = "identity-conflict"
FOREIGN_WORKSPACE = "foreign-workspace"
NOT_A_PERSON = "not-a-person"
GUEST = "guest"
_TRAILER = re.compile(r"^\s*co-authored-by\s*:\s*(?P<name>[^<\n]*?)\s*<+\s*(?P<email>[^<>\s]+@[^<>\s]+?)\s*>+[^\n]*$",
                      re.IGNORECASE | re.MULTILINE)
_NOREPLY = re.compile(r"^(?:\d+\+)?(?P<login>[a-z0-9][a-z0-9-]*)@users\.noreply\.github\.com$")


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackAccount(Frozen):
    """What the signed request and ``users.info`` say about the clicking account."""

    user: str
    team: str | None = None
    enterprise: str | None = None
    app: str | None = None
    user_team: str | None = None
    email: str | None = None
    deleted: bool = False
    bot: bool = False
    app_user: bool = False
    guest: bool = False


class Workspace(Frozen):
    """The one Slack workspace (and enterprise grid, and app) whose clicks count."""

    team: str
    enterprise: str | None = None
    app: str | None = None


def account_problem(account: SlackAccount, workspace: Workspace) -> tuple[str, str] | None:
    """(code, reason) when the account may not sign off at all, whoever it claims to be."""
    home = account.user_team if not workspace.enterprise else None  # in a grid, a user's home team may differ
    if account.team != workspace.team or home not in (None, workspace.team):
        return FOREIGN_WORKSPACE, f"the click came from another Slack workspace ({account.team or 'none'})"
    if workspace.enterprise and account.enterprise != workspace.enterprise:
        return FOREIGN_WORKSPACE, f"the click came from another Slack enterprise ({account.enterprise or 'none'})"
    if workspace.app and account.app != workspace.app:
        return FOREIGN_WORKSPACE, f"the click was sent for another Slack app ({account.app or 'none'})"
    if account.deleted:
        return NOT_A_PERSON, f"{account.user} is a deactivated Slack account"
    if account.bot or account.app_user:
        return NOT_A_PERSON, f"{account.user} is a bot or app account, not a person"
    return None


def _folded(text: str) -> str:
    """``text`` as a comparison key: NFKC (full-width letters are letters), no format characters
    (zero-width spaces and joiners), no spaces at either end, case folded."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if unicodedata.category(c) != "Cf").strip().casefold()


def mailbox(email: str) -> str:
    """The mailbox an address reaches, as separation of duties compares it: ``Sam+ci@Example.COM.``,
    ``mailto:sam@example.com`` and full-width ``ｓａｍ@example.com`` are all ``sam@example.com``. A
    GitHub noreply address keeps its form (:func:`email_key` maps it to the login)."""
    mail = _folded(email)
    mail = mail[len("mailto:"):] if mail.startswith("mailto:") else mail
    local, at, domain = mail.rpartition("@")
    if not at:
        return mail
    domain = domain.rstrip(".")
    if domain != "users.noreply.github.com":
        local = local.split("+", 1)[0] or local
    return f"{local}@{domain}"


def login_key(login: str) -> str:
    """A GitHub login or a console name as separation of duties compares it (case and spaces aside)."""
    return _folded(login)


def email_key(policy: Policy, email: str) -> str:
    """The person behind a commit's or trailer's email: the policy identity that owns the mailbox, or
    the GitHub login of a noreply address (``github:<login>``, or the identity with that login), or
    ``email:<mailbox>``."""
    mail = mailbox(email)
    noreply = _NOREPLY.match(mail)
    if noreply:
        login = noreply.group("login")
        return next((n for n, i in policy.identities.items() if i.github and login_key(i.github) == login), f"github:{login}")
    return next((n for n, i in policy.identities.items() if i.email and mailbox(i.email) == mail), f"email:{mail}")


def resolve(policy: Policy, reviewer: str, channel: str, email: str | None = None) -> tuple[str | None, str | None]:
    """(identity, conflict): the identity of the account, and why it is refused if id and email disagree."""
    if channel == "console":
        return next((n for n, i in policy.identities.items() if reviewer in (n, i.github)), None), None
    by_id = next((n for n, i in policy.identities.items() if i.slack == reviewer), None)
    if not email:
        return by_id, None
    mail = mailbox(email)
    by_email = next((n for n, i in policy.identities.items() if i.email and mailbox(i.email) == mail), None)
    own = policy.identities[by_id].email if by_id else None
    if by_id and ((by_email and by_email != by_id) or (own and mailbox(own) != mail)):
        return by_id, f"{IDENTITY_CONFLICT}: Slack id {reviewer} is {by_id} but its profile email is {mail}"
    if by_id is None and by_email is not None:
        return None, f"{IDENTITY_CONFLICT}: Slack id {reviewer} is not {by_email}'s, though its email is {by_email}'s"
    return by_id, None


def linked(policy: Policy, name: str) -> set[str]:
    """Every account key of an identity (or of an unmapped ``github:``/``email:``/``slack:`` key)."""
    ident = policy.identities.get(name)
    if ident is None:
        return {name}
    keys = {name}
    keys |= {f"github:{login_key(ident.github)}"} if ident.github else set()
    keys |= {f"email:{mailbox(ident.email)}"} if ident.email else set()
    keys |= {f"slack:{ident.slack}"} if ident.slack else set()
    return keys


def owner_of(policy: Policy, key: str) -> str:
    """The policy identity an account key belongs to; the key itself when none does."""
    for name in policy.identities:
        if key == name or key in linked(policy, name):
            return name
    return key


def excluded_keys(policy: Policy, excluded: set[str]) -> set[str]:
    """The excluded people (identities or account keys), widened to every account they link."""
    out: set[str] = set()
    for entry in excluded:
        kind, _, value = entry.partition(":")
        if kind == "email" and value:  # however a producer spelled it: the mailbox, or a noreply's login
            entry = email_key(policy, value)
        elif kind == "github" and value:
            entry = f"github:{login_key(value)}"
        out |= linked(policy, owner_of(policy, entry))
    return out


def is_excluded(policy: Policy, identity: str, reviewer: str, channel: str, email: str | None, excluded: set[str]) -> bool:
    """True when any account of the clicking identity is one of the excluded people's."""
    mine = linked(policy, identity)
    if channel == "slack":
        mine.add(f"slack:{reviewer}")
    if email:
        mine.add(f"email:{mailbox(email)}")
    return bool(mine & excluded_keys(policy, excluded))


def parse_coauthors(message: str) -> set[str]:
    """Emails named in ``Co-authored-by: Name <email>`` trailers of a commit message, as mailboxes."""
    return {mailbox(m.group("email")) for m in _TRAILER.finditer(message or "")}


def committers_of(policy: Policy, emails: set[str]) -> set[str]:
    """The people behind commit and trailer emails (:func:`email_key`)."""
    return {email_key(policy, e) for e in emails if e and e.strip()}
