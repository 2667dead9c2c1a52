"""The OpenAPI 3.0 document of the public API, built from the request models and response schemas.

``python -m sandboxes.released.openapi`` rewrites openapi.json beside this module; a test
checks that the file, the served document and this builder agree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from sandboxes.released import schemas as req
from sandboxes.released.openapi_ops import action, attachments, crud, op
from sandboxes.released.openapi_schemas import RESOURCES, Schema, ref

DOCUMENT_PATH = Path(__file__).with_name("openapi.json")
_MODELS: tuple[type[BaseModel], ...] = (
    req.ContactIn,
    req.ContactPatch,
    req.InvoiceIn,
    req.CreditNoteIn,
    req.DocumentPatch,
    req.PaymentIn,
    req.AllocationIn,
    req.ConnectionIn,
    req.WebhookIn,
    req.AccountIn,
    req.TaxRateIn,
    req.TrackingCategoryIn,
    req.TrackingOptionIn,
    req.MergeIn,
    req.BatchIn,
)


def _oas30(node: Any) -> Any:
    """Pydantic speaks JSON Schema 2020-12; OpenAPI 3.0 says ``nullable`` instead of null types."""
    if isinstance(node, list):
        return [_oas30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _oas30(v) for k, v in node.items() if k not in ("title", "const")}
    if "const" in node:
        out["enum"] = [node["const"]]
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del out["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            out.update(rest[0])
        else:
            out["anyOf"] = rest
        out["nullable"] = True
    if isinstance(out.get("$ref"), str):
        out["$ref"] = out["$ref"].replace("#/$defs/", "#/components/schemas/")
    return out


def _request_schemas() -> dict[str, Schema]:
    _, top = models_json_schema(
        [(m, "validation") for m in _MODELS],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    defs: dict[str, Schema] = _oas30(top.get("$defs", {}))
    return defs


def _accounting_side() -> dict[str, Any]:
    """Routes only the accounting side may use while connected (a user gets a 409)."""
    paths: dict[str, Any] = {}
    for verb in ("archive", "unarchive"):
        paths[f"/contacts/{{id}}/{verb}"] = action(f"{verb}Contact", "Contact")
    paths["/contacts/{id}/merge"] = action("mergeContact", "Contact", "MergeIn")
    ids = ("id", "allocationId")
    unallocate = op("removeAllocation", 200, ref("CreditNote"), path_params=ids, if_match=True)
    paths["/credit-notes/{id}/allocations/{allocationId}"] = {"delete": unallocate}
    category = ref("TrackingCategory")
    add = op("addTrackingOption", 201, category, body="TrackingOptionIn", path_params=("id",))
    add["parameters"].append({"name": "If-Match", "in": "header", "schema": {"type": "string"}})
    paths["/tracking-categories/{id}/options"] = {"post": add}
    patch = op(
        "updateTrackingOption",
        200,
        category,
        body="TrackingOptionIn",
        path_params=("id", "optionId"),
        if_match=True,
    )
    paths["/tracking-categories/{id}/options/{optionId}"] = {"patch": patch}
    return paths


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    paths.update(crud("/contacts", "Contact", "ContactIn", "ContactPatch"))
    paths.update(crud("/invoices", "Invoice", "InvoiceIn", "DocumentPatch"))
    paths.update(crud("/credit-notes", "CreditNote", "CreditNoteIn", "DocumentPatch"))
    paths.update(crud("/payments", "Payment", "PaymentIn", None))
    for base, name in (("/invoices", "Invoice"), ("/credit-notes", "CreditNote")):
        for verb in ("submit", "approve", "void"):
            paths[f"{base}/{{id}}/{verb}"] = action(f"{verb}{name}", name)
        paths.update(attachments(base, name))
    paths["/credit-notes/{id}/allocations"] = action(
        "allocateCreditNote", "CreditNote", "AllocationIn"
    )
    paths["/payments/{id}/reverse"] = action("reversePayment", "Payment")
    paths.update(_accounting_side())
    paths.update(crud("/accounts", "Account", "AccountIn", "AccountIn"))
    paths.update(crud("/tax-rates", "TaxRate", "TaxRateIn", "TaxRateIn"))
    tracking = "TrackingCategoryIn"
    paths.update(crud("/tracking-categories", "TrackingCategory", tracking, tracking))
    for base, name in (
        ("/contacts", "Contacts"),
        ("/invoices", "Invoices"),
        ("/credit-notes", "CreditNotes"),
        ("/payments", "Payments"),
    ):
        batch = op(f"batch{name}", 200, ref("BatchResult"), body="BatchIn")
        paths[f"{base}/batch"] = {"post": batch}
    paths.update(crud("/properties", "Property", None, None))
    paths.update(crud("/tenancies", "Tenancy", None, None))
    paths["/company"] = {"get": op("getCompany", 200, ref("Company"))}
    connect = op("connectAccounting", 201, ref("Company"), body="ConnectionIn")
    # Connecting again to the same organisation is an idempotent 200.
    connect["responses"]["200"] = connect["responses"]["201"]
    paths["/company/accounting-connection"] = {"post": connect}
    feed_params = [
        ("afterSequence", {"type": "integer", "minimum": 0}),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
    ]
    paths["/events"] = {"get": op("listEvents", 200, ref("EventFeed"), params=feed_params)}
    paths["/webhooks"] = {
        "post": op("subscribeWebhook", 201, ref("Webhook"), body="WebhookIn"),
        "get": op("listWebhooks", 200, ref("WebhookList")),
    }
    paths["/webhooks/{id}"] = {"get": op("getWebhook", 200, ref("Webhook"), path_params=("id",))}
    paths["/webhooks/{id}/enable"] = {
        "post": op("enableWebhook", 200, ref("Webhook"), path_params=("id",))
    }
    return paths


def _token_path() -> dict[str, Any]:
    form = {
        "type": "object",
        "required": ["grant_type"],
        "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]}},
    }
    oauth_error = {"application/json": {"schema": ref("OAuthError")}}
    return {
        "post": {
            "operationId": "getToken",
            "security": [{"basicAuth": []}],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": form}},
            },
            "responses": {
                "200": {
                    "description": "a bearer token",
                    "content": {"application/json": {"schema": ref("Token")}},
                },
                "default": {"description": "refused", "content": oauth_error},
            },
        }
    }


def build_openapi() -> dict[str, Any]:
    paths = _paths()
    paths["/oauth/token"] = _token_path()
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Re-Leased API (our contract, served by the sandbox)",
            "version": "1.0.0",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "basicAuth": {"type": "http", "scheme": "basic"},
            },
            "schemas": dict(sorted({**RESOURCES, **_request_schemas()}.items())),
        },
    }


def render() -> str:
    return json.dumps(build_openapi(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    DOCUMENT_PATH.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOCUMENT_PATH}\n")
