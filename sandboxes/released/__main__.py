"""``python -m sandboxes.released``: serve the sandbox with uvicorn until Ctrl-C."""

from __future__ import annotations

import sys

import uvicorn

from sandboxes.released.app import create_app
from sandboxes.released.settings import SandboxSettings
from shared.infra.errors import ConfigError
from shared.infra.logging import configure_logging, get_logger
from shared.infra.settings import load_settings


def main() -> int:
    try:
        settings = load_settings(SandboxSettings)
    except ConfigError as exc:
        configure_logging()
        get_logger(__name__).error("released_sandbox_config_error", error=str(exc))
        return 2
    configure_logging(settings.log_level, settings.log_format)
    # uvicorn handles SIGINT/SIGTERM itself: the lifespan exits and background tasks are cancelled.
    uvicorn.run(
        create_app(settings),
        host=settings.released_sandbox_host,
        port=settings.released_sandbox_port,
        log_config=None,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
