"""python -m services.qbo_to_released"""

import sys

from shared.bootstrap.consumer import main

sys.exit(main("qbo_to_released"))
