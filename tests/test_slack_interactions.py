"""What the gate hears from Slack: the signature check and the parsed interactions (pure, milliseconds)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest

from promotion_gate.checklists.signoff import Action
from promotion_gate.notifications.slack_interactions import (
    ACTION_APPROVE, ACTION_COMMENT, ACTION_REASON, ACTION_REJECT, BLOCK_COMMENT, BLOCK_REASON, VIEW_REJECT,
    ButtonClick, Ignored, InteractionError, MessageRef, ReasonSubmission, SignoffTarget, click_from,
    parse_interaction, reject_metadata, verify_signature,
)
from tests.fakes.slack_payloads import (
    block_actions_payload, build_interaction_request, form_encode, sign_slack, view_submission_payload,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
DOC_TIME = 1531420618
TARGET = SignoffTarget(run="0b5f0e4e-9d1c-4a57-9a0e-4d1f2b3c4d5e", key="acme/models#7@" + "a" * 40 + ":support-assistant",
                       digest="0123456789abcdef", role="security")


# the signature


@pytest.mark.parametrize("timestamp, signature, now, problem", [
    (str(DOC_TIME), DOC_SIGNATURE, DOC_TIME, None),
    (str(DOC_TIME), DOC_SIGNATURE, DOC_TIME + 299, None),
    (str(DOC_TIME), DOC_SIGNATURE, DOC_TIME - 300, None),
    (str(DOC_TIME), DOC_SIGNATURE, DOC_TIME + 301, "the request is more than 5 minutes old (a replayed click)"),
    (str(DOC_TIME), DOC_SIGNATURE, DOC_TIME + 360, "the request is more than 5 minutes old (a replayed click)"),
    (str(DOC_TIME), DOC_SIGNATURE[:-1] + "0", DOC_TIME, "the Slack signature does not match"),
    (str(DOC_TIME + 1), DOC_SIGNATURE, DOC_TIME, "the Slack signature does not match"),
    (str(DOC_TIME), "v1=" + DOC_SIGNATURE[3:], DOC_TIME, "the Slack signature does not match"),
    (None, DOC_SIGNATURE, DOC_TIME, "the request carries no Slack signature"),
    (str(DOC_TIME), None, DOC_TIME, "the request carries no Slack signature"),
    ("-1", DOC_SIGNATURE, DOC_TIME, "the request timestamp is not a number"),
])
def test_the_signature_is_slacks_documented_example(timestamp, signature, now, problem):
    assert verify_signature(SECRET, DOC_BODY, timestamp, signature, now) == problem


def test_a_forged_body_with_a_fresh_timestamp_is_refused_whatever_its_age():
    body, headers = build_interaction_request({"type": "block_actions"}, "another-secret", timestamp=DOC_TIME)
    assert verify_signature(SECRET, body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"],
                            DOC_TIME) == "the Slack signature does not match"
    assert sign_slack(SECRET, DOC_TIME, DOC_BODY) == DOC_SIGNATURE


# the parse


def _click(action_id=ACTION_APPROVE, value=None, user="U0SAM", **kwargs) -> bytes:
    message = {"ts": "1700000000.000100", "blocks": []}
    payload = block_actions_payload(action_id=action_id, user_id=user, value=value or TARGET.encode(),
                                    channel_id="C0SEC", message=message, **kwargs)
    return form_encode(payload)


def test_an_approve_click_is_parsed_into_plain_values():
    click = parse_interaction(_click())
    assert click == ButtonClick(user="U0SAM", action=Action.approve, target=TARGET,
                                message=MessageRef(role="security", channel="C0SEC", ts="1700000000.000100"),
                                trigger_id="1111.2222.fake-trigger", team="T0FAKE", app="A0FAKE")


def test_the_optional_comment_comes_from_the_message_input():
    payload = block_actions_payload(action_id=ACTION_APPROVE, user_id="U0SAM", value=TARGET.encode(),
                                    channel_id="C0SEC", message={"ts": "1.2", "blocks": []})
    payload["state"] = {"values": {BLOCK_COMMENT: {ACTION_COMMENT: {"type": "plain_text_input",
                                                                    "value": "  {{ flow_run.id }} looks fine "}}}}
    click = parse_interaction(form_encode(payload))
    assert click.comment == "{{ flow_run.id }} looks fine"


def test_a_reject_click_and_the_reason_modal():
    assert parse_interaction(_click(ACTION_REJECT)).action == Action.reject
    payload = view_submission_payload(
        callback_id=VIEW_REJECT, user_id="U0RENE", values={BLOCK_REASON: {ACTION_REASON: "drill too small"}},
        private_metadata=reject_metadata(TARGET, MessageRef(role="security", channel="C0SEC", ts="1.2")))
    assert parse_interaction(form_encode(payload)) == ReasonSubmission(
        user="U0RENE", target=TARGET, message=MessageRef(role="security", channel="C0SEC", ts="1.2"),
        reason="drill too small", team="T0FAKE", app="A0FAKE")


@pytest.mark.parametrize("body, kind", [
    (form_encode({"type": "view_closed"}), "view_closed"),
    (form_encode({"type": "shortcut"}), "shortcut"),
    (_click("some_other_button"), "block_actions:some_other_button"),
    (form_encode(view_submission_payload(callback_id="other", user_id="U1", values={})), "view_submission"),
])
def test_interactions_the_gate_does_not_act_on_are_ignored(body, kind):
    assert parse_interaction(body) == Ignored(kind=kind)


@pytest.mark.parametrize("body, message", [
    (b"not a form", "the body is not a form-encoded Slack payload"),
    (b"payload=%7Bnot-json", "the body is not a form-encoded Slack payload"),
    (urlencode({"payload": "[1]"}).encode(), "the payload is not an object"),
    (b"payload=" + b"x" * 70000, "the request body is too large"),
    (_click(value="approve"), "the button value is not a sign-off target"),
    (_click(value=TARGET.model_copy(update={"digest": "XYZ"}).encode()), "the button value is not a sign-off target"),
    (_click(user="<!channel>"), "the interaction is malformed at user"),
    (form_encode(view_submission_payload(callback_id=VIEW_REJECT, user_id="U0RENE", values={},
                                         private_metadata=reject_metadata(TARGET, None))), "malformed at reason"),
    (form_encode(view_submission_payload(callback_id=VIEW_REJECT, user_id="U0RENE", values={},
                                         private_metadata="{")), "private_metadata is not JSON"),
])
def test_malformed_interactions_are_errors(body, message):
    with pytest.raises(InteractionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_interaction(body)


def test_the_click_the_core_judges_holds_only_validated_values():
    at = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)
    click = click_from(parse_interaction(_click()), at, "sam@example.com")
    assert click.model_dump(mode="json") == {
        "reviewer": "U0SAM", "channel": "slack", "action": "approve", "digest": TARGET.digest,
        "at": "2026-11-24T12:00:00Z", "role": "security", "comment": None, "email": "sam@example.com",
        "guest": False, "item": None, "expires": None}
    assert all(not isinstance(v, (dict, list)) for v in click.model_dump().values())


def test_a_target_round_trips_and_fits_a_button_value():
    assert SignoffTarget.decode(TARGET.encode()) == TARGET
    assert len(TARGET.encode()) < 2000
    assert json.loads(TARGET.encode())["role"] == "security"
