"""The operator console in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), against the real admin service, engine, sandboxes, PostgreSQL and RabbitMQ.

A support person answers "did invoice INV-1042 sync, and if not why, and fix it" from the browser
alone: signs in, finds the record by its number, reads the remedy, replays the dead letter once
the cause is fixed and sees it applied; resolves a conflict; unlinks and relinks the record.
Without a session nothing works; a form without its CSRF token is refused.

Screenshots land in ``$CONSOLE_SCREENSHOTS`` when set (the committed ones in docs/console/).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright, expect

from shared.adapters.released.client import ReleasedClient
from shared.domain.errors import PermanentError
from tests.e2e.builders import qbo_customer, qbo_invoice, qbo_item_id, qbo_sales_line
from tests.e2e.conftest import Linked
from tests.e2e.readers import rl_docs
from tests.e2e.stack import Stack, consumers, eventually
from tests.integration.admin_helpers import ADMIN_TOKEN, running_admin, stack_settings

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
NUMBER = "INV-1042"  # each test runs on a fresh QBO realm and Re-Leased company
REMEDY = "Map the Re-Leased tax rate to a QuickBooks tax code, then replay"
BASE_DUE, KEPT_DUE = "2026-12-01", "2027-01-15"  # the conflict's base and Re-Leased's due date


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get install -y chromium chromium-driver (make test)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


async def sign_in(page: Page, base: str, token: str = ADMIN_TOKEN) -> None:
    await page.goto(f"{base}/console/connections")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def dead_letter_of(pool: asyncpg.Pool, connection_id: Any) -> asyncpg.Record | None:
    async with pool.acquire() as conn:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT id, status FROM dead_letters WHERE connection_id = $1 ORDER BY id DESC LIMIT 1",
            connection_id,
        )
        return row


async def test_a_support_person_finds_why_inv_1042_failed_fixes_it_and_sees_it_applied(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    broken = True
    original = ReleasedClient.request

    async def refusing(self: ReleasedClient, method: str, path: str, **kw: Any) -> Any:
        body = kw.get("body")
        if broken and method == "POST" and isinstance(body, dict) and body.get("number") == NUMBER:
            raise PermanentError(
                f"Re-Leased refused invoice {NUMBER}: tax code missing", remedy=REMEDY
            )
        return await original(self, method, path, **kw)

    monkeypatch.setattr(ReleasedClient, "request", refusing)
    out = shots(tmp_path)
    async with consumers(stack.settings), running_admin(stack_settings(stack)) as admin:
        customer = await qbo_customer(linked.qbo)
        item = await qbo_item_id(linked.qbo)
        lines = [qbo_sales_line(item, "1", "250.00")]
        invoice = await qbo_invoice(linked.qbo, customer["Id"], lines, DocNumber=NUMBER)
        letter = await eventually(lambda: dead_letter_of(pool, linked.connection.id), timeout=30)

        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("dialog", accept)
        await sign_in(page, admin.base)
        await expect(page.get_by_role("heading", name="Connections")).to_be_visible()
        await page.screenshot(path=str(out / "connections.png"), full_page=True)

        # Find the record by its number.
        await page.get_by_role("link", name=linked.company).click()
        await page.get_by_label("Search").fill(NUMBER)
        await page.get_by_role("button", name="Filter").click()
        await expect(page.get_by_role("link", name=NUMBER)).to_be_visible()
        await page.screenshot(path=str(out / "sync-results.png"), full_page=True)
        await page.get_by_role("link", name=NUMBER).click()
        await expect(page.locator("dd.remedy")).to_have_text(REMEDY)
        await expect(page.locator("dd.reason")).to_contain_text("tax code missing")
        await page.screenshot(path=str(out / "record.png"), full_page=True)

        # The cause is fixed; replay the dead letter from the record's page and see it applied.
        broken = False
        await page.get_by_role("button", name=f"Replay dead letter #{letter['id']}").click()
        await expect(page.locator(".message.success")).to_contain_text("Replayed as event")
        qbo_id = str(invoice["Id"])
        await eventually(lambda: link_status(pool, linked, qbo_id), timeout=30)

        async def applied() -> bool:
            # Before the replay the record's history holds only the error.
            await page.reload()
            return await page.locator(".badge.applied").count() > 0

        await eventually(applied, timeout=30, interval=0.5)
        released = await rl_docs(stack, linked.company)
        assert [d["number"] for d in released if d["number"] == NUMBER] == [NUMBER]
        replayed = await dead_letter_of(pool, linked.connection.id)
        assert replayed is not None
        assert replayed["status"] == "replayed"

        # Unlink, then relink, from the same page.
        await page.get_by_role("button", name="Unlink").click()
        await expect(page.locator(".message.success")).to_contain_text("Unlinked")
        assert await link_status(pool, linked, qbo_id) == "unlinked"
        await page.get_by_role("button", name="Relink").click()
        await expect(page.locator(".message.success")).to_contain_text("Relinked")
        assert await link_status(pool, linked, qbo_id) == "linked"

        # A conflict on this invoice's due date: QuickBooks' change won and both sides hold it;
        # keep Re-Leased's instead, and the engine writes it to QuickBooks (and back to
        # Re-Leased, which held the winner too).
        winning_due = str((await linked.qbo.get("Invoice", qbo_id))["DueDate"])
        conflict = await seed_conflict(pool, linked, qbo_id, winning_due)
        await page.get_by_role("link", name="Conflicts").click()
        row = page.locator("tr", has=page.locator(f"td:text-is('{conflict}')"))
        await expect(row.locator("td.base")).to_have_text(BASE_DUE)
        await expect(row.locator("td.qbo")).to_have_text(winning_due)
        await expect(row.locator("td.released")).to_have_text(KEPT_DUE)
        await page.screenshot(path=str(out / "conflicts.png"), full_page=True)
        await row.get_by_role("button", name="Keep Re-Leased").click()
        await expect(page.locator(".message.success")).to_contain_text("kept Re-Leased")

        async def resolved() -> str | None:
            async with pool.acquire() as conn:
                found: str | None = await conn.fetchval(
                    "SELECT resolved_by FROM conflicts WHERE id = $1 AND resolved_at IS NOT NULL",
                    conflict,
                )
                return found

        assert await eventually(resolved, timeout=30) == "console: kept released"
        assert (await linked.qbo.get("Invoice", qbo_id))["DueDate"] == KEPT_DUE
        ours = [d for d in await rl_docs(stack, linked.company) if d["number"] == NUMBER]
        assert [d["dueDate"] for d in ours] == [KEPT_DUE]

        await page.get_by_role("link", name="Dead letters").click()
        await page.get_by_label("Status").select_option("any")
        await page.get_by_role("button", name="Filter").click()
        await page.screenshot(path=str(out / "dead-letters.png"), full_page=True)
        await page.close()


async def link_status(pool: asyncpg.Pool, linked: Linked, qbo_id: str) -> str | None:
    """This connection's link of the invoice (every realm of the run numbers its ids from 1)."""
    async with pool.acquire() as conn:
        found: str | None = await conn.fetchval(
            "SELECT status FROM links"
            " WHERE connection_id = $1 AND qbo_type = 'Invoice' AND qbo_id = $2",
            linked.connection.id,
            qbo_id,
        )
        return found


async def seed_conflict(pool: asyncpg.Pool, linked: Linked, qbo_id: str, applied: str) -> int:
    """A field conflict as the engine records one: QBO's due date applied over Re-Leased's."""
    async with pool.acquire() as conn:
        link_id = await conn.fetchval(
            "SELECT id FROM links"
            " WHERE connection_id = $1 AND qbo_type = 'Invoice' AND qbo_id = $2",
            linked.connection.id,
            qbo_id,
        )
        conflict_id: int = await conn.fetchval(
            "INSERT INTO conflicts (connection_id, link_id, entity, event_id, kind, fields, "
            "winner, detail) VALUES ($1, $2, 'invoice', $3, 'field_conflict', $4, $5, $6) "
            "RETURNING id",
            linked.connection.id,
            link_id,
            f"evt-conflict-{uuid.uuid4().hex}",
            {
                "field": "due_date",
                "base": BASE_DUE,
                "source": applied,
                "target": KEPT_DUE,
                "source_side": "qbo",
            },
            applied,
            "due_date changed on both sides",
        )
        return conflict_id


async def test_without_a_session_or_its_csrf_token_nothing_happens(
    stack: Stack, linked: Linked, pool: asyncpg.Pool, browser: Browser
) -> None:
    async with running_admin(stack_settings(stack)) as admin:
        context = await browser.new_context()
        page = await context.new_page()
        for path in ("/console/dead-letters", "/console/conflicts"):
            await page.goto(admin.base + path)
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        pause = f"{admin.base}/console/connections/{linked.connection.id}/pause"
        refused = await page.request.post(pause, form={"csrf": "anything"})
        assert refused.status == 403
        await sign_in(page, admin.base, "wrong-token")
        await expect(page.locator(".message.error")).to_contain_text("not right")

        await sign_in(page, admin.base)
        await expect(page.get_by_role("heading", name="Connections")).to_be_visible()
        form = page.locator(f"form[action='/console/connections/{linked.connection.id}/pause']")
        await form.locator("input[name=csrf]").evaluate("input => input.value = 'forged'")
        await form.get_by_role("button", name="Pause").click()
        await expect(page.get_by_role("heading", name="Refused")).to_be_visible()
        async with pool.acquire() as conn:
            assert (
                await conn.fetchval(
                    "SELECT status FROM connections WHERE id = $1", linked.connection.id
                )
                == "active"
            )
        await context.close()
