"""Building blocks of the OpenAPI document: an operation, a collection's CRUD, actions, files."""

from __future__ import annotations

from typing import Any

from sandboxes.released.openapi_schemas import Schema, page_of, ref

LIST_PARAMS: list[tuple[str, Schema]] = [
    ("page", {"type": "integer", "minimum": 1, "maximum": 1000000}),
    ("pageSize", {"type": "integer", "minimum": 1, "maximum": 1000}),
    ("modifiedSince", {"type": "string", "format": "date-time"}),
    ("status", {"type": "string"}),
    ("ids", {"type": "string"}),
    ("numbers", {"type": "string"}),
    ("includeArchived", {"type": "boolean"}),
]


def op(
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


def crud(path: str, name: str, create: str | None, patch: str | None) -> dict[str, Any]:
    item = f"{path}/{{id}}"
    paths: dict[str, Any] = {path: {}, item: {}}
    paths[path]["get"] = op(f"list{name}", 200, page_of(name), params=LIST_PARAMS)
    paths[item]["get"] = op(f"get{name}", 200, ref(name), path_params=("id",))
    if create:
        paths[path]["post"] = op(f"create{name}", 201, ref(name), body=create)
    if patch:
        paths[item]["patch"] = op(
            f"update{name}", 200, ref(name), body=patch, path_params=("id",), if_match=True
        )
    return paths


def action(op_id: str, name: str, body: str | None = None) -> dict[str, Any]:
    operation = op(op_id, 200, ref(name), body=body, path_params=("id",), if_match=True)
    return {"post": operation}


def attachments(base: str, prefix: str) -> dict[str, Any]:
    one = f"{base}/{{id}}/attachments/{{attachmentId}}"
    ids = ("id", "attachmentId")
    binary = {"type": "string", "format": "binary"}
    content_op = op(f"get{prefix}AttachmentContent", 200, None, path_params=ids)
    content_op["responses"]["200"]["content"] = {"*/*": {"schema": binary}}
    return {
        f"{base}/{{id}}/attachments": {
            "get": op(f"list{prefix}Attachments", 200, page_of("Attachment"), path_params=("id",)),
            "post": op(
                f"add{prefix}Attachment",
                201,
                ref("Attachment"),
                body="multipart",
                path_params=("id",),
            ),
        },
        one: {
            "get": op(f"get{prefix}Attachment", 200, ref("Attachment"), path_params=ids),
            "delete": op(f"delete{prefix}Attachment", 204, None, path_params=ids),
        },
        f"{one}/content": {"get": content_op},
    }
