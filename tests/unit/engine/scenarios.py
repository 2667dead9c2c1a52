"""One scenario per row of the ownership table: the state that brings a change to exactly that
row's decision, and the event that asks for it. Shared by the tests that check each handler does
what the table says (and nothing when it says otherwise)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shared.domain.events import ChangeEvent
from shared.domain.ownership import Op
from tests.unit.engine.setups import (
    linked_bill,
    linked_customer,
    linked_invoice,
    linked_payment,
    qbo_attachment,
    qbo_payment,
    released_approved_invoice,
    released_attachment,
    released_payment,
)
from tests.unit.engine.world import World, qbo_event, released_event


@dataclass(frozen=True)
class Scenario:
    entity: str
    op: Op
    origin: str
    prepare: Callable[[World], Awaitable[ChangeEvent]]

    @property
    def name(self) -> str:
        return f"{self.entity}-{self.op.value}-from-{self.origin}"

    @property
    def target(self) -> str:
        """The side a change from ``origin`` is written to (a revert writes to the origin)."""
        return "released" if self.origin == "qbo" else "qbo"


# -- one preparation per row --------------------------------------------------------------------


async def contact_created_in_qbo(world: World) -> ChangeEvent:
    made = world.qbo.seed("Customer", DisplayName="New Tenant")
    return qbo_event("customer", made["Id"])


async def contact_archived_in_qbo(world: World) -> ChangeEvent:
    qbo_id, _ = await linked_customer(world)
    world.qbo.edit("Customer", qbo_id, Active=False)
    return qbo_event("customer", qbo_id)


async def contact_unarchived_in_qbo(world: World) -> ChangeEvent:
    event = await contact_archived_in_qbo(world)
    await world.deliver(event)
    world.qbo.edit("Customer", event.entity_id, Active=True)
    return qbo_event("customer", event.entity_id)


async def contacts_merged_in_qbo(world: World) -> ChangeEvent:
    survivor, _ = await linked_customer(world, "Tenant A")
    gone, _ = await linked_customer(world, "Tenant A (old)")
    event = qbo_event("customer", survivor, "merge")
    return event.model_copy(update={"related_id": gone})


async def contact_created_in_released(world: World) -> ChangeEvent:
    made = world.released.seed("/contacts", name="Walk-in Tenant", isCustomer=True)
    return released_event("contact", made["id"])


async def contact_archived_in_released(world: World) -> ChangeEvent:
    _, rl_id = await linked_customer(world)
    world.released.edit("/contacts", rl_id, status="ARCHIVED")
    return released_event("contact", rl_id)


async def contact_unarchived_in_released(world: World) -> ChangeEvent:
    qbo_id, rl_id = await linked_customer(world)
    world.qbo.edit("Customer", qbo_id, Active=False)
    await world.from_qbo("customer", qbo_id)
    world.released.edit("/contacts", rl_id, status="ACTIVE")
    return released_event("contact", rl_id)


async def account_created_in_qbo(world: World) -> ChangeEvent:
    made = world.qbo.seed("Account", Name="Parking", AccountType="Income", AcctNum="4100")
    return qbo_event("account", made["Id"])


async def tax_rate_created_in_qbo(world: World) -> ChangeEvent:
    made = world.qbo.seed("TaxRate", Name="County", RateValue="1.5")
    return qbo_event("taxrate", made["Id"])


async def class_created_in_qbo(world: World) -> ChangeEvent:
    made = world.qbo.seed("Class", Name="Building 7")
    return qbo_event("class", made["Id"])


async def account_deactivated_in_qbo(world: World) -> ChangeEvent:
    event = await account_created_in_qbo(world)
    await world.deliver(event)
    world.qbo.edit("Account", event.entity_id, Active=False)
    return qbo_event("account", event.entity_id)


async def account_reactivated_in_qbo(world: World) -> ChangeEvent:
    event = await account_deactivated_in_qbo(world)
    await world.deliver(event)
    world.qbo.edit("Account", event.entity_id, Active=True)
    return qbo_event("account", event.entity_id)


async def account_edited_in_released(world: World) -> ChangeEvent:
    made = world.qbo.seed("Account", Name="Parking", AccountType="Income", AcctNum="4100")
    result = await world.from_qbo("account", made["Id"])
    world.released.edit("/accounts", str(result.target_id), name="Car park")
    return released_event("account", str(result.target_id))


async def invoice_created_in_qbo(world: World) -> ChangeEvent:
    books = world.seed_qbo_books()
    customer = world.qbo.seed("Customer", DisplayName="Tenant B")
    invoice = world.qbo_invoice(customer["Id"], books["item"], "80.00")
    return qbo_event("invoice", invoice["Id"])


async def invoice_voided_in_qbo(world: World) -> ChangeEvent:
    qbo_id, _ = await linked_invoice(world)
    current = await world.qbo.get("Invoice", qbo_id)
    await world.qbo.write(
        "Invoice",
        {"Id": qbo_id, "SyncToken": current["SyncToken"]},
        request_id="v",
        operation="void",
    )
    world.qbo.writes.clear()
    return qbo_event("invoice", qbo_id)


async def bill_deleted_in_qbo(world: World) -> ChangeEvent:
    qbo_id, _ = await linked_bill(world)
    del world.qbo.objects["Bill"][qbo_id]
    return qbo_event("bill", qbo_id, "delete")


async def invoice_approved_in_released(world: World) -> ChangeEvent:
    return released_event("invoice", await released_approved_invoice(world))


async def invoice_voided_in_released(world: World) -> ChangeEvent:
    _, rl_id = await linked_invoice(world)
    world.released.edit("/invoices", rl_id, status="VOIDED")
    return released_event("invoice", rl_id)


async def invoice_back_to_draft_in_released(world: World) -> ChangeEvent:
    _, rl_id = await linked_invoice(world)
    world.released.edit("/invoices", rl_id, status="DRAFT")
    return released_event("invoice", rl_id)


async def payment_made_in_qbo(world: World) -> ChangeEvent:
    return qbo_event("payment", await qbo_payment(world))


async def payment_voided_in_qbo(world: World) -> ChangeEvent:
    qbo_id, _ = await linked_payment(world)
    current = await world.qbo.get("Payment", qbo_id)
    await world.qbo.write(
        "Payment",
        {"Id": qbo_id, "SyncToken": current["SyncToken"]},
        request_id="pv",
        operation="void",
    )
    world.qbo.writes.clear()
    return qbo_event("payment", qbo_id)


async def payment_deleted_in_qbo(world: World) -> ChangeEvent:
    qbo_id, _ = await linked_payment(world)
    del world.qbo.objects["Payment"][qbo_id]
    return qbo_event("payment", qbo_id, "delete")


async def payment_made_in_released(world: World) -> ChangeEvent:
    return released_event("payment", await released_payment(world))


async def payment_reversed_in_released(world: World) -> ChangeEvent:
    payment = await released_payment(world)
    await world.from_released("payment", payment)
    world.released.edit("/payments", payment, status="REVERSED", reversalSource="USER")
    return released_event("payment", payment)


async def attachment_added_in_qbo(world: World) -> ChangeEvent:
    return qbo_event("attachable", await qbo_attachment(world))


async def attachment_removed_in_qbo(world: World) -> ChangeEvent:
    attachable = await qbo_attachment(world)
    await world.from_qbo("attachable", attachable)
    del world.qbo.objects["Attachable"][attachable]
    return qbo_event("attachable", attachable, "delete")


async def attachment_added_in_released(world: World) -> ChangeEvent:
    path, attachment = await released_attachment(world)
    return released_event("attachment", attachment, resource_url=f"{path}/{attachment}")


async def attachment_removed_in_released(world: World) -> ChangeEvent:
    path, attachment = await released_attachment(world)
    url = f"{path}/{attachment}"
    await world.from_released("attachment", attachment, resource_url=url)
    del world.released.records[path][attachment]
    return released_event("attachment", attachment, resource_url=url)


SCENARIOS = (
    Scenario("contact", Op.UPSERT, "qbo", contact_created_in_qbo),
    Scenario("contact", Op.ARCHIVE, "qbo", contact_archived_in_qbo),
    Scenario("contact", Op.UNARCHIVE, "qbo", contact_unarchived_in_qbo),
    Scenario("contact", Op.MERGE, "qbo", contacts_merged_in_qbo),
    Scenario("contact", Op.UPSERT, "released", contact_created_in_released),
    Scenario("contact", Op.ARCHIVE, "released", contact_archived_in_released),
    Scenario("contact", Op.UNARCHIVE, "released", contact_unarchived_in_released),
    Scenario("account", Op.UPSERT, "qbo", account_created_in_qbo),
    Scenario("account", Op.ARCHIVE, "qbo", account_deactivated_in_qbo),
    Scenario("account", Op.UNARCHIVE, "qbo", account_reactivated_in_qbo),
    Scenario("tax_rate", Op.UPSERT, "qbo", tax_rate_created_in_qbo),
    Scenario("tracking_class", Op.UPSERT, "qbo", class_created_in_qbo),
    Scenario("account", Op.UPSERT, "released", account_edited_in_released),
    Scenario("invoice", Op.UPSERT, "qbo", invoice_created_in_qbo),
    Scenario("invoice", Op.VOID, "qbo", invoice_voided_in_qbo),
    Scenario("bill", Op.DELETE, "qbo", bill_deleted_in_qbo),
    Scenario("invoice", Op.UPSERT, "released", invoice_approved_in_released),
    Scenario("invoice", Op.VOID, "released", invoice_voided_in_released),
    Scenario("invoice", Op.BACK_TO_DRAFT, "released", invoice_back_to_draft_in_released),
    Scenario("payment", Op.UPSERT, "qbo", payment_made_in_qbo),
    Scenario("payment", Op.VOID, "qbo", payment_voided_in_qbo),
    Scenario("payment", Op.DELETE, "qbo", payment_deleted_in_qbo),
    Scenario("payment", Op.UPSERT, "released", payment_made_in_released),
    Scenario("payment", Op.VOID, "released", payment_reversed_in_released),
    Scenario("attachment", Op.UPSERT, "qbo", attachment_added_in_qbo),
    Scenario("attachment", Op.DELETE, "qbo", attachment_removed_in_qbo),
    Scenario("attachment", Op.UPSERT, "released", attachment_added_in_released),
    Scenario("attachment", Op.DELETE, "released", attachment_removed_in_released),
)
