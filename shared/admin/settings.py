"""Settings for the admin service: the engine's, plus the admin token and public URLs."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.infra.settings import EngineSettings


class AdminServiceSettings(EngineSettings):
    """``services.admin``: refuses to start without ``ADMIN_TOKEN``."""

    admin_token: SecretStr
    admin_host: str = "127.0.0.1"
    admin_port: int = 8000
    # Where the browser reaches us; the OAuth redirect_uri is built from it.
    admin_public_url: str = "http://127.0.0.1:8000"
    # Where Re-Leased delivers webhooks for every connected company (our released_webhooks).
    released_webhook_public_url: str = "http://127.0.0.1:8002/webhooks/released"
    # How long a signed OAuth ``state`` is accepted: long enough for a person to log in at Intuit.
    oauth_state_ttl_s: float = Field(default=900.0, gt=0)
    # Pace of bulk dead-letter replays (events per minute, per admin process): well under QBO's
    # 500 requests per minute per realm, so replays never starve live traffic.
    replay_rate_per_minute: float = Field(default=120.0, gt=0, le=400)
    # How often the admin service refreshes the state gauges of /metrics (connections, lag, dead
    # letters, queue depths, budget use); one process does it for the whole deployment.
    metrics_sample_s: float = Field(default=15.0, gt=0)
    # How long a console sign-in lasts (the session cookie's lifetime).
    console_session_ttl_s: float = Field(default=8 * 3600.0, gt=0, le=7 * 24 * 3600.0)
    # Where a person opens a record in each product (links on the sync results).
    qbo_app_url: str = "https://app.qbo.intuit.com/app"
    released_app_url: str = "https://app.re-leased.com"
    demo_connection: bool = False
    # The Re-Leased company the demo connects (the Re-Leased sandbox reads the same setting and
    # has that company from the start); required with DEMO_CONNECTION.
    demo_released_company_id: str | None = Field(default=None, min_length=1, max_length=64)
    demo_timeout_s: float = Field(default=60.0, gt=0)
    # Largest request body the admin service reads (413 beyond); its bodies are small JSON.
    admin_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    @property
    def redirect_uri(self) -> str:
        return self.admin_public_url.rstrip("/") + "/oauth/qbo/callback"
