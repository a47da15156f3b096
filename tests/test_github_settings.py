"""Settings and secrets: every setting documented, one clear line when one is wrong, secrets read
from the environment, a file or a Prefect Secret block and never shown; the retry layer's rules."""

from __future__ import annotations

import re

import pytest
from github import GithubException, RateLimitExceededException
from pydantic import SecretStr

from promotion_gate.github_api.client import GitHubError, GitHubUnavailable, Retrying, transient_wait
from promotion_gate.config.secrets import read_secret, require_secret
from promotion_gate.config.settings import Settings, SettingsError, load_settings
from tests.github_support import ROOT


def test_every_setting_is_in_the_configuration_reference():
    documented = set(re.findall(r"`(PROMOTION_GATE_[A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))
    settings = {f"PROMOTION_GATE_{name.upper()}" for name in Settings.model_fields}
    assert settings - documented == set()
    assert documented - settings == set()


@pytest.mark.parametrize("name, value, message", [
    ("GITHUB_API_URL", "api.github.com", "setting PROMOTION_GATE_GITHUB_API_URL: Value error, must be an http(s) URL"),
    ("GITHUB_APP_ID", "0", "setting PROMOTION_GATE_GITHUB_APP_ID: Input should be greater than or equal to 1"),
    ("GATE_DEPLOYMENT", "promotion-gate", "setting PROMOTION_GATE_GATE_DEPLOYMENT: Value error, must be <flow name>/<deployment name>"),
    ("GITHUB_SECONDS_BETWEEN_WRITES", "-1", "setting PROMOTION_GATE_GITHUB_SECONDS_BETWEEN_WRITES: Input should be greater than or equal to 0"),
])
def test_an_invalid_setting_is_one_line_naming_it(monkeypatch, name, value, message):
    monkeypatch.setenv(f"PROMOTION_GATE_{name}", value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value) == message


def test_secrets_are_masked_everywhere(monkeypatch):
    monkeypatch.setenv("PROMOTION_GATE_GITHUB_TOKEN", "ghp_VISIBLEVISIBLE")
    settings = load_settings()
    assert "ghp_VISIBLE" not in repr(settings) and "ghp_VISIBLE" not in str(settings)
    assert "ghp_VISIBLE" not in settings.model_dump_json()
    assert read_secret(settings, "github_token").get_secret_value() == "ghp_VISIBLEVISIBLE"


def test_a_key_file_is_read_and_a_missing_one_is_named(tmp_path):
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    assert read_secret(Settings(github_app_private_key_path=str(key)), "github_app_private_key").get_secret_value().startswith("-----")
    with pytest.raises(SettingsError, match=r"PROMOTION_GATE_GITHUB_APP_PRIVATE_KEY_PATH: cannot read .*nope.pem"):
        read_secret(Settings(github_app_private_key_path=str(tmp_path / "nope.pem")), "github_app_private_key")


def test_only_secret_settings_are_read_as_secrets():
    with pytest.raises(ValueError):
        read_secret(Settings(), "label")
    with pytest.raises(SettingsError, match="PROMOTION_GATE_GITHUB_TOKEN is required"):
        require_secret(Settings(), "github_token")


@pytest.mark.usefixtures("prefect_harness")
def test_a_secret_comes_from_a_prefect_secret_block_and_its_value_never_from_errors():
    from prefect.blocks.system import Secret

    Secret(value="from-the-block").save("gate-test-webhook-secret", overwrite=True)
    settings = Settings(github_webhook_secret_block="gate-test-webhook-secret")
    assert require_secret(settings, "github_webhook_secret").get_secret_value() == "from-the-block"
    assert Settings(github_webhook_secret=SecretStr("env"), github_webhook_secret_block="gate-test-webhook-secret") \
        .github_webhook_secret.get_secret_value() == "env"  # the environment first
    with pytest.raises(SettingsError) as error:
        require_secret(Settings(github_token_block="no-such-block"), "github_token")
    assert str(error.value) == ("setting PROMOTION_GATE_GITHUB_TOKEN_BLOCK: Prefect Secret block 'no-such-block' "
                                "could not be loaded (ValueError)")


# the retry layer


def github_error(status: int, headers: dict | None = None, message: str = "Bad Gateway") -> GithubException:
    return GithubException(status, {"message": message}, headers or {})


@pytest.mark.parametrize("exc, expected", [
    (github_error(502), True),  # True: after the exponential backoff
    (github_error(503), True),
    (github_error(500), True),
    (github_error(403, {"Retry-After": "7"}, "You have exceeded a secondary rate limit."), 7.0),
    (github_error(429, {"retry-after": "3"}), 3.0),
    (github_error(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1030"}, "API rate limit exceeded"), 30.0),
    (github_error(403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "999"}, "API rate limit exceeded"), 1.0),
    (RateLimitExceededException(403, {"message": "You have exceeded a secondary rate limit."}, {}), 60.0),
    (github_error(403, {}, "Resource not accessible by integration"), None),
    (github_error(404, {}, "Not Found"), None),
    (github_error(422, {}, "Validation Failed"), None),
    (github_error(401, {}, "Bad credentials"), None),
    (ValueError("not GitHub"), None),
])
def test_only_named_failures_are_retried_with_the_wait_github_asks_for(exc, expected):
    assert transient_wait(exc, now=1000.0) == expected


def test_retrying_retries_and_gives_up_with_a_wrapped_error():
    answers = [github_error(502), github_error(429, {"Retry-After": "2"}), "done"]

    def flaky():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert Retrying(retries=3, backoff=0.1)("read x", flaky) == "done" and answers == []
    with pytest.raises(GitHubUnavailable, match=r"^GitHub 502 on write y: Bad Gateway \(after 3 tries\)$"):
        Retrying(retries=2, backoff=0)("write y", lambda: (_ for _ in ()).throw(github_error(502)))
    with pytest.raises(GitHubUnavailable, match="after 1 tries"):  # a limit too far away is not waited for
        Retrying(retries=5, max_wait=10)("z", lambda: (_ for _ in ()).throw(github_error(429, {"Retry-After": "3600"})))
    with pytest.raises(GitHubError) as error:
        Retrying()("w", lambda: (_ for _ in ()).throw(github_error(422, {}, "Validation Failed")))
    assert not isinstance(error.value, GitHubUnavailable) and error.value.status == 422
