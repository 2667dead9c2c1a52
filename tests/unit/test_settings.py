"""Settings fail fast and clearly when a secret the process depends on is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from shared.admin.settings import AdminServiceSettings
from shared.infra.errors import ConfigError
from shared.infra.settings import (
    EngineSettings,
    InfraSettings,
    QboAppSettings,
    QboWebhookSettings,
    ReconcilerSettings,
    ReleasedWebhookSettings,
    load_settings,
    read_env_file,
)

SANDBOX_ENV = Path(__file__).resolve().parents[2] / "deploy" / "sandbox.env"


def test_missing_required_secret_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBO_CLIENT_ID", "app")
    monkeypatch.setenv("QBO_CLIENT_SECRET", "s")
    monkeypatch.delenv("QBO_WEBHOOK_VERIFIER_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="QBO_WEBHOOK_VERIFIER_TOKEN is required"):
        load_settings(QboAppSettings)


def test_secrets_do_not_render(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QBO_CLIENT_ID", "app")
    monkeypatch.setenv("QBO_CLIENT_SECRET", "very-secret-value")
    monkeypatch.setenv("QBO_WEBHOOK_VERIFIER_TOKEN", "verifier-value")
    settings = load_settings(QboAppSettings)
    assert "very-secret-value" not in repr(settings)
    assert settings.qbo_client_secret.get_secret_value() == "very-secret-value"


@pytest.mark.parametrize(
    "settings_class",
    [
        QboWebhookSettings,
        ReleasedWebhookSettings,
        EngineSettings,
        ReconcilerSettings,
        AdminServiceSettings,
    ],
)
def test_sandbox_env_file_configures_everything(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[BaseSettings]
) -> None:
    values = read_env_file(SANDBOX_ENV)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(settings_class)
    assert str(getattr(settings, "database_url", "")).startswith("postgresql://")


def test_sandbox_env_file_sets_the_admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in read_env_file(SANDBOX_ENV).items():
        monkeypatch.setenv(key, value)
    assert load_settings(AdminServiceSettings).admin_token.get_secret_value()


def test_bad_env_file_line_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.env"
    bad.write_text("GOOD=1\nnot a pair\n")
    with pytest.raises(ConfigError, match="without '='"):
        read_env_file(bad)


@pytest.mark.parametrize(
    ("raw", "expected"), [("", None), ("None", None), ("0", 0), ("9000", 9000)]
)
def test_ops_port_unset_empty_or_a_port(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: int | None
) -> None:
    monkeypatch.setenv("OPS_PORT", raw)
    assert InfraSettings().ops_port == expected


def test_ops_port_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_PORT", "70000")
    with pytest.raises(ConfigError, match="OPS_PORT"):
        load_settings(InfraSettings)
