"""python -m services.released_webhooks"""

import sys

from services.released_webhooks.app import create_app
from shared.bootstrap.serve import serve_from_env
from shared.infra.settings import ReleasedWebhookSettings

sys.exit(
    serve_from_env(
        "released_webhooks",
        ReleasedWebhookSettings,
        create_app,
        lambda s: (s.released_webhooks_host, s.released_webhooks_port),
    )
)
