"""Wiring for the QBO webhook receiver."""

from __future__ import annotations

from starlette.applications import Starlette

from shared.bootstrap.receiver import create_receiver_app
from shared.infra.settings import QboWebhookSettings
from shared.ingest.specs import qbo_spec

PATH = "/webhooks/qbo"


def create_app(settings: QboWebhookSettings, *, relay_interval_s: float = 1.0) -> Starlette:
    return create_receiver_app(
        settings,
        qbo_spec(settings.webhook_max_body_bytes),
        settings.qbo_webhook_verifier_token.get_secret_value(),
        PATH,
        relay_interval_s=relay_interval_s,
    )
