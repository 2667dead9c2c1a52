"""python -m services.released_webhooks"""

from __future__ import annotations

import sys

from services.released_webhooks.app import create_app
from shared.infra.errors import ConfigError
from shared.infra.serve import fail_config, serve
from shared.infra.settings import ReleasedWebhookSettings, load_settings


def main() -> int:
    try:
        settings = load_settings(ReleasedWebhookSettings)
    except ConfigError as exc:
        return fail_config("released_webhooks", exc)
    return serve(
        "released_webhooks",
        settings,
        create_app(settings),
        settings.released_webhooks_host,
        settings.released_webhooks_port,
    )


if __name__ == "__main__":
    sys.exit(main())
