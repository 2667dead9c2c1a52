"""Common starting points of the engine's unit tests: records already synced, or about to be."""

from __future__ import annotations

from tests.unit.engine.world import TODAY, World


async def linked_customer(world: World, name: str = "Tenant A") -> tuple[str, str]:
    """A QBO customer synced to Re-Leased: (QBO id, Re-Leased id)."""
    made = world.qbo.seed("Customer", DisplayName=name, PrimaryEmailAddr={"Address": "t@x.com"})
    result = await world.from_qbo("customer", made["Id"])
    assert result.outcome == "applied", result
    return made["Id"], str(result.target_id)


async def linked_invoice(world: World, amount: str = "100.00") -> tuple[str, str]:
    """A QBO invoice synced to Re-Leased (its customer and item linked first)."""
    books = world.seed_qbo_books()
    customer, _ = await linked_customer(world)
    invoice = world.qbo_invoice(customer, books["item"], amount)
    result = await world.from_qbo("invoice", invoice["Id"])
    assert result.outcome == "applied", result
    return invoice["Id"], str(result.target_id)


async def linked_bill(world: World) -> tuple[str, str]:
    books = world.seed_qbo_books()
    vendor = world.qbo.seed("Vendor", DisplayName="Fixit Ltd")
    line = {
        "Amount": "40.00",
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": books["expense"]}},
    }
    bill = world.qbo.seed("Bill", VendorRef={"value": vendor["Id"]}, TxnDate=TODAY, Line=[line])
    result = await world.from_qbo("bill", bill["Id"])
    assert result.outcome == "applied", result
    return bill["Id"], str(result.target_id)


async def released_approved_invoice(world: World) -> str:
    """A Re-Leased invoice, approved, on a contact and an item that came from QBO."""
    qbo_invoice, rl_invoice = await linked_invoice(world)
    template = await world.released.get(f"/invoices/{rl_invoice}")
    line = {
        "description": "Fit-out",
        "quantity": "2",
        "unitAmount": "60.50",
        "accountId": template["lines"][0]["accountId"],
    }
    made = world.released.seed(
        "/invoices",
        type="INCOME",
        contactId=template["contactId"],
        date=TODAY,
        status="APPROVED",
        lines=[line],
    )
    return str(made["id"])


async def qbo_payment(world: World) -> str:
    """A QBO payment of 30.00 into the bank on a synced invoice (not synced itself)."""
    qbo_invoice, _ = await linked_invoice(world)
    invoice = await world.qbo.get("Invoice", qbo_invoice)
    bank = (await world.qbo.query_all("Account", "AccountType = 'Bank'"))[0]
    payment = world.qbo.seed(
        "Payment",
        CustomerRef=invoice["CustomerRef"],
        TotalAmt="30.00",
        TxnDate=TODAY,
        DepositToAccountRef={"value": bank["Id"]},
        Line=[{"Amount": "30.00", "LinkedTxn": [{"TxnId": qbo_invoice, "TxnType": "Invoice"}]}],
    )
    return str(payment["Id"])


async def linked_payment(world: World) -> tuple[str, str]:
    """``qbo_payment``, recorded in Re-Leased: (QBO id, Re-Leased ids)."""
    payment = await qbo_payment(world)
    result = await world.from_qbo("payment", payment)
    assert result.outcome == "applied", result
    return payment, str(result.target_id)


async def released_payment(world: World) -> str:
    _, rl_invoice = await linked_invoice(world)
    bank = world.released.seed("/accounts", code="090", name="Bank", type="BANK", kind="ACCOUNT")
    made = world.released.seed(
        "/payments",
        documentType="INVOICE",
        documentId=rl_invoice,
        date=TODAY,
        amount="25.00",
        bankAccountId=bank["id"],
    )
    return str(made["id"])


async def qbo_attachment(world: World) -> str:
    qbo_invoice, _ = await linked_invoice(world)
    made = world.qbo.seed(
        "Attachable",
        FileName="lease.pdf",
        ContentType="application/pdf",
        AttachableRef=[{"EntityRef": {"type": "Invoice", "value": qbo_invoice}}],
    )
    world.qbo.files[made["Id"]] = b"%PDF lease"
    return str(made["Id"])


async def released_attachment(world: World) -> tuple[str, str]:
    _, rl_invoice = await linked_invoice(world)
    path = f"/invoices/{rl_invoice}/attachments"
    made = world.released.seed(path, fileName="keys.pdf", mimeType="application/pdf", sha256="x")
    world.released.files[made["id"]] = b"%PDF keys"
    return path, str(made["id"])


def bank_of(world: World) -> str:
    accounts = world.qbo.objects["Account"].values()
    return next(str(a["Id"]) for a in accounts if a["AccountType"] == "Bank")


def payment(world: World, invoice: str, total: str, applied: str | None, bank: str) -> str:
    """A QBO payment of ``total`` applying ``applied`` (or nothing) to ``invoice``."""
    customer = world.qbo.objects["Invoice"][invoice]["CustomerRef"]
    link = [{"TxnId": invoice, "TxnType": "Invoice"}]
    made = world.qbo.seed(
        "Payment",
        CustomerRef=customer,
        TotalAmt=total,
        TxnDate=TODAY,
        DepositToAccountRef={"value": bank},
        Line=[{"Amount": applied, "LinkedTxn": link}] if applied else [],
    )
    return str(made["Id"])
