"""python -m services.qbo_to_released"""

import sys

from shared.sync.worker import consumer_main

sys.exit(consumer_main("qbo_to_released"))
