"""python -m services.released_webhooks"""

import sys

from shared.bootstrap.receiver import released_main

sys.exit(released_main())
