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
from sandboxes.released.openapi_schemas import RESOURCES, Schema, page_of, ref

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
)
_LIST_PARAMS: list[tuple[str, Schema]] = [
    ("page", {"type": "integer", "minimum": 1, "maximum": 1000000}),
    ("pageSize", {"type": "integer", "minimum": 1, "maximum": 1000}),
    ("modifiedSince", {"type": "string", "format": "date-time"}),
    ("status", {"type": "string"}),
    ("ids", {"type": "string"}),
    ("numbers", {"type": "string"}),
    ("includeArchived", {"type": "boolean"}),
]


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


def _op(
    op_id: str,
    ok: int,
    result: Schema | None,
    *,
    body: str | None = None,
    params: list[tuple[str, Schema]] | None = None,
    path_params: tuple[str, ...] = (),
    if_match: bool = False,
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "X-Company-Id", "in": "header", "required": True, "schema": {"type": "string"}}
    ]
    parameters += [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in path_params
    ]
    parameters += [{"name": n, "in": "query", "schema": s} for n, s in params or []]
    if if_match:
        parameters.append({"name": "If-Match", "in": "header", "schema": {"type": "string"}})
    if if_match or body is not None:
        key = {"type": "string", "minLength": 1, "maxLength": 255}
        parameters.append({"name": "Idempotency-Key", "in": "header", "schema": key})
    content = {"application/json": {"schema": result}} if result is not None else None
    success: dict[str, Any] = {"description": "success"}
    if content:
        success["content"] = content
    error = {"description": "error", "content": {"application/json": {"schema": ref("Error")}}}
    operation: dict[str, Any] = {
        "operationId": op_id,
        "parameters": parameters,
        "responses": {str(ok): success, "default": error},
    }
    if body == "multipart":
        multipart = {
            "type": "object",
            "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary"}},
        }
        operation["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": multipart}},
        }
    elif body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(body)}},
        }
    return operation


def _crud(path: str, name: str, create: str | None, patch: str | None) -> dict[str, Any]:
    item = f"{path}/{{id}}"
    paths: dict[str, Any] = {path: {}, item: {}}
    paths[path]["get"] = _op(f"list{name}", 200, page_of(name), params=_LIST_PARAMS)
    paths[item]["get"] = _op(f"get{name}", 200, ref(name), path_params=("id",))
    if create:
        paths[path]["post"] = _op(f"create{name}", 201, ref(name), body=create)
    if patch:
        paths[item]["patch"] = _op(
            f"update{name}", 200, ref(name), body=patch, path_params=("id",), if_match=True
        )
    return paths


def _action(op_id: str, name: str, body: str | None = None) -> dict[str, Any]:
    operation = _op(op_id, 200, ref(name), body=body, path_params=("id",), if_match=True)
    return {"post": operation}


def _attachments(base: str, prefix: str) -> dict[str, Any]:
    one = f"{base}/{{id}}/attachments/{{attachmentId}}"
    ids = ("id", "attachmentId")
    binary = {"type": "string", "format": "binary"}
    content_op = _op(f"get{prefix}AttachmentContent", 200, None, path_params=ids)
    content_op["responses"]["200"]["content"] = {"*/*": {"schema": binary}}
    return {
        f"{base}/{{id}}/attachments": {
            "get": _op(f"list{prefix}Attachments", 200, page_of("Attachment"), path_params=("id",)),
            "post": _op(
                f"add{prefix}Attachment",
                201,
                ref("Attachment"),
                body="multipart",
                path_params=("id",),
            ),
        },
        one: {
            "get": _op(f"get{prefix}Attachment", 200, ref("Attachment"), path_params=ids),
            "delete": _op(f"delete{prefix}Attachment", 204, None, path_params=ids),
        },
        f"{one}/content": {"get": content_op},
    }


def _paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    paths.update(_crud("/contacts", "Contact", "ContactIn", "ContactPatch"))
    paths.update(_crud("/invoices", "Invoice", "InvoiceIn", "DocumentPatch"))
    paths.update(_crud("/credit-notes", "CreditNote", "CreditNoteIn", "DocumentPatch"))
    paths.update(_crud("/payments", "Payment", "PaymentIn", None))
    for base, name in (("/invoices", "Invoice"), ("/credit-notes", "CreditNote")):
        for verb in ("submit", "approve", "void"):
            paths[f"{base}/{{id}}/{verb}"] = _action(f"{verb}{name}", name)
        paths.update(_attachments(base, name))
    paths["/credit-notes/{id}/allocations"] = _action(
        "allocateCreditNote", "CreditNote", "AllocationIn"
    )
    paths["/payments/{id}/reverse"] = _action("reversePayment", "Payment")
    paths.update(_crud("/accounts", "Account", "AccountIn", "AccountIn"))
    paths.update(_crud("/tax-rates", "TaxRate", "TaxRateIn", "TaxRateIn"))
    paths.update(_crud("/tracking-categories", "TrackingCategory", "TrackingCategoryIn", None))
    paths.update(_crud("/properties", "Property", None, None))
    paths.update(_crud("/tenancies", "Tenancy", None, None))
    paths["/company"] = {"get": _op("getCompany", 200, ref("Company"))}
    connect = _op("connectAccounting", 201, ref("Company"), body="ConnectionIn")
    # Connecting again to the same organisation is an idempotent 200.
    connect["responses"]["200"] = connect["responses"]["201"]
    paths["/company/accounting-connection"] = {"post": connect}
    feed_params = [
        ("afterSequence", {"type": "integer", "minimum": 0}),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
    ]
    paths["/events"] = {"get": _op("listEvents", 200, ref("EventFeed"), params=feed_params)}
    paths["/webhooks"] = {
        "post": _op("subscribeWebhook", 201, ref("Webhook"), body="WebhookIn"),
        "get": _op("listWebhooks", 200, ref("WebhookList")),
    }
    paths["/webhooks/{id}"] = {"get": _op("getWebhook", 200, ref("Webhook"), path_params=("id",))}
    paths["/webhooks/{id}/enable"] = {
        "post": _op("enableWebhook", 200, ref("Webhook"), path_params=("id",))
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
