"""Webhook deliveries in, typed asks out: the signature check and the event parser (pure)."""

from __future__ import annotations

import json

import pytest

from promotion_gate.notifications.github_events import (
    MAX_BODY_BYTES, Ignore, Ping, Promote, Supersede, WebhookError, Withdraw, build_parameters, build_tags,
    parse_changed_systems, parse_delivery, parse_parameters, verify_signature,
)
from tests.fakes.github_payloads import encode_payload, ping_event, pull_request_event, sign_webhook

LABEL, BLOCKED = "promote:production", "promotion:blocked"
HEAD, OLD = "a" * 40, "b" * 40
OWNER = {"login": "acme", "id": 1, "node_id": "O1", "type": "Organization", "url": "https://api.github.com/users/acme",
         "avatar_url": "https://avatars.example/1"}
REPOSITORY = {"id": 7, "full_name": "acme/models", "name": "models", "owner": OWNER,
              "url": "https://api.github.com/repos/acme/models", "default_branch": "main"}


def user(login: str) -> dict:
    return {"login": login, "id": 9, "type": "User"}


def pull(labels=(LABEL,), head=HEAD, state="open", number=12, author="alice") -> dict:
    return {"number": number, "state": state, "user": user(author), "labels": [{"name": n} for n in labels],
            "head": {"sha": head, "ref": "feature", "label": "acme:feature", "repo": REPOSITORY},
            "base": {"ref": "main", "sha": OLD, "repo": REPOSITORY}}


def event(action: str, label: str | None = LABEL, sender: str = "dana", **pull_args) -> bytes:
    payload = pull_request_event(action, pull(**pull_args), REPOSITORY, user(sender),
                                 label={"name": label} if label and action in ("labeled", "unlabeled") else None,
                                 before=OLD if action == "synchronize" else None,
                                 after=HEAD if action == "synchronize" else None)
    return encode_payload(payload)


def parse(name: str, body: bytes):
    return parse_delivery(name, body, label=LABEL, blocked_label=BLOCKED)


# signatures


def test_githubs_documented_test_vector_verifies():
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify_signature(b"It's a Secret to Everybody", b"Hello, World!", header)
    assert not verify_signature(b"It's a Secret to Everybody", b"Hello, World?", header)


@pytest.mark.parametrize("header", [
    None, "", "sha256=", "sha1=" + "0" * 40, "sha256=" + "0" * 64, "sha256=" + "Z" * 64,
    sign_webhook(b"{}", "s3cret").upper(), sign_webhook(b"{}", "s3cret") + "00", " " + sign_webhook(b"{}", "s3cret"),
    sign_webhook(b"{}", "another secret"), sign_webhook(b"{} ", "s3cret"),
])
def test_missing_malformed_or_forged_signatures_do_not_verify(header):
    assert not verify_signature(b"s3cret", b"{}", header)
    assert verify_signature(b"s3cret", b"{}", sign_webhook(b"{}", "s3cret"))


def test_an_empty_secret_is_refused_not_accepted():
    with pytest.raises(ValueError):
        verify_signature(b"", b"{}", sign_webhook(b"{}", ""))


# events


@pytest.mark.parametrize("body, expected", [
    (event("labeled"), Promote("acme/models", 12, HEAD, "dana", "alice")),
    (event("labeled", sender="renovate[bot]"), Promote("acme/models", 12, HEAD, "renovate[bot]", "alice")),
    (event("synchronize"), Supersede("acme/models", 12, HEAD, "dana", OLD, "alice")),
    (event("unlabeled", labels=()), Withdraw("acme/models", 12, HEAD, "dana", "promotion withdrawn by dana")),
    (event("closed", state="closed"),
     Withdraw("acme/models", 12, HEAD, "dana", "promotion withdrawn: pull request closed by dana")),
])
def test_pull_request_events_become_asks(body, expected):
    assert parse("pull_request", body) == expected


@pytest.mark.parametrize("body", [event("opened"), event("reopened"), event("synchronize", labels=("bug",))])
def test_pull_requests_without_the_label_ask_the_lock_guard(body):
    from promotion_gate.notifications.check_events import GuardLocks

    assert parse("pull_request", body) == GuardLocks("acme/models", 12, HEAD, "dana", "main")


@pytest.mark.parametrize("name, body, reason", [
    ("pull_request", event("labeled", label="bug"), "another label"),
    ("pull_request", event("unlabeled", label="bug"), "another label"),
    ("pull_request", event("labeled", state="closed"), f"{LABEL} on a pull request that is not open"),
    ("pull_request", event("unlabeled", labels=(BLOCKED,)), f"the gate swapped {LABEL} for {BLOCKED}"),
    ("pull_request", event("closed", labels=(), state="closed"), "pull_request closed is not handled"),
    ("pull_request", event("opened", state="closed"), "a pull request that is not open"),
    ("pull_request", event("edited"), "pull_request edited is not handled"),
    ("push", b'{"ref": "refs/heads/main"}', "event push is not handled"),
    ("issues", b'{"action": "labeled"}', "event issues is not handled"),
])
def test_other_events_and_labels_are_ignored_with_a_reason(name, body, reason):
    assert parse(name, body) == Ignore(reason)


def test_ping_is_answered():
    body = encode_payload(ping_event(1, REPOSITORY, user("acme"), "https://gate.example/github/webhook"))
    assert parse("ping", body) == Ping("Keep it logically awesome.")


def without(body: bytes, *path: str) -> bytes:
    payload = json.loads(body)
    target = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return encode_payload(payload)


def replaced(body: bytes, value, *path: str) -> bytes:
    payload = json.loads(body)
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return encode_payload(payload)


@pytest.mark.parametrize("name, body, reason", [
    ("pull_request", event("labeled")[:-7], "the body is not JSON"),
    ("pull_request", b"", "the body is not JSON"),
    ("pull_request", b"\xff\xfe{", "the body is not JSON"),
    ("pull_request", b"[1, 2]", "the body is not a JSON object"),
    ("pull_request", b'"labeled"', "the body is not a JSON object"),
    ("ping", b"null", "the body is not a JSON object"),
    (None, event("labeled"), "no X-GitHub-Event header"),
    ("pull_request", without(event("labeled"), "pull_request", "head", "sha"),
     "pull_request.head.sha is missing or not a 40-character commit SHA"),
    ("pull_request", replaced(event("labeled"), "HEAD", "pull_request", "head", "sha"),
     "pull_request.head.sha is missing or not a 40-character commit SHA"),
    ("pull_request", without(event("labeled"), "pull_request", "head"), "pull_request.head is missing or not an object"),
    ("pull_request", without(event("labeled"), "pull_request"), "pull_request is missing or not an object"),
    ("pull_request", without(event("labeled"), "label"), "label is missing or not an object"),
    ("pull_request", replaced(event("labeled"), "../../etc", "repository", "full_name"), "repository.full_name is not owner/name"),
    ("pull_request", replaced(event("labeled"), "{{ x }}", "sender", "login"), "sender.login is not a GitHub login"),
    ("pull_request", replaced(event("labeled"), True, "pull_request", "number"), "pull_request.number is not a positive integer"),
    ("pull_request", replaced(event("synchronize"), "0" * 39, "before"), "before is missing or not a 40-character commit SHA"),
    ("pull_request", replaced(event("labeled"), "x", "pull_request", "labels"), "labels is not a list"),
])
def test_malformed_deliveries_are_400_with_the_reason(name, body, reason):
    with pytest.raises(WebhookError) as error:
        parse(name, body)
    assert (error.value.status, error.value.reason) == (400, reason)


def test_the_body_limit_is_githubs_25_mb():
    assert MAX_BODY_BYTES == 25 * 1024 * 1024


# what the gateway hands to Prefect


@pytest.mark.parametrize("ask, key", [
    (Promote("acme/models", 12, HEAD, "dana", "alice"), f"acme/models#12@{HEAD}"),
    (Supersede("acme/models", 12, HEAD, "dana", OLD), f"acme/models#12@{HEAD}"),
    (Withdraw("acme/models", 12, HEAD, "dana", "promotion withdrawn by dana"), f"acme/models#12@{HEAD}:withdrawn"),
])
def test_asks_round_trip_as_plain_parameters_with_their_key(ask, key):
    params = build_parameters(ask)
    assert ask.key == key and parse_parameters(params) == ask
    assert all(isinstance(v, (str, int, type(None))) for v in params.values())
    assert build_tags(ask) == ["pr:acme/models#12", "sha:aaaaaaa", "promotion-request"]


@pytest.mark.parametrize("change", [
    {"action": "merge"}, {"repository": "acme"}, {"pull_request": 0}, {"head_sha": "main"}, {"sender": "a b"},
    {"author": "{{ secret }}"}, {"head_sha": None},
])
def test_parameters_are_validated_again_in_the_flow(change):
    params = build_parameters(Promote("acme/models", 12, HEAD, "dana", "alice")) | change
    with pytest.raises(ValueError):
        parse_parameters(params)


def test_changed_paths_name_the_systems():
    paths = ["ai-systems/x/promotion.yaml", "ai-systems/y/evals/a.json", "ai-systems/x/evals/b.json", "README.md",
             "ai-systems/readme.md", "ai-systems/Bad_Name/promotion.yaml", "docs/ai-systems/z/promotion.yaml"]
    assert parse_changed_systems(paths) == ["x", "y"]
    assert parse_changed_systems(["README.md"]) == []
