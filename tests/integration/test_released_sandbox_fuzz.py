"""Fuzz the public API from its own OpenAPI document: no 5xx, and every response fits the schema.

Bounded on purpose (a few examples per operation) so the suite stays quick; raise
``RELEASED_SANDBOX_FUZZ_EXAMPLES`` locally for a deeper run.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zlib
from types import SimpleNamespace
from typing import Any

import hypothesis_jsonschema._from_schema as jsonschema_strategies
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.internal.conjecture import utils as conjecture_utils
from schemathesis import DataGenerationMethod
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sandboxes.released.app import create_app
from sandboxes.released.auth import mint_token
from sandboxes.released.documents import CREDIT_NOTE, INVOICE, create_document
from sandboxes.released.openapi import build_openapi
from sandboxes.released.payments import allocate_credit, create_payment
from sandboxes.released.schemas import AllocationIn, CreditNoteIn, InvoiceIn, PaymentIn
from sandboxes.released.seed import new_company
from sandboxes.released.store import CompanyState, Store
from tests.integration.released_sandbox_helpers import sandbox_settings

EXAMPLES = int(os.environ.get("RELEASED_SANDBOX_FUZZ_EXAMPLES", "12"))
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)


class _LegacyMany:
    """hypothesis-jsonschema 0.23 drives ``many`` with ``while elements.more()``; the installed
    Hypothesis only offers ``with many(...) as e: for _ in e``. This adapter speaks the old API
    over the new one, so schemathesis can generate objects at all (remove with a newer
    hypothesis-jsonschema)."""

    def __init__(self, data: Any, **sizes: Any) -> None:
        self._many = conjecture_utils.many(data, **sizes)
        self._many.__enter__()
        self._steps = iter(self._many)
        self._finished = False

    def more(self) -> bool:
        if self._finished:
            return False
        try:
            next(self._steps)
        except StopIteration:
            self._finished = True
            self._many.__exit__(None, None, None)
            return False
        return True

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


@pytest.fixture(autouse=True)
def _jsonschema_compat(monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(conjecture_utils.many, "more"):
        monkeypatch.setattr(jsonschema_strategies, "cu", SimpleNamespace(many=_LegacyMany))


def _seed(store: Store, state: CompanyState) -> None:
    """Documents in several states, a payment and an attachment, so ids can hit real records."""
    contact = next(iter(state.contacts.values()))["id"]
    bank = next(a["id"] for a in state.accounts.values() if a["type"] == "BANK")
    lines = [{"unitAmount": "100.00", "taxRateId": next(iter(state.tax_rates))}]
    base = {"contactId": contact, "date": "2025-01-01", "lines": lines}
    for status in ("DRAFT", "AWAITING_APPROVAL", "APPROVED", "APPROVED"):
        body = InvoiceIn.model_validate({**base, "type": "INCOME", "status": status})
        invoice = create_document(store, state, INVOICE, body)
    note = CreditNoteIn.model_validate({**base, "type": "INCOME_CREDIT", "status": "APPROVED"})
    credit = create_document(store, state, CREDIT_NOTE, note)
    allocation = {"invoiceId": invoice["id"], "amount": "1.00", "date": "2025-01-02"}
    allocate_credit(store, state, credit, AllocationIn.model_validate(allocation))
    payment = {"documentId": invoice["id"], "date": "2025-01-02", "amount": "5.00"}
    create_payment(store, state, PaymentIn.model_validate({**payment, "bankAccountId": bank}))
    attachment = store.stamp_new(
        {"documentId": invoice["id"], "fileName": "a.pdf", "mimeType": "application/pdf"}
        | {"size": 3, "sha256": hashlib.sha256(b"pdf").hexdigest(), "source": "RELEASED"}
    )
    state.attachments[attachment["id"]] = attachment
    state.attachment_bytes[attachment["id"]] = b"pdf"
    invoice["hasAttachments"] = True


@pytest.fixture
def fuzz_target() -> dict[str, Any]:
    app = create_app(sandbox_settings())
    sandbox = app.state.sandbox
    state = new_company(sandbox.store, "Fuzz Holdings")
    _seed(sandbox.store, state)
    token = mint_token(sandbox, state.id)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "X-Company-Id": state.id}
    return {"app": app, "headers": headers, "state": state}


def _aim_at_real_records(case: Any, state: CompanyState) -> None:
    """Two generated ids in three are swapped for existing ones, so handlers past the 404 run."""
    params = case.path_parameters or {}
    if "id" not in params:
        return
    pick = zlib.crc32(str(params["id"]).encode())
    if pick % 3 == 0:
        return
    if "attachmentId" in params:
        if not state.attachments:
            return
        attachment = list(state.attachments.values())[pick % len(state.attachments)]
        params["id"], params["attachmentId"] = attachment["documentId"], attachment["id"]
        return
    pools: dict[str, dict[str, Any]] = {
        "invoices": state.invoices,
        "credit-notes": state.credit_notes,
        "payments": state.payments,
        "contacts": state.contacts,
        "accounts": state.accounts,
        "tax-rates": state.tax_rates,
        "tracking-categories": state.tracking_categories,
        "properties": state.properties,
        "tenancies": state.tenancies,
        "webhooks": state.subscriptions,
    }
    pool = list(pools.get(case.operation.path.split("/")[1], {}))
    if pool:
        params["id"] = pool[pick % len(pool)]
    # The accounting side's nested routes: an option or allocation of the record picked.
    record = pools.get(case.operation.path.split("/")[1], {}).get(params["id"])
    for name, field in (("optionId", "options"), ("allocationId", "allocations")):
        nested = record.get(field) if isinstance(record, dict) else None
        if name in params and nested:
            params[name] = nested[pick % len(nested)]["id"]


@pytest.fixture
def api_schema(fuzz_target: dict[str, Any]) -> Any:
    return schemathesis.from_dict(
        build_openapi(),
        app=fuzz_target["app"],
        base_url="http://sandbox/api/v1",
        data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative],
    )


with warnings.catch_warnings():
    # schemathesis 3.39 warns about its own default arguments here; nothing for us to change.
    warnings.simplefilter("ignore", DeprecationWarning)
    schema = schemathesis.from_pytest_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    # Seeded by default so CI is repeatable; RELEASED_SANDBOX_FUZZ_SEEDED=0 explores afresh.
    derandomize=os.environ.get("RELEASED_SANDBOX_FUZZ_SEEDED", "1") == "1",
)
def test_public_api_survives_generated_input(case: Any, fuzz_target: dict[str, Any]) -> None:
    if case.operation.path == "/oauth/token":
        headers = {"Authorization": "Basic dGVzdC1jbGllbnQ6dGVzdC1zZWNyZXQ="}
    else:
        headers = fuzz_target["headers"]
        _aim_at_real_records(case, fuzz_target["state"])
    response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS)
