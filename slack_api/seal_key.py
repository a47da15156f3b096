"""The key every answer to a waiting promotion is sealed with, read from the Slack signing secret.

The gateway seals a click with it, the sweeper a reminder or an expiry, the side that cancels a
gate run its void; the flow and the sweeper check them with it (notifications/slack_interactions.py
``answer_seal_key``: derived from the secret, which itself never signs anything else).
"""

from __future__ import annotations

import logging

from promotion_gate.config.secrets import read_secret
from promotion_gate.config.settings import Settings
from promotion_gate.notifications.error_text import build_error_line
from promotion_gate.notifications.slack_interactions import answer_seal_key

log = logging.getLogger("promotion_gate.expiry")


def read_seal_key(settings: Settings) -> bytes | None:
    """The seal key, or None when the signing secret is not set where this runs (a blank secret or
    an unreadable block raises, as read_secret does)."""
    secret = read_secret(settings, "slack_signing_secret")
    return None if secret is None else answer_seal_key(secret.get_secret_value())


def sweeper_key(settings: Settings, who: str = "sweep",
                unsealed: str = "no reminder or expiry can be sealed, none is sent; no cancellation can be authenticated") -> bytes | None:
    """The seal key for a side that must go on without it (the sweeper, the void sender): None,
    logged as `who` with what is `unsealed` then, when the secret is not set or cannot be read.
    The flow acts on no reminder, expiry or void unsealed: anyone who can reach the Prefect API could send one."""
    try:
        key = read_seal_key(settings)
    except Exception as exc:  # noqa: BLE001 - a blank secret or an unreadable block: logged, the rest goes on
        log.error("%s: the Slack signing secret could not be read: %s", who, build_error_line(exc))
        return None
    if key is None:
        log.error("%s: the Slack signing secret is not set where it runs (PROMOTION_GATE_SLACK_SIGNING_SECRET): %s",
                  who, unsealed)
    return key
