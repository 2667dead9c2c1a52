"""Settings of the QBO sandbox, read once in ``__main__`` and passed down.

The app credentials default to sandbox-only values so tests can build settings directly; the
launcher sets the real (sandbox) values from deploy/sandbox.env.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.infra.settings import LogFormat

WebhookFormat = Literal["cloudevents", "legacy"]


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    qbo_sandbox_host: str = "127.0.0.1"
    qbo_sandbox_port: int = Field(default=8101, ge=0, le=65535)
    qbo_sandbox_public_url: str = "http://127.0.0.1:8101"
    qbo_client_id: str = "sandbox-client-id"
    qbo_client_secret: SecretStr = SecretStr("sandbox-client-secret")
    qbo_webhook_verifier_token: SecretStr = SecretStr("sandbox-verifier-token")
    qbo_sandbox_webhook_url: str | None = None
    qbo_sandbox_webhook_format: WebhookFormat = "cloudevents"
    # Intuit's own sandbox delivers in near real time; production waits 1, 3 or 5 minutes.
    qbo_sandbox_aggregation_seconds: float = Field(default=0.2, ge=0)
    qbo_sandbox_time_scale: float = Field(default=1.0, gt=0)
    qbo_sandbox_rate_limits: bool = True
    # Seed for the fault-injection dice, so a failing test run can be replayed.
    qbo_sandbox_seed: int | None = None
    log_level: str = "INFO"
    log_format: LogFormat = "auto"
