"""Act as a browser against the console without one: a cookie jar, the forms' CSRF field."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from tests.integration.admin_helpers import ADMIN_TOKEN

Answer = tuple[int, str, aiohttp.ClientResponse]
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


class ConsoleClient:
    def __init__(self, base: str) -> None:
        self.base = base
        # unsafe: keep cookies set by an IP address (127.0.0.1)
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **kw: Any) -> Answer:
        async with self.http.get(self.base + path, allow_redirects=False, **kw) as response:
            return response.status, await response.text(), response

    async def post(self, path: str, form: dict[str, str]) -> Answer:
        async with self.http.post(self.base + path, data=form, allow_redirects=False) as response:
            return response.status, await response.text(), response

    async def sign_in(self, token: str = ADMIN_TOKEN) -> tuple[int, aiohttp.ClientResponse]:
        _, html, _ = await self.get("/console/login")
        status, _, response = await self.post(
            "/console/login", {"csrf": csrf_of(html), "token": token, "next": ""}
        )
        return status, response

    async def csrf(self) -> str:
        _, html, _ = await self.get("/console/connections")
        return csrf_of(html)
