"""GraphiQL in headless Chromium with every request off this machine blocked: it renders from
the app's own assets, runs its default query, and shows demo users.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from server.assets import URL_PREFIX
from services import keys
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
