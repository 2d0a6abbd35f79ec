"""The page's Live view in headless Chromium, under the page's own Content-Security-Policy:
its hand-written graphql-transport-ws client streams events as they are stored (newest
first), narrows them by type, and pauses; outside dev mode the key is the tab's own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

try:
    from playwright.async_api import expect
except ImportError:  # the `browser` fixture skips (or fails in CI), saying why
    expect = None

from services import environments, keys
from tests.browser.conftest import GuardedPage, open_guarded
from tests.browser.test_page import axe_script, serious_violations
from tests.conftest import RunningServer, start_server

LIVE_EVENT = "[data-testid=live-event]"
TRACK = "mutation($i: [TrackInput!]!) { trackBatch(events: $i) { accepted } }"


@pytest.fixture
async def tab(browser: Any) -> AsyncIterator[Any]:
    async with open_guarded(browser, GuardedPage, default_timeout_ms=15_000) as guarded:
        yield guarded


def clean(tab: GuardedPage) -> None:
    """Nothing left the machine, and the page logged no error."""
    assert tab.outside == [], f"requests that tried to leave the machine: {tab.outside}"
    assert tab.errors == [], f"console errors: {tab.errors}"


async def track(running: RunningServer, *events: dict[str, Any], key: str | None = None) -> None:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=running.url, headers=headers) as client:
        body = {"query": TRACK, "variables": {"i": list(events)}}
        answer = (await client.post("/graphql", json=body)).json()
    assert answer["data"]["trackBatch"]["accepted"] == len(events), answer


async def streaming(tab: Any, running: RunningServer) -> None:
    """Waits until the page's subscription has reached the server."""
    await expect(tab.page.locator("[data-testid=live-status]")).to_have_text(
        "Live: waiting for events…"
    )
    hub = running.app.state.usertrail.live  # type: ignore[attr-defined]
    for _ in range(1500):
        if hub.subscriber_count():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the page's subscription never reached the server")


async def test_live_view_streams_new_events_newest_first(tab: Any, server: RunningServer) -> None:
    page = tab.page
    await page.goto(f"{server.url}/#/live")
    toggle = page.locator("[data-testid=live-toggle]")
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "true")
    await streaming(tab, server)
    await track(server, {"event": "Signed Up", "userId": "7"})
    await track(
        server,
        {
            "event": "pageview",
            "userId": "8",
            "source": "WEB",
            "context": {"url": "https://shop.example/pricing"},
        },
    )
    rows = page.locator(LIVE_EVENT)
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0).locator(".name")).to_have_text("pageview")
    await expect(rows.nth(0).locator(".detail")).to_have_text("/pricing")
    await expect(rows.nth(1).locator(".name")).to_have_text("Signed Up")
    await expect(page.locator("[data-testid=live-status]")).to_have_text("Live: 2 events received.")
    # Narrowed to one type: others no longer arrive.
    await page.fill("#live-type", "Purchase")
    await page.click("form[aria-label='Filter live events'] button[type=submit]")
    await expect(rows).to_have_count(0)
    await streaming(tab, server)
    await track(
        server,
        {"event": "pageview", "userId": "8", "source": "WEB"},
        {"event": "Purchase", "userId": "8", "properties": {"total": 5}},
    )
    await expect(rows).to_have_count(1)
    await expect(rows.nth(0).locator(".name")).to_have_text("Purchase")
    # Paused: the subscription ends.
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-pressed", "false")
    hub = server.app.state.usertrail.live  # type: ignore[attr-defined]
    for _ in range(1500):
        if not hub.subscriber_count():
            break
        await asyncio.sleep(0.01)
    assert hub.subscriber_count() == 0
    # The row's link opens the user's session.
    await rows.nth(0).locator("a").click()
    await expect(page).to_have_url(re.compile(r"#/user/8\?session="))
    clean(tab)


async def test_live_view_outside_dev_mode_uses_the_tabs_key(tab: Any, database_url: str) -> None:
    running, server, task = await start_server(database_url, dev=False)
    try:
        await environments.ensure(running.db, name="default")
        _, read_key = await keys.create(running.db, environment="default", scope="read")
        _, ingest_key = await keys.create(running.db, environment="default", scope="ingest")
        page = tab.page
        await page.goto(f"{running.url}/#/live")
        await page.click("[data-testid=live-toggle]")  # refused without a key: 4403
        await page.fill("[data-testid=api-key]", read_key)
        await page.click("[data-testid=api-key-submit]")
        await page.click("[data-testid=live-toggle]")
        await streaming(tab, running)
        await track(running, {"event": "Keyed", "userId": "3"}, key=ingest_key)
        await expect(page.locator(LIVE_EVENT)).to_have_count(1)
        clean(tab)
    finally:
        server.should_exit = True
        await task


async def test_live_view_has_no_serious_accessibility_violations(
    browser: Any, server: RunningServer
) -> None:
    script: Path = await asyncio.to_thread(axe_script)
    async with open_guarded(browser, GuardedPage, bypass_csp=True) as tab:
        await tab.page.goto(f"{server.url}/#/live")
        await tab.page.click("[data-testid=live-toggle]")
        await streaming(tab, server)
        await track(server, {"event": "Signed Up", "userId": "7"})
        await tab.page.wait_for_selector(LIVE_EVENT)
        assert await serious_violations(tab, script) == []
