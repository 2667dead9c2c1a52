"""The agreement check itself: it counts exactly, so a duplicate on QBO's side fails it."""

from __future__ import annotations

import asyncpg
import pytest

from tests.e2e.agreement import assert_sides_agree
from tests.e2e.builders import TODAY, qbo_expense_account_id, qbo_expense_line, qbo_vendor
from tests.e2e.conftest import Linked
from tests.e2e.readers import linked_released, settle
from tests.e2e.stack import Stack, consumers, unique

pytestmark = pytest.mark.e2e


async def test_a_second_qbo_copy_of_a_synced_bill_fails_the_agreement_check(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    """One bill synced both ways agrees; a second QBO bill with the same content that nothing
    linked (what a duplicate create leaves behind) makes the check fail, where counting QBO
    documents with ``>=`` passed it."""
    body = {
        "VendorRef": {"value": str((await qbo_vendor(linked.qbo))["Id"])},
        "TxnDate": TODAY,
        "Line": [qbo_expense_line(await qbo_expense_account_id(linked.qbo), "42.00")],
    }
    async with consumers(stack.settings):
        bill = await linked.qbo.write("Bill", body, request_id=unique("bill"))
        await linked_released(pool, "Bill", str(bill["Id"]), linked.connection)
        await settle(1.0)
    assert await assert_sides_agree(stack, linked.connection, pool) == 1
    # The engine is stopped: this copy stays unlinked, as a duplicate the engine made would.
    number = (await linked.qbo.get("Bill", str(bill["Id"])))["DocNumber"]
    await linked.qbo.write("Bill", {**body, "DocNumber": number}, request_id=unique("dup"))
    with pytest.raises(AssertionError, match="QBO Bill"):
        await assert_sides_agree(stack, linked.connection, pool)
