"""python -m services.qbo_to_released"""

import sys

from shared.bootstrap.consumer import consumer_main

sys.exit(consumer_main("qbo_to_released"))
