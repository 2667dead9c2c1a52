"""Contacts, both ways: create/update flow both ways; archiving is QBO's; a QBO merge archives the
merged-away contact in Re-Leased.

A Re-Leased contact that is both customer and supplier is two QBO records (Customer and Vendor),
so it has one link per QBO type. DisplayName is unique across Customer, Vendor and Employee: the
Vendor of such a pair carries the connection's clash suffix, stripped again when read back.
"""

from __future__ import annotations

from shared.sync.contacts.to_qbo import from_released
from shared.sync.contacts.to_released import from_qbo

__all__ = ["from_qbo", "from_released"]
