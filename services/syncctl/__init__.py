"""``syncctl``: operate the sync service from a terminal or a script.

It is a thin client of the admin API (``ADMIN_URL``, ``ADMIN_TOKEN``), so every operation has one
implementation, one audit line (``admin_request``) and one set of permissions, and an operator
needs no database credentials. ``--json`` prints the API's answer for scripts; otherwise rich
tables. Long operations (bulk replay) run in batches with a progress bar.
"""
