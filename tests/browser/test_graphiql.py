"""GraphiQL in headless Chromium with every request off this machine blocked: it renders from
the app's own assets, runs its default query, and shows demo users.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from server.assets import URL_PREFIX
from services import environments, keys
from tests.browser.conftest import SCREENSHOTS, GuardedPage, load_demo, screenshot_path
from tests.conftest import RunningServer, start_server

# Generous: GraphiQL's first render loads Monaco and its workers (a second or two).
RENDERED_WITHIN_MS = 30_000
# What the page and its assets may cost over the wire: about 1.7 MB with brotli today; 6 MB,
# uncompressed, would mean the compressed files are not served.
MAX_TRANSFERRED = 2_500_000


def _is_default_query(response: Any) -> bool:
    request = response.request
    return request.method == "POST" and "RecentUsers" in (request.post_data or "")


async def test_graphiql_runs_its_default_query_offline(
    demo_server: RunningServer, guarded_page: GuardedPage
) -> None:
    from playwright.async_api import expect  # here: without playwright the fixtures skip first

    page = guarded_page.page
    await page.goto(f"{demo_server.url}/graphql")  # `/` is the Users & Sessions page
    container = page.locator(".graphiql-container")
    await expect(container).to_be_visible(timeout=RENDERED_WITHIN_MS)
    await expect(page.locator(".graphiql-query-editor")).to_contain_text(
        "query RecentUsers", timeout=RENDERED_WITHIN_MS
    )
    await expect(page.locator(".graphiql-editor-tool")).to_contain_text("no API key is needed")

    async with page.expect_response(_is_default_query) as answered:
        await page.locator(".graphiql-execute-button").click()
    answer = await answered.value
    assert answer.status == 200
    users = (await answer.json())["data"]["users"]
    names = [edge["node"]["displayName"] for edge in users["edges"]]
    assert users["totalCount"] > 0 and len(names) == 10, users
    assert all(edge["node"]["sessions"]["edges"] for edge in users["edges"])
    response_pane = page.locator(".graphiql-response")
    await expect(response_pane).to_contain_text('"totalCount"')
    await expect(response_pane).to_contain_text(names[0])
    await page.screenshot(path=screenshot_path("graphiql"))

    assert guarded_page.outside == [], "requests tried to leave the machine"
    assert guarded_page.errors == [], "console errors (a CSP violation is one)"
    sizes = await guarded_page.transferred()
    page_and_assets = [
        (path, size)
        for method, path, size in sizes
        if (method, path) == ("GET", "/graphql") or path.startswith(URL_PREFIX)
    ]
    assert sum(path.endswith(".js") for path, _ in page_and_assets) >= 4  # page, chunks, workers
    total = sum(size for _, size in page_and_assets)
    (SCREENSHOTS / "graphiql-transferred.json").write_text(
        json.dumps({"total": total, "files": page_and_assets}, indent=2)
    )
    assert total < MAX_TRANSFERRED, page_and_assets


async def test_outside_dev_mode_graphiql_asks_for_a_key_and_runs_with_one(
    database_url: str, built_assets: Path, guarded_page: GuardedPage
) -> None:
    from playwright.async_api import expect

    running, server, task = await start_server(database_url, dev=False, introspection=True)
    try:
        await load_demo(running.db, environment="alpha")
        _, read_key = await keys.create(running.db, environment="alpha", scope="read")
        page = guarded_page.page
        await page.goto(f"{running.url}/graphql")  # the page itself needs no key
        headers_editor = page.locator('.monaco-editor[data-uri$="request-headers.json"]')
        await expect(headers_editor).to_contain_text("<your read key>", timeout=RENDERED_WITHIN_MS)
        await headers_editor.click()
        await page.keyboard.press("ControlOrMeta+A")
        await page.keyboard.press("Delete")

        def introspection_with_the_key(response: Any) -> bool:
            request = response.request
            return (
                "IntrospectionQuery" in (request.post_data or "")
                and request.headers.get("authorization") == f"Bearer {read_key}"
            )

        # Typed key by key: Monaco types over the brackets and quotes it closes itself. The
        # schema, refused without a key when the page opened, is fetched again with it.
        async with page.expect_response(introspection_with_the_key) as introspected:
            await page.keyboard.type(json.dumps({"Authorization": f"Bearer {read_key}"}))
        schema = await introspected.value
        assert schema.status == 200 and (await schema.json())["data"]["__schema"]

        async with page.expect_response(_is_default_query) as answered:
            await page.locator(".graphiql-execute-button").click()
        answer = await answered.value
        assert answer.status == 200 and answer.request.headers["authorization"].endswith(read_key)
        users = (await answer.json())["data"]["users"]
        assert len(users["edges"]) == 10
        first = users["edges"][0]["node"]["displayName"]
        await expect(page.locator(".graphiql-response")).to_contain_text(first)
        await page.screenshot(path=screenshot_path("graphiql-with-key"))
        assert guarded_page.outside == []
    finally:
        server.should_exit = True
        await task


LIVE = "subscription LiveCheck { liveEvents { event { name user { userId } } dropped } }"
TRACK_BATCH = "mutation($e: [TrackInput!]!) { trackBatch(events: $e) { accepted } }"
# How long the page may take to open its WebSocket and subscribe (in the server's hub).
SUBSCRIBED_WITHIN_S = 30


async def _replace_text(page: Any, editor: Any, text: str) -> None:
    """The editor's whole text replaced by `text` (inserted at once: Monaco closes no brackets)."""
    await editor.click()
    await page.keyboard.press("ControlOrMeta+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(text)


async def _enter_subscription(page: Any, query_editor: Any) -> None:
    """LIVE in the query editor, once GraphiQL has read it (the tab takes its name)."""
    from playwright.async_api import expect

    await _replace_text(page, query_editor, LIVE)
    await expect(page.locator(".graphiql-tab-active")).to_contain_text("LiveCheck")


async def _subscribers(running: RunningServer, count: int) -> None:
    """Wait until the server's live hub holds `count` subscriptions (none is acknowledged)."""
    hub = running.app.state.usertrail.live  # type: ignore[attr-defined]
    for _ in range(SUBSCRIBED_WITHIN_S * 100):
        if hub.subscriber_count() >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} subscription(s) never reached the server")


async def _track(running: RunningServer, event: str, user_id: str, key: str | None) -> None:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=running.url, headers=headers) as http:
        answer = await http.post(
            "/graphql",
            json={"query": TRACK_BATCH, "variables": {"e": [{"event": event, "userId": user_id}]}},
        )
    assert answer.json() == {"data": {"trackBatch": {"accepted": 1}}}, answer.text


async def test_graphiql_runs_a_subscription_over_websocket(
    demo_server: RunningServer, guarded_page: GuardedPage
) -> None:
    from playwright.async_api import expect

    page = guarded_page.page
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    await page.goto(f"{demo_server.url}/graphql")
    query_editor = page.locator(".graphiql-query-editor .monaco-editor").first
    await expect(query_editor).to_contain_text("query RecentUsers", timeout=RENDERED_WITHIN_MS)
    # The second default tab holds the LiveEvents subscription.
    await page.locator(".graphiql-tab", has_text="LiveEvents").click()
    await expect(query_editor).to_contain_text("subscription LiveEvents")
    await page.locator(".graphiql-execute-button").click()
    await _subscribers(demo_server, 1)

    await _track(demo_server, "GraphiQL Live Check", "90017", key=None)
    response_pane = page.locator(".graphiql-response")
    await expect(response_pane).to_contain_text("GraphiQL Live Check")
    await expect(response_pane).to_contain_text('"90017"')
    await expect(response_pane).to_contain_text('"dropped": 0')
    await expect(response_pane).to_contain_text('"source": "SERVER"')
    await page.screenshot(path=screenshot_path("graphiql-subscription"))
    host = demo_server.url.removeprefix("http://")
    assert sockets == [f"ws://{host}/graphql"]  # the page's own host, ws: as the page is http:

    await page.locator(".graphiql-execute-button").click()  # stops the subscription
    await _subscribers_gone(demo_server)
    assert guarded_page.outside == [], "requests tried to leave the machine"
    assert guarded_page.errors == [], "console errors (a CSP violation is one)"


async def _subscribers_gone(running: RunningServer) -> None:
    hub = running.app.state.usertrail.live  # type: ignore[attr-defined]
    for _ in range(SUBSCRIBED_WITHIN_S * 100):
        if hub.subscriber_count() == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the stopped subscription stayed on the server")


async def test_outside_dev_mode_a_subscription_needs_the_key_of_the_headers_tab(
    database_url: str, built_assets: Path, guarded_page: GuardedPage
) -> None:
    from playwright.async_api import expect

    running, server, task = await start_server(database_url, dev=False, introspection=True)
    try:
        await environments.ensure(running.db, name="alpha")
        _, read_key = await keys.create(running.db, environment="alpha", scope="read")
        _, ingest_key = await keys.create(running.db, environment="alpha", scope="ingest")
        page = guarded_page.page
        await page.goto(f"{running.url}/graphql")
        query_editor = page.locator(".graphiql-query-editor .monaco-editor").first
        await expect(query_editor).to_contain_text("query RecentUsers", timeout=RENDERED_WITHIN_MS)
        await _enter_subscription(page, query_editor)
        response_pane = page.locator(".graphiql-response")

        # The headers tab still holds its hint (`Bearer <your read key>`): refused, and said so.
        await page.locator(".graphiql-execute-button").click()
        await expect(response_pane).to_contain_text("refused the subscription's API key")
        await expect(response_pane).to_contain_text("Headers tab")

        headers_editor = page.locator('.monaco-editor[data-uri$="request-headers.json"]')

        def introspection_with_the_key(response: Any) -> bool:
            request = response.request
            return request.headers.get("authorization") == f"Bearer {read_key}"

        # Once the schema is fetched with the key, GraphiQL has read the headers tab.
        async with page.expect_response(introspection_with_the_key):
            await _replace_text(
                page, headers_editor, json.dumps({"Authorization": f"Bearer {read_key}"})
            )
        await page.locator(".graphiql-execute-button").click()
        await _subscribers(running, 1)
        await _track(running, "Keyed Live Check", "90018", key=ingest_key)
        await expect(response_pane).to_contain_text("Keyed Live Check")
        await expect(response_pane).to_contain_text('"90018"')
        assert guarded_page.outside == []
        # The refusals are the page's: the browser logs the schema fetched without a key (401)
        # and the refused socket.
        unexpected = [e for e in guarded_page.errors if "WebSocket" not in e and "401" not in e]
        assert unexpected == [], guarded_page.errors
    finally:
        server.should_exit = True
        await task
