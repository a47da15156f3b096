"""The route POST /slack/interactions: mounted only with Slack, refuses what is not Slack's, answers at once."""

from __future__ import annotations

import json
import logging
import time

import pytest
from pydantic import SecretStr

from promotion_gate.config.settings import SettingsError, load_settings
from promotion_gate.gateway.slack_routes import routes
from promotion_gate.notifications.slack_interactions import ACTION_APPROVE, ACTION_REJECT, VIEW_REJECT, SignoffTarget
from tests.fakes import FakeSlack
from tests.fakes.fixtures import fake_slack, slack_server  # noqa: F401
from tests.fakes.slack_payloads import block_actions_payload, form_encode, signed_headers
from tests.slack_support import SECRET, gateway, post_interaction, slack_env  # noqa: F401

TARGET = SignoffTarget(run="0b5f0e4e-9d1c-4a57-9a0e-4d1f2b3c4d5e", key="acme/models#7@" + "c" * 40 + ":x",
                       digest="0123456789abcdef", role="security")


def button(action_id: str = ACTION_APPROVE, user: str = "U0SAM") -> dict:
    return block_actions_payload(action_id=action_id, user_id=user, value=TARGET.encode(), channel_id="C0SEC",
                                 message={"ts": "1700000000.000100", "blocks": []})


def test_no_route_without_the_slack_channel_and_no_start_without_its_secrets(monkeypatch):
    monkeypatch.delenv("PROMOTION_GATE_SIGNOFF_CHANNEL", raising=False)
    assert routes(load_settings()) == []
    monkeypatch.setenv("PROMOTION_GATE_SIGNOFF_CHANNEL", "slack")
    monkeypatch.setenv("PROMOTION_GATE_SLACK_BOT_TOKEN", FakeSlack.BOT_TOKEN)
    with pytest.raises(SettingsError, match="PROMOTION_GATE_SLACK_SIGNING_SECRET is required"):
        routes(load_settings())
    monkeypatch.setenv("PROMOTION_GATE_SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.delenv("PROMOTION_GATE_SLACK_BOT_TOKEN")
    with pytest.raises(SettingsError, match="PROMOTION_GATE_SLACK_BOT_TOKEN is required"):
        routes(load_settings())


def test_the_gateway_app_mounts_the_route(slack_env):
    from promotion_gate.gateway.app import build_app

    async def starter(ask) -> str:
        return "run"

    app = build_app(load_settings(), starter=starter, webhook_secret=SecretStr("webhook-secret"))
    assert "/slack/interactions" in {getattr(r, "path", None) for r in app.routes}


@pytest.mark.parametrize("headers, status, text", [
    ({"Content-Type": "application/x-www-form-urlencoded"}, 401, "the request carries no Slack signature"),
    ("stale", 401, "the request is more than 5 minutes old (a replayed click)"),
    ("forged", 401, "the Slack signature does not match"),
])
def test_what_slack_did_not_send_is_refused_with_401(gateway, headers, status, text):
    body = form_encode(button())
    if headers == "stale":
        headers = signed_headers(SECRET, body, int(time.time()) - 301)
    elif headers == "forged":
        headers = signed_headers("another-secret", body)
    response = gateway.post("/slack/interactions", content=body, headers=headers)
    assert (response.status_code, response.json(), response.headers["connection"]) == (status, {"error": text}, "close")


@pytest.mark.parametrize("payload, status", [
    ({"type": "view_closed", "user": {"id": "U0SAM"}}, 200),
    (block_actions_payload(action_id="elsewhere", user_id="U0SAM", channel_id="C0SEC", message={"ts": "1.2"}), 200),
    (dict(button(), user={"id": "not a user"}), 400),
])
def test_what_the_gate_does_not_act_on_is_acknowledged_and_malformed_is_400(gateway, slack_env, payload, status):
    assert post_interaction(gateway, payload).status_code == status
    assert slack_env.calls() == []


def test_reject_opens_the_reason_modal_and_decides_nothing(gateway, slack_env):
    assert post_interaction(gateway, button(ACTION_REJECT)).status_code == 200
    [view] = slack_env.views()
    assert view["callback_id"] == VIEW_REJECT and view["trigger_id"] == "1111.2222.fake-trigger"
    assert SignoffTarget.model_validate(json.loads(view["private_metadata"])["target"]) == TARGET
    assert [c.method for c in slack_env.calls()] == ["views.open"]


@pytest.mark.usefixtures("prefect_harness")
def test_a_click_naming_no_waiting_run_is_told_so_and_no_secret_is_logged(gateway, slack_env, caplog):
    caplog.set_level(logging.DEBUG)
    assert post_interaction(gateway, button()).status_code == 200
    assert post_interaction(gateway, button(), secret="forged").status_code == 401
    assert [e["text"] for e in slack_env.ephemerals("C0SEC")] == [
        "Your answer on the promotion of this system was not counted: "
        "this message does not belong to a promotion the gate knows."]
    logged = caplog.text + repr(load_settings())
    assert SECRET not in logged and FakeSlack.BOT_TOKEN not in logged


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize("again, action, calls", [
    ("the same signed request", ACTION_APPROVE, ["chat.postEphemeral"]),  # a captured request replayed in the window
    ("a Slack retry", ACTION_APPROVE, ["chat.postEphemeral"]),  # X-Slack-Retry-Num, signed anew, the same body
    ("the same signed request", ACTION_REJECT, ["views.open"]),
])
def test_a_request_seen_before_is_acknowledged_and_judged_once(gateway, slack_env, again, action, calls):
    """Every request Slack signs is one interaction: a repeat within the window (a replay, or Slack
    retrying an answer it thinks it missed) is answered 200, counted, and judged, told or recorded nowhere."""
    body = form_encode(button(action))
    headers = signed_headers(SECRET, body)
    assert gateway.post("/slack/interactions", content=body, headers=headers).status_code == 200
    if again == "a Slack retry":
        headers = dict(signed_headers(SECRET, body, int(time.time()) + 1), **{"X-Slack-Retry-Num": "1",
                                                                              "X-Slack-Retry-Reason": "http_timeout"})
    assert gateway.post("/slack/interactions", content=body, headers=headers).status_code == 200
    assert [c.method for c in slack_env.calls() if c.method != "users.info"] == calls
