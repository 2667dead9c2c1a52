"""python -m services.qbo_webhooks"""

import sys

from shared.bootstrap.receiver import qbo_main

sys.exit(qbo_main())
