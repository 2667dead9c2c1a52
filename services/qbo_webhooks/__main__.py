"""python -m services.qbo_webhooks"""

from __future__ import annotations

import sys

from services.qbo_webhooks.app import create_app
from shared.infra.errors import ConfigError
from shared.infra.serve import fail_config, serve
from shared.infra.settings import QboWebhookSettings, load_settings


def main() -> int:
    try:
        settings = load_settings(QboWebhookSettings)
    except ConfigError as exc:
        return fail_config("qbo_webhooks", exc)
    return serve(
        "qbo_webhooks",
        settings,
        create_app(settings),
        settings.qbo_webhooks_host,
        settings.qbo_webhooks_port,
    )


if __name__ == "__main__":
    sys.exit(main())
