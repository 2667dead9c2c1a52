"""Entrypoint for ``make run``: see shared.bootstrap.launcher."""

import sys

from shared.bootstrap.launcher import main

sys.exit(main())
