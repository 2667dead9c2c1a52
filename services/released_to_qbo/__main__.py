"""python -m services.released_to_qbo"""

import sys

from shared.bootstrap.consumer import consumer_main

sys.exit(consumer_main("released_to_qbo"))
