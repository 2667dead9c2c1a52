"""Settings for the Re-Leased sandbox, read once at the entrypoint.

The credentials are the product's own (``RELEASED_CLIENT_ID`` and friends) so the product and the
sandbox agree when both read deploy/sandbox.env. The defaults below are sandbox-only values; the
sandbox guards nothing real, so a missing secret must not stop a demo from starting.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.infra.settings import LogFormat


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    released_sandbox_host: str = "127.0.0.1"
    released_sandbox_port: int = Field(default=8102, ge=0, le=65535)
    # Where clients reach the sandbox (event resourceUrls point here); unset: http://host:port.
    released_sandbox_public_url: str | None = None
    released_client_id: str = "sandbox-client"
    released_client_secret: SecretStr = SecretStr("sandbox-secret")
    released_webhook_key: SecretStr = SecretStr("sandbox-webhook-key")
    # 60 makes one real second count as one sandbox minute (token lifetimes, retry schedules,
    # rate-limit windows), so 24 h of webhook retries fit into 24 real minutes, or less.
    released_sandbox_time_scale: float = Field(default=1.0, gt=0, le=1_000_000)
    released_sandbox_rate_limits: bool = True
    # Seed for fault injection, so a failing run can be repeated.
    released_sandbox_seed: int | None = None
    # The product's demo names a company it connects (``make run``); the sandbox has it from the
    # start, so the product never needs the control API to make one.
    demo_released_company_id: str | None = Field(default=None, min_length=1, max_length=64)
    demo_released_company_name: str = "Demo Property Management"
    log_level: str = "INFO"
    log_format: LogFormat = "auto"

    @property
    def api_base(self) -> str:
        default = f"http://{self.released_sandbox_host}:{self.released_sandbox_port}"
        return (self.released_sandbox_public_url or default).rstrip("/") + "/api/v1"
