"""The canonical mapping: each side's records to side-neutral field sets and back. Pure.

References inside canonical records are QBO keys (``"Item:5"``, ``"Customer:12"``), so a snapshot
compares equal whichever side it was read from. Anything a side cannot represent raises
``PermanentError`` with a remedy: a clear per-record error, never a half-written copy.
"""
