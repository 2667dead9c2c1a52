"""python -m services.released_to_qbo"""

import sys

from shared.bootstrap.consumer import main

sys.exit(main("released_to_qbo"))
