"""python -m services.qbo_webhooks"""

import sys

from services.qbo_webhooks.app import create_app
from shared.bootstrap.serve import serve_from_env
from shared.infra.settings import QboWebhookSettings

sys.exit(
    serve_from_env(
        "qbo_webhooks",
        QboWebhookSettings,
        create_app,
        lambda s: (s.qbo_webhooks_host, s.qbo_webhooks_port),
    )
)
