"""POST /upload (multipart: Attachable metadata + file) and GET /download/{id}.

``/download/{id}`` answers with a temporary URL (text/plain) valid 15 minutes, as Intuit's does;
the URL is served by this sandbox under /_sandbox/files. The multipart parser is tolerant on
purpose: python-quickbooks sends bare ``\\n`` line endings and a base64 transfer encoding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sandboxes.qbo import errors, writes
from sandboxes.qbo.dispatch import json_response
from sandboxes.qbo.guard import audit
from sandboxes.qbo.money import loads
from sandboxes.qbo.state import SandboxState, sandbox
from sandboxes.qbo.store import Obj, Realm

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
LINK_SECONDS = 15 * 60
ALLOWED_TYPES = frozenset(
    "ai csv doc docx eps gif jpeg jpg ods pdf png rtf tif txt xls xlsx xml".split()
)
_DISPOSITION_NAME = re.compile(r'name="([^"]*)"')
_DISPOSITION_FILE = re.compile(r'filename="([^"]*)"')


def _parts(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise errors.invalid("multipart/form-data with a boundary is required")
    delimiter = b"--" + match.group(1).encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = chunk.lstrip(b"\r\n").partition(b"\n\n")
        headers = {}
        for line in head.decode("utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        parts.append((headers, content.removesuffix(b"\n").removesuffix(b"\r")))
    return parts


def _decode(headers: dict[str, str], content: bytes) -> bytes:
    if headers.get("content-transfer-encoding", "").lower() == "base64":
        try:
            return base64.b64decode(b"".join(content.split()))
        except binascii.Error:
            raise errors.invalid("file content is not valid base64") from None
    return content


def _collect(parts: list[tuple[dict[str, str], bytes]]) -> dict[str, dict[str, Any]]:
    """Pair file_metadata_NN with file_content_NN by their suffix."""
    files: dict[str, dict[str, Any]] = {}
    for headers, content in parts:
        disposition = headers.get("content-disposition", "")
        name_match = _DISPOSITION_NAME.search(disposition)
        name = name_match.group(1) if name_match else ""
        kind, _, suffix = name.rpartition("_")
        if kind == "file_metadata":
            files.setdefault(suffix, {})["meta"] = loads(content.strip() or b"{}")
        elif kind == "file_content":
            file_match = _DISPOSITION_FILE.search(disposition)
            entry = files.setdefault(suffix, {})
            entry["bytes"] = _decode(headers, content)
            entry["type"] = headers.get("content-type", "application/octet-stream")
            entry["filename"] = file_match.group(1) if file_match else None
    return files


def _create_one(state: SandboxState, realm: Realm, entry: dict[str, Any]) -> Obj:
    if "bytes" not in entry:
        raise errors.required("file_content")
    meta = dict(entry.get("meta") or {})
    meta.setdefault("FileName", entry.get("filename") or "attachment")
    meta.setdefault("ContentType", entry["type"])
    extension = str(meta["FileName"]).rpartition(".")[2].lower()
    if extension not in ALLOWED_TYPES:
        raise errors.invalid(f"Unsupported file type: .{extension}", "2170")
    meta["Size"] = len(entry["bytes"])
    obj = writes.save(state.company(realm), "Attachable", meta)
    realm.files[obj["Id"]] = (str(meta["ContentType"]), entry["bytes"])
    return obj


async def upload(state: SandboxState, realm: Realm, request: Request) -> Response:
    audit(request, "Attachable", "upload", write=True)
    body = await request.body()
    if len(body) > MAX_UPLOAD_BYTES:
        raise errors.invalid("An upload request may be at most 100 MB")
    files = _collect(_parts(body, request.headers.get("content-type", "")))
    if not files:
        raise errors.required("file_content_0")
    answers = []
    for suffix in sorted(files):
        try:
            obj = _create_one(state, realm, files[suffix])
            answers.append({"Attachable": with_download_uri(state, request, realm, obj)})
        except errors.QboFault as fault:
            answers.append({"Fault": fault.fault_only()})
    return json_response({"AttachableResponse": answers})


def _signature(state: SandboxState, realm_id: str, obj_id: str, expires: int) -> str:
    message = f"{realm_id}:{obj_id}:{expires}".encode()
    return hmac.new(state.file_key, message, hashlib.sha256).hexdigest()


def download_url(state: SandboxState, request: Request, realm_id: str, obj_id: str) -> str:
    expires = int(time.time() + state.clock.seconds(LINK_SECONDS))
    signature = _signature(state, realm_id, obj_id, expires)
    base = str(request.base_url).rstrip("/")
    return f"{base}/_sandbox/files/{realm_id}/{obj_id}?expires={expires}&signature={signature}"


def with_download_uri(state: SandboxState, request: Request, realm: Realm, obj: Obj) -> Obj:
    if obj["Id"] not in realm.files:
        return obj
    return {**obj, "TempDownloadUri": download_url(state, request, realm.realm_id, obj["Id"])}


async def download(state: SandboxState, realm: Realm, request: Request) -> Response:
    audit(request, "Attachable", "download", write=False)
    obj_id = request.path_params["obj_id"]
    if realm.get("Attachable", obj_id) is None or obj_id not in realm.files:
        raise errors.not_found("Attachable", obj_id)
    return PlainTextResponse(download_url(state, request, realm.realm_id, obj_id))


async def serve_file(request: Request) -> Response:
    """The temporary link itself (no bearer token, like Intuit's signed S3 links)."""
    state = sandbox(request)
    realm_id, obj_id = request.path_params["realm_id"], request.path_params["obj_id"]
    expires = int(request.query_params.get("expires", "0") or 0)
    given = request.query_params.get("signature", "")
    expected = _signature(state, realm_id, obj_id, expires)
    realm = state.store.get(realm_id)
    if not hmac.compare_digest(given, expected) or expires < time.time() or realm is None:
        return Response(json.dumps({"error": "link expired or invalid"}), 403)
    if obj_id not in realm.files:
        return Response(json.dumps({"error": "not found"}), 404)
    content_type, content = realm.files[obj_id]
    return Response(content, 200, media_type=content_type)


routes = [Route("/_sandbox/files/{realm_id}/{obj_id}", serve_file, methods=["GET"])]
