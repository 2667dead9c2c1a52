"""python -m services.syncctl"""

from services.syncctl.app import main

main()
