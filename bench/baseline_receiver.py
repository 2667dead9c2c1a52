"""Baseline for bench_ingest: a bare Starlette endpoint that only verifies the signature.

It takes either receiver's signature header, so one baseline serves both receivers' loads.
"""

from __future__ import annotations

import os

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.domain.signatures import verify

TOKEN = os.environ.get("QBO_WEBHOOK_VERIFIER_TOKEN", "bench-verifier")


async def receive(request: Request) -> Response:
    body = await request.body()
    header = request.headers.get("intuit-signature") or request.headers.get("x-released-signature")
    if not verify(TOKEN, body, header):
        return Response(status_code=401)
    return Response(b'{"ok":true}', media_type="application/json")


app = Starlette(routes=[Route("/", receive, methods=["POST"])])

if __name__ == "__main__":
    port = int(os.environ.get("BENCH_BASELINE_PORT", "8910"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
