"""One settings object, read from the environment (prefix PROMOTION_GATE_) at run time.

Secrets are SecretStr: their repr is masked, and they are never flow parameters. A missing or
invalid setting is one clear line (see :func:`load_settings`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROMOTION_GATE_", extra="ignore")

    audit_store: str = "./audit-store"
    policy_path: str | None = None
    label: str = "promote:production"
    blocked_label: str = "promotion:blocked"
    production_branch: str | None = None
    recertify_repositories: list[str] = Field(default_factory=list, description="owner/name of each repository the recertify deployment re-judges")
    signing_key_path: str | None = None
    signing_key: SecretStr | None = None
    signing_key_block: str | None = None
    demo_key_dir: str | None = Field(default=None, description="where the generated demo key lives (default: demo-keys/ next to the store)")
    trusted_keys: str | None = Field(default=None, description="a PEM file of the public keys audit verify and audit index trust")
    trusted_keys_block: str | None = Field(default=None, description="a Prefect Secret block holding those PEM public keys")
    evidence_copy_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0, description="evidence larger than this is kept as its digest and metrics only")

    # GitHub and the gateway (docs/configuration.md). Secrets: the value, or a Prefect Secret
    # block's name in *_block (config/secrets.py reads the value first, then the block).
    github_api_url: str = "https://api.github.com"
    github_token: SecretStr | None = None
    github_token_block: str | None = None
    github_app_id: int | None = Field(default=None, ge=1)
    github_app_private_key: SecretStr | None = None
    github_app_private_key_path: str | None = None
    github_app_private_key_block: str | None = None
    github_installation_id: int | None = Field(default=None, ge=1)
    github_webhook_secret: SecretStr | None = None
    github_webhook_secret_block: str | None = None
    github_seconds_between_requests: float = Field(default=0.25, ge=0)
    github_seconds_between_writes: float = Field(default=1.0, ge=0)
    github_timeout_seconds: int = Field(default=15, ge=1)
    github_retries: int = Field(default=4, ge=0, le=20)
    github_retry_backoff_seconds: float = Field(default=0.5, ge=0)
    github_retry_max_wait_seconds: float = Field(default=60, ge=0)
    prefect_ui_url: str | None = None
    gate_deployment: str = "promotion-gate/promotion-gate"
    request_deployment: str = "promotion-request/promotion-request"
    gateway_ack_seconds: float = Field(default=0.02, ge=0, le=9)
    deployment_environments: list[str] = Field(default_factory=lambda: ["production"],
                                               description="GitHub Environments whose deployments need a promoted lock")
    gateway_read_seconds: float = Field(default=10, gt=0, le=60, description="a body not in by then is cut (408)")
    gateway_header_seconds: float = Field(default=10, gt=0, le=60, description="request headers not in by then: closed")
    gateway_github_bodies: int = Field(default=4, ge=1, le=64, description="webhook bodies over 1 MiB read at once; more: 503")
    gateway_early_pending: bool = Field(default=True, description="the gateway sets the pending status itself after the 202 (gateway/early_pending.py)")
    gateway_early_gates: bool = Field(default=True, description="with the early pending status, the gateway also starts the label's gate runs (gateway/early_pending.py)")
    gateway_pending_seconds: float = Field(default=30, gt=0, le=120, description="the gateway's early pending write is not started later than this after the delivery")
    gateway_slack_bodies: int = Field(default=64, ge=1, le=256, description="Slack bodies read at once; more: 503")
    unstarted_grace_minutes: float = Field(default=30, gt=0, description="a gate run not started by then is decided as an error")

    # Slack sign-off (docs/slack.md). Secrets: the value, or a Prefect Secret block's name in *_block.
    signoff_channel: Literal["console", "slack"] = "console"
    slack_api_url: str = "https://slack.com/api/"
    slack_bot_token: SecretStr | None = None
    slack_bot_token_block: str | None = None
    slack_signing_secret: SecretStr | None = None
    slack_signing_secret_block: str | None = None
    slack_channels: dict[str, str] = Field(default_factory=dict, description="role -> Slack channel id")
    slack_timeout_seconds: float = Field(default=10, gt=0)
    slack_retries: int = Field(default=3, ge=0, le=10)
    slack_retry_backoff_seconds: float = Field(default=0.5, ge=0)
    slack_retry_max_wait_seconds: float = Field(default=60, ge=0, description="a longer Retry-After is not waited for")
    slack_click_wait_seconds: float = Field(default=30, gt=0, description="how long a click waits for a busy run")
    slack_team_id: str | None = Field(default=None, pattern=r"^T[A-Z0-9]{2,30}$", description="the only workspace whose clicks count")
    slack_enterprise_id: str | None = Field(default=None, pattern=r"^E[A-Z0-9]{2,30}$")
    slack_app_id: str | None = Field(default=None, pattern=r"^A[A-Z0-9]{2,30}$")

    @field_validator("slack_api_url")
    @classmethod
    def _is_slack_api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") + "/"

    @field_validator("github_api_url", "prefect_ui_url")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("gate_deployment", "request_deployment")
    @classmethod
    def _is_deployment_name(cls, value: str) -> str:
        if value.count("/") != 1 or value.startswith("/") or value.endswith("/"):
            raise ValueError("must be <flow name>/<deployment name>")
        return value


class SettingsError(Exception):
    pass


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "PROMOTION_GATE_" + "_".join(str(p) for p in first["loc"]).upper()
        raise SettingsError(f"setting {name}: {first['msg']}") from None
