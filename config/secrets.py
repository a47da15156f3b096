"""Secrets, read at run time in one place: the environment first, then a Prefect Secret block.

Each secret is a setting (``PROMOTION_GATE_GITHUB_TOKEN``) or the name of a Prefect Secret block
that holds it (``PROMOTION_GATE_GITHUB_TOKEN_BLOCK``); a private key may also be a file
(``PROMOTION_GATE_GITHUB_APP_PRIVATE_KEY_PATH``). Values are returned as ``SecretStr`` and never
appear in an exception, a log line or a flow parameter. Prefect is imported only when a block is
actually named, so the offline commands never load it.
"""

from __future__ import annotations

from pathlib import Path

from promotion_gate.config.settings import Settings, SettingsError
from pydantic import SecretStr

SECRET_NAMES = ("github_token", "github_app_private_key", "github_webhook_secret",
                "slack_bot_token", "slack_signing_secret")


def read_secret(settings: Settings, name: str) -> SecretStr | None:
    """The secret `name` (a Settings field): its value, its file, or its Prefect Secret block."""
    if name not in Settings.model_fields or f"{name}_block" not in Settings.model_fields:
        raise ValueError(f"{name} is not a secret setting (a SecretStr with a {name}_block)")
    value = getattr(settings, name)
    if value is not None and value.get_secret_value():
        return _not_blank(value, f"PROMOTION_GATE_{name.upper()}")
    path = getattr(settings, f"{name}_path", None)
    if path:
        return _not_blank(_read_file(path, name), f"PROMOTION_GATE_{name.upper()}_PATH")
    block = getattr(settings, f"{name}_block")
    return _not_blank(_read_block(block, name), f"PROMOTION_GATE_{name.upper()}_BLOCK") if block else None


def _not_blank(secret: SecretStr, env: str) -> SecretStr:
    """A secret of spaces (or tabs, newlines) is a mistake, never a key: it stops start-up like a missing one."""
    if not secret.get_secret_value().strip():
        raise SettingsError(f"setting {env} is blank (only whitespace): set the secret itself")
    return secret


def require_secret(settings: Settings, name: str) -> SecretStr:
    secret = read_secret(settings, name)
    if secret is None:
        env = f"PROMOTION_GATE_{name.upper()}"
        raise SettingsError(f"setting {env} is required (or {env}_BLOCK, the name of a Prefect Secret block)")
    return secret


def _read_file(path: str, name: str) -> SecretStr:
    try:
        return SecretStr(Path(path).read_text())
    except OSError as exc:
        env = f"PROMOTION_GATE_{name.upper()}_PATH"
        raise SettingsError(f"setting {env}: cannot read {path}: {exc.strerror}") from None


def _read_block(block: str, name: str) -> SecretStr:
    env = f"PROMOTION_GATE_{name.upper()}_BLOCK"
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(block).get()
    except Exception as exc:  # the block's value never reaches the message, only its name
        raise SettingsError(f"setting {env}: Prefect Secret block {block!r} could not be loaded ({type(exc).__name__})") from None
    if not isinstance(value, str) or not value:
        raise SettingsError(f"setting {env}: Prefect Secret block {block!r} does not hold a string")
    return SecretStr(value)
