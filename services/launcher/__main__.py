"""Entrypoint for ``make run``: see shared.infra.launcher."""

import sys

from shared.infra.launcher import main

sys.exit(main())
