"""python -m services.reconciler"""

import sys

from shared.bootstrap.reconciler import main

sys.exit(main())
