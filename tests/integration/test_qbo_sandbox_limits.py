"""Per-realm limits (500/minute, 10 concurrent -> 429) and injected server faults."""

from __future__ import annotations

import asyncio

from tests.integration.qbo_sandbox_helpers import Sandbox, sandbox


async def test_500_requests_a_minute_then_429_for_that_realm_only() -> None:
    async with sandbox() as sb:
        statuses = [(await sb.get("customer/1")).status_code for _ in range(501)]
        assert 429 not in statuses[:500]
        assert statuses[500] == 429
        throttled = await sb.get("customer/1")
        assert throttled.json()["Fault"]["Error"][0]["code"] == "3001"
        other = Sandbox(sb.app, sb.http)
        await other.new_realm("Unthrottled")
        assert (await other.get("customer/1")).status_code != 429


async def test_rate_limits_can_be_switched_off() -> None:
    async with sandbox() as sb:
        await sb.http.put("/_sandbox/settings", json={"rateLimits": False})
        statuses = {(await sb.get("customer/1")).status_code for _ in range(520)}
        assert 429 not in statuses


async def test_more_than_10_concurrent_requests_get_429() -> None:
    async with sandbox() as sb:
        await sb.http.put(f"/_sandbox/realms/{sb.realm_id}/faults", json={"latency_ms": 200})
        responses = await asyncio.gather(*(sb.get("customer/1") for _ in range(12)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(429) == 2


async def test_injected_500_503_and_429() -> None:
    async with sandbox() as sb:
        faults = f"/_sandbox/realms/{sb.realm_id}/faults"
        await sb.http.put(faults, json={"error_500_rate": 1})
        failed = await sb.post("customer", {"DisplayName": "Nope"})
        assert failed.status_code == 500
        assert failed.json()["Fault"]["type"] == "SystemFault"
        await sb.http.put(faults, json={"error_500_rate": 0, "error_503_rate": 1})
        assert (await sb.get("customer/1")).status_code == 503
        await sb.http.put(faults, json={"error_503_rate": 0, "error_429_rate": 1})
        assert (await sb.get("customer/1")).status_code == 429
        await sb.http.delete(faults)
        assert (await sb.post("customer", {"DisplayName": "Nope"})).status_code == 200
        assert (await sb.http.put(faults, json={"no_such_switch": 1})).status_code == 400
