"""Attachments on invoices and credit notes: multipart upload, sha256, raw download, delete."""

from __future__ import annotations

import hashlib

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandboxes.released.documents import CREDIT_NOTE, INVOICE, DocKind, get_document
from sandboxes.released.errors import ApiError, invalid, not_found
from sandboxes.released.gate import Call, Gate
from sandboxes.released.listing import page_response, record_response
from sandboxes.released.store import CompanyState, Record

MAX_BYTES = 10 * 1024 * 1024


def _attachment(call: Call, doc: Record) -> Record:
    ident = call.param("attachmentId")
    record = call.state.attachments.get(ident)
    if record is None or record["documentId"] != doc["id"]:
        raise not_found("attachment", ident)
    return record


def _refresh_flag(state: CompanyState, doc: Record) -> None:
    doc["hasAttachments"] = any(a["documentId"] == doc["id"] for a in state.attachments.values())


async def _upload(call: Call) -> UploadFile:
    try:
        form = await call.request.form(max_files=1, max_fields=10)
    except (HTTPException, ValueError, KeyError, AssertionError):
        raise invalid("INVALID_MULTIPART", "expected a multipart body with a file") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise invalid("FILE_REQUIRED", "a multipart field named 'file' is required")
    return upload


def attachment_routes(gate: Gate, kind: DocKind) -> list[BaseRoute]:
    async def list_attachments(call: Call) -> Response:
        doc = get_document(call.state, kind, call.param("id"))
        items = [a for a in call.state.attachments.values() if a["documentId"] == doc["id"]]
        return page_response(items, call.request.query_params)

    async def add(call: Call) -> Response:
        doc = get_document(call.state, kind, call.param("id"))
        upload = await _upload(call)
        content = await upload.read()
        if len(content) > MAX_BYTES:
            raise ApiError(400, "FILE_TOO_LARGE", "attachments are limited to 10 MB")
        record: Record = {
            "documentId": doc["id"],
            "fileName": upload.filename or "attachment",
            "mimeType": upload.content_type or "application/octet-stream",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
            "source": "RELEASED",
        }
        store = call.sandbox.store
        store.stamp_new(record)
        call.state.attachments[record["id"]] = record
        call.state.attachment_bytes[record["id"]] = content
        _refresh_flag(call.state, doc)
        path = f"{kind.path}/{doc['id']}/attachments/{record['id']}"
        store.emit(call.state, "attachment.added", record, path, {"documentId": doc["id"]})
        return record_response(record, 201)

    async def get(call: Call) -> Response:
        doc = get_document(call.state, kind, call.param("id"))
        return record_response(_attachment(call, doc))

    async def content(call: Call) -> Response:
        doc = get_document(call.state, kind, call.param("id"))
        record = _attachment(call, doc)
        data = call.state.attachment_bytes[record["id"]]
        return Response(data, media_type=record["mimeType"])

    async def delete(call: Call) -> Response:
        doc = get_document(call.state, kind, call.param("id"))
        record = _attachment(call, doc)
        del call.state.attachments[record["id"]]
        call.state.attachment_bytes.pop(record["id"], None)
        _refresh_flag(call.state, doc)
        path = f"{kind.path}/{doc['id']}/attachments/{record['id']}"
        call.sandbox.store.emit(call.state, "attachment.removed", record, path)
        return Response(status_code=204)

    base = f"/{kind.path}/{{id}}/attachments"
    one = base + "/{attachmentId}"
    return [
        Route(base, gate(list_attachments), methods=["GET"]),
        Route(base, gate(add), methods=["POST"]),
        Route(one, gate(get), methods=["GET"]),
        Route(one, gate(delete), methods=["DELETE"]),
        Route(one + "/content", gate(content), methods=["GET"]),
    ]


def all_attachment_routes(gate: Gate) -> list[BaseRoute]:
    return [*attachment_routes(gate, INVOICE), *attachment_routes(gate, CREDIT_NOTE)]
