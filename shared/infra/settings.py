"""Typed settings, read once at each entrypoint and passed down.

Every process builds exactly one settings object from the environment (names are the upper-case
field names). Secrets are ``SecretStr`` so they never print; the ones security depends on have no
default, so a process that needs them refuses to start without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.infra.errors import ConfigError

LogFormat = Literal["auto", "json", "console"]


class InfraSettings(BaseSettings):
    """What every process needs: the database, the broker, logging."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    log_level: str = "INFO"
    log_format: LogFormat = "auto"
    amqp_prefetch: int = Field(default=8, ge=1, le=1000)
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=5, ge=1)
    # The ops server of a process without an HTTP port of its own (consumers, reconciler):
    # /healthz, /readyz and /metrics. Unset means the process's default in OPS_PORT_DEFAULTS;
    # 0 asks the OS for a free port (tests). Receivers and admin serve them on their own port.
    ops_host: str = "127.0.0.1"
    ops_port: int | None = Field(default=None, ge=0, le=65535)
    # HTTP services (uvicorn): connections and requests served at once (more get 503), the time
    # a connection has to complete its request headers, and the idle keep-alive.
    http_limit_concurrency: int = Field(default=1000, ge=1)
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    http_keep_alive_s: float = Field(default=5.0, gt=0)

    @field_validator("ops_port", mode="before")
    @classmethod
    def _unset_port(cls, value: object) -> object:
        # OPS_PORT= (empty) or "none" means unset, as for a variable not set at all.
        if isinstance(value, str) and value.strip().lower() in ("", "none"):
            return None
        return value


# Local defaults of the ops server per process (`make run` runs them side by side on one host;
# Kubernetes sets OPS_HOST=0.0.0.0 and OPS_PORT=9000 in every pod).
OPS_PORT_DEFAULTS = {"qbo_to_released": 9001, "released_to_qbo": 9002, "reconciler": 9003}


class QboAppSettings(BaseSettings):
    """The product's registration as a QBO app; the signing secrets are required."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    qbo_api_base: str = "http://127.0.0.1:8101"
    qbo_oauth_base: str = "http://127.0.0.1:8101"
    qbo_client_id: str
    qbo_client_secret: SecretStr
    qbo_webhook_verifier_token: SecretStr


class ReleasedAppSettings(BaseSettings):
    """The product's Re-Leased API credentials and webhook key; all required."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    released_api_base: str = "http://127.0.0.1:8102/api/v1"
    released_client_id: str
    released_client_secret: SecretStr
    released_webhook_key: SecretStr


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment, turning validation errors into one clear message."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper() or "?"
            if err["type"] == "missing":
                problems.append(f"{name} is required but not set")
            else:
                problems.append(f"{name}: {err['msg']}")
        raise ConfigError(
            "invalid configuration: "
            + "; ".join(problems)
            + " (set it in the environment; sandbox values are in deploy/sandbox.env)"
        ) from None


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a simple KEY=VALUE file (comments and blank lines allowed, no shell expansion)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{path}: line without '=': {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


class WebhookLimits(BaseSettings):
    """The receivers' edge: body size and read deadline, memory for unverified bodies, and the
    database time a webhook may spend before it answers 503 (QBO allows 3 s in all)."""

    webhook_max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    webhook_read_timeout_s: float = Field(default=10.0, gt=0)
    webhook_unverified_budget_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    webhook_statement_timeout_ms: int = Field(default=2000, ge=1)
    webhook_lock_timeout_ms: int = Field(default=1000, ge=1)


class QboWebhookSettings(InfraSettings, WebhookLimits):
    """``qbo_webhooks``: refuses to start without the verifier token."""

    qbo_webhook_verifier_token: SecretStr
    qbo_webhooks_host: str = "127.0.0.1"
    qbo_webhooks_port: int = 8001


class ReleasedWebhookSettings(InfraSettings, WebhookLimits):
    """``released_webhooks``: refuses to start without the webhook key."""

    released_webhook_key: SecretStr
    released_webhooks_host: str = "127.0.0.1"
    released_webhooks_port: int = 8002


class EngineSettings(InfraSettings, QboAppSettings, ReleasedAppSettings):
    """Processes that call both platforms for a connection (consumers, reconciler)."""

    token_encryption_key: SecretStr
    qbo_authorize_url: str = "http://127.0.0.1:8101/connect/oauth2"
    # The platforms' published limits; lower them to leave headroom, never raise them in
    # production (tests against sandboxes with limits switched off may).
    qbo_requests_per_minute: int = Field(default=500, ge=1)
    qbo_concurrency: int = Field(default=10, ge=1)
    released_requests_per_minute: int = Field(default=60, ge=1)
    released_concurrency: int = Field(default=5, ge=1)
    # QBO's separate allowance for POST /batch (per realm); 0 never sends a batch.
    qbo_batches_per_minute: int = Field(default=40, ge=0)
    # The share of every company's and realm's budget (request tokens and concurrency slots) the
    # bulk lane (initial imports, bulk replays) leaves to live traffic; bulk takes the rest.
    bulk_reserved_share: float = Field(default=0.2, ge=0, lt=1)
    # Seconds added to each platform's one-minute window when counting our own requests: a send
    # is stamped before it reaches the platform, so a process that stalls between the two (a
    # loaded node, a long pause) needs this much slack to never be counted in a later minute by
    # the platform than by us. Larger is safer and slower (limit / (60 + margin) a second).
    budget_window_margin_s: float = Field(default=2.0, ge=0, le=30)
    # Messages a consumer takes at once from its direction's bulk queue.
    bulk_prefetch: int = Field(default=4, ge=1)
    # Coalesced reads (shared/adapters/qbo/coalesce.py): concurrent gets for one realm share one
    # request. A lone get is sent at once; gets arriving while one is in flight wait at most the
    # window (or until max_ids are waiting), and at most in_flight coalesced requests run at once.
    qbo_coalesce_reads: bool = True
    qbo_coalesce_window_ms: float = Field(default=2.0, ge=0, le=5)
    qbo_coalesce_max_ids: int = Field(default=30, ge=2, le=1000)
    qbo_coalesce_in_flight: int = Field(default=2, ge=1, le=10)


class RetentionSettings(BaseSettings):
    """How long each table keeps rows (days; 0 keeps forever), run by the reconciler every
    ``retention_interval_s``. docs/retention.md explains each and what is never deleted."""

    retention_interval_s: float = Field(default=3600.0, gt=0)
    retention_inbox_days: float = Field(default=14.0, ge=0)
    retention_inbox_unknown_accounts_days: float = Field(default=2.0, ge=0)
    retention_sync_outcomes_days: float = Field(default=30.0, ge=0)
    retention_write_ledger_days: float = Field(default=30.0, ge=0)
    retention_created_twins_days: float = Field(default=90.0, ge=0)
    retention_dead_letters_days: float = Field(default=30.0, ge=0)
    retention_batch_rows: int = Field(default=5000, ge=1, le=100_000)


class ReconcilerSettings(EngineSettings, RetentionSettings):
    reconcile_interval_s: float = Field(default=60.0, gt=0)
    reconcile_overlap_s: float = Field(default=120.0, ge=0)
    # Daily full sweep, HH:MM in UTC.
    reconcile_sweep_at: str = Field(default="03:30", pattern=r"^\d{2}:\d{2}$")
