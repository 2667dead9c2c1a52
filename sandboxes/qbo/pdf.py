"""``GET /v3/company/{realm}/{invoice|creditmemo|estimate|salesreceipt}/{id}/pdf``: the document as
a PDF, as QBO serves it (``application/pdf``). A one-page PDF 1.4 with the document's number,
date, customer and total, written out by hand: small, valid (cross-reference offsets exact)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sandboxes.qbo import errors
from sandboxes.qbo.dispatch import entity_from_path
from sandboxes.qbo.guard import audit
from sandboxes.qbo.state import SandboxState
from sandboxes.qbo.store import Realm

PRINTABLE = frozenset({"Invoice", "CreditMemo", "Estimate", "SalesReceipt", "RefundReceipt"})


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def render(lines: list[str]) -> bytes:
    """A one-page PDF showing ``lines`` of text (ASCII)."""
    text = "".join(
        f"BT /F1 12 Tf 72 {740 - 18 * i} Td ({_escape(line)}) Tj ET\n"
        for i, line in enumerate(lines)
    ).encode("ascii", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"endstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


async def document_pdf(state: SandboxState, realm: Realm, request: Request) -> Response:
    entity = entity_from_path(request)
    if entity not in PRINTABLE:
        raise errors.unsupported(f"pdf of {entity}")
    audit(request, entity, "pdf", write=False)
    obj_id = request.path_params["obj_id"]
    obj = realm.get(entity, obj_id)
    if obj is None:
        raise errors.not_found(entity, obj_id)
    party = (obj.get("CustomerRef") or {}).get("name") or (obj.get("CustomerRef") or {}).get(
        "value", ""
    )
    lines = [
        f"{realm.company_name}",
        f"{entity} {obj.get('DocNumber') or obj_id}",
        f"Date: {obj.get('TxnDate', '')}",
        f"Customer: {party}",
        f"Total: {obj.get('TotalAmt', '')}",
    ]
    return Response(render(lines), 200, media_type="application/pdf")
