"""Invoices, bills, credit notes and vendor credits, both ways (``to_released``: QBO's changes;
``to_qbo``: Re-Leased's). ``apply_released`` is a Re-Leased document already read, for the credit
note route, which applies the note's allocations after the note itself."""

from __future__ import annotations

from shared.sync.documents.to_qbo import apply_released, from_released
from shared.sync.documents.to_released import from_qbo

__all__ = ["apply_released", "from_qbo", "from_released"]
