"""python -m services.admin"""

import sys

from shared.bootstrap.admin import main

sys.exit(main())
