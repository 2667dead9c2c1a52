"""``python -m sandboxes.qbo``: serve the sandbox on QBO_SANDBOX_HOST:QBO_SANDBOX_PORT."""

from __future__ import annotations

import sys

import uvicorn

from sandboxes.qbo.app import create_app
from sandboxes.qbo.settings import SandboxSettings
from shared.infra.errors import ConfigError
from shared.infra.logging import configure_logging, get_logger
from shared.infra.settings import load_settings


def main() -> int:
    try:
        settings = load_settings(SandboxSettings)
    except ConfigError as exc:
        configure_logging()
        get_logger("qbo_sandbox").error("config_invalid", error=str(exc))
        return 2
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    # uvicorn handles SIGINT/SIGTERM itself: it drains, runs the lifespan exit and returns.
    uvicorn.run(
        app,
        host=settings.qbo_sandbox_host,
        port=settings.qbo_sandbox_port,
        log_config=None,
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
