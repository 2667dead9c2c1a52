"""Wiring for the Re-Leased webhook receiver."""

from __future__ import annotations

from starlette.applications import Starlette

from shared.bootstrap.receiver import create_receiver_app
from shared.infra.settings import ReleasedWebhookSettings
from shared.ingest.specs import released_spec

PATH = "/webhooks/released"


def create_app(settings: ReleasedWebhookSettings, *, relay_interval_s: float = 1.0) -> Starlette:
    return create_receiver_app(
        settings,
        released_spec(settings.webhook_max_body_bytes),
        settings.released_webhook_key.get_secret_value(),
        PATH,
        relay_interval_s=relay_interval_s,
    )
