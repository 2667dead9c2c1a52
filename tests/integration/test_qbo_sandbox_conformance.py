"""Conformance: the published python-quickbooks and intuit-oauth clients drive the sandbox.

Nothing in either library changes except where it looks for Intuit: intuit-oauth reads its
endpoints from our discovery document (its ``environment`` accepts a discovery URL) and
python-quickbooks gets our base URL in ``api_url_v3``.
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.attachable import Attachable, AttachableRef
from quickbooks.objects.base import Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment

from sandboxes.qbo.app import create_app
from tests.integration.qbo_sandbox_helpers import CLIENT_ID, CLIENT_SECRET, serve, settings

REDIRECT = "http://app.test/callback"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _quiet() -> Iterator[None]:
    # python-quickbooks warns about minorversion defaults even when one is given.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def connect(base: str) -> tuple[AuthClient, QuickBooks, str]:
    """The OAuth dance a real app does, with the browser step done by requests."""
    auth = AuthClient(
        CLIENT_ID,
        CLIENT_SECRET,
        REDIRECT,
        environment=f"{base}/.well-known/openid_configuration",
    )
    url = auth.get_authorization_url([Scopes.ACCOUNTING], state_token="s1")
    redirect = requests.get(url, allow_redirects=False, timeout=5)
    answer = parse_qs(urlparse(redirect.headers["Location"]).query)
    assert answer["state"] == ["s1"]
    realm_id = answer["realmId"][0]
    auth.get_bearer_token(answer["code"][0], realm_id=realm_id)
    with _quiet():
        client = QuickBooks(
            auth_client=auth,
            refresh_token=auth.refresh_token,
            company_id=realm_id,
            minorversion=75,
        )
    client.api_url_v3 = f"{base}/v3"  # the only change: where the API lives
    return auth, client, realm_id


def _invoice(client: QuickBooks, customer: Customer, amount: str) -> Invoice:
    item = Item.all(qb=client)[0]
    line = SalesItemLine()
    line.Amount = Decimal(amount)
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line = [line]
    return invoice.save(qb=client)


def scenario(base: str) -> dict[str, Any]:
    auth, client, _realm_id = connect(base)
    seen: dict[str, Any] = {}
    started = datetime.now(UTC) - timedelta(seconds=5)

    customer = Customer()
    customer.DisplayName = "Conformance Co"
    customer.CompanyName = "Conformance"
    customer = customer.save(qb=client)
    read = Customer.get(customer.Id, qb=client)
    seen["read_name"] = read.DisplayName

    stale_copy = Customer.get(customer.Id, qb=client)
    read.Notes = "sparse edit"
    read.sparse = True
    updated = read.save(qb=client)
    seen["sync_after_update"] = updated.SyncToken
    stale_copy.Notes = "lost update"
    with pytest.raises(QuickbooksException) as stale:
        stale_copy.save(qb=client)
    seen["stale_code"] = stale.value.error_code

    seen["filtered"] = [c.Id for c in Customer.filter(DisplayName="Conformance Co", qb=client)]
    seen["count"] = Customer.count("DisplayName LIKE 'Conformance%'", qb=client)

    invoice = _invoice(client, customer, "120.50")
    seen["invoice_total"] = invoice.TotalAmt
    payment = Payment()
    payment.CustomerRef = customer.to_ref()
    payment.TotalAmt = Decimal("20.50")
    payment = payment.save(qb=client)
    payment.void(qb=client)
    seen["payment_after_void"] = Payment.get(payment.Id, qb=client).TotalAmt
    invoice.void(qb=client)
    voided = Invoice.get(invoice.Id, qb=client)
    seen["voided"] = (voided.TotalAmt, voided.PrivateNote)

    doomed = _invoice(client, customer, "5")
    doomed.delete(qb=client)
    with pytest.raises(QuickbooksException) as missing:
        Invoice.get(doomed.Id, qb=client)
    seen["deleted_code"] = missing.value.error_code

    fresh = []
    for name in ("Batch One", "Batch Two"):
        batch_customer = Customer()
        batch_customer.DisplayName = name
        fresh.append(batch_customer)
    results = batch_create(fresh, qb=client)
    seen["batch"] = (len(results.successes), len(results.faults))

    cdc = change_data_capture([Customer, Invoice], started.isoformat(timespec="seconds"), qb=client)
    seen["cdc_customers"] = sorted(c.DisplayName for c in cdc.Customer)
    seen["cdc_invoices"] = len(cdc.Invoice)

    attachment = Attachable()
    ref = AttachableRef()
    ref.EntityRef = Ref()
    ref.EntityRef.type = "Invoice"
    ref.EntityRef.value = invoice.Id
    attachment.AttachableRef = [ref]
    attachment.FileName = "note.txt"
    attachment.ContentType = "text/plain"
    attachment._FileBytes = b"attached by python-quickbooks"
    uploaded = attachment.save(qb=client)
    link = client.get(f"{base}/v3/company/{client.company_id}/attachable/{uploaded.Id}")
    seen["download"] = requests.get(link["Attachable"]["TempDownloadUri"], timeout=5).content

    old_refresh = auth.refresh_token
    auth.refresh()
    seen["rotated"] = auth.refresh_token != old_refresh
    with pytest.raises(AuthClientError) as reused:
        auth.refresh(refresh_token=old_refresh)
    seen["reused_status"] = reused.value.status_code
    auth.revoke(token=auth.refresh_token)
    return seen


async def test_python_quickbooks_and_intuit_oauth_work_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests-oauthlib refuses plain http unless told this is a local test (its documented switch).
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(
        settings(qbo_sandbox_port=port, qbo_sandbox_public_url=base, qbo_sandbox_rate_limits=True)
    )
    async with serve(app, port):
        seen = await asyncio.to_thread(scenario, base)
    assert seen["read_name"] == "Conformance Co"
    assert seen["sync_after_update"] == "1"
    assert seen["stale_code"] == 5010
    assert len(seen["filtered"]) == 1
    assert seen["count"] == 1
    assert seen["invoice_total"] == 120.5
    assert seen["payment_after_void"] == 0
    assert seen["voided"] == (0, "Voided")
    assert seen["deleted_code"] == 610
    assert seen["batch"] == (2, 0)
    assert seen["cdc_customers"] == ["Batch One", "Batch Two", "Conformance Co"]
    assert seen["cdc_invoices"] == 2
    assert seen["download"] == b"attached by python-quickbooks"
    assert seen["rotated"] is True
    assert seen["reused_status"] == 400
