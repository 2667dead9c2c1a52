"""python -m services.admin"""

from __future__ import annotations

import sys

from shared.admin.settings import AdminServiceSettings
from shared.bootstrap.admin import create_app
from shared.bootstrap.serve import fail_config, serve
from shared.infra.errors import ConfigError
from shared.infra.settings import load_settings


def main() -> int:
    try:
        settings = load_settings(AdminServiceSettings)
    except ConfigError as exc:
        return fail_config("admin", exc)
    return serve("admin", settings, create_app(settings), settings.admin_host, settings.admin_port)


if __name__ == "__main__":
    sys.exit(main())
