"""python -m services.reconciler"""

from __future__ import annotations

import asyncio
import signal
import sys

from services.reconciler.worker import run
from shared.bootstrap.serve import check_infrastructure, fail_config
from shared.infra.errors import ConfigError, InfraUnavailable
from shared.infra.logging import configure_logging
from shared.infra.settings import ReconcilerSettings, load_settings


async def _main(settings: ReconcilerSettings) -> None:
    await check_infrastructure(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main() -> int:
    try:
        settings = load_settings(ReconcilerSettings)
    except ConfigError as exc:
        return fail_config("reconciler", exc)
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(_main(settings))
    except (ConfigError, InfraUnavailable) as exc:
        sys.stderr.write(f"reconciler: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
