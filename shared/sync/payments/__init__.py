"""Payments and bill payments, both ways, with the credit they use (allocations and refunds).

``to_released``: QBO's payments recorded in Re-Leased; ``to_qbo``: Re-Leased's payments,
allocations and refunds recorded in QBO; ``qbo_writes``: the QBO bodies those are made of;
``held``: cash applied to no document, held in Re-Leased as prepayment/overpayment credit.
"""

from __future__ import annotations

from shared.sync.payments.held import from_released as held_credit_from_released
from shared.sync.payments.to_qbo import allocations_to_qbo, from_released
from shared.sync.payments.to_released import from_qbo

__all__ = ["allocations_to_qbo", "from_qbo", "from_released", "held_credit_from_released"]
