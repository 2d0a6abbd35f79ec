"""A page on another origin calls the API in Chromium: CORS as a browser enforces it.

The page is served by a small HTTP server of its own on another port, so its origin differs
from the API's; it POSTs a query with `fetch`, which Chromium answers only when the API's
CORS headers (server/cross_origin.py) allow that origin, after a preflight for JSON.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from services import environments, keys
from tests.browser.conftest import GuardedPage
from tests.conftest import RunningServer, start_server

PAGE = b"<!doctype html><title>another origin</title><p>a page of another site</p>"
# Runs in the page: the query's answer, or the error fetch raised (a CORS refusal is a
# TypeError "Failed to fetch", with nothing readable of the answer).
CALL = """async ([url, key]) => {
  const headers = {"content-type": "application/json"};
  if (key) headers["authorization"] = `Bearer ${key}`;
  try {
    const answer = await fetch(url, {method: "POST", headers,
      body: JSON.stringify({query: "{ users(first: 5) { totalCount } }"})});
    return {status: answer.status, body: await answer.json()};
  } catch (error) {
    return {error: String(error)};
  }
}"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the handler's name is http.server's)
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (inherited name)
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[int]:
    """The port of a plain HTTP server (on 127.0.0.1) serving one page of another site."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
async def production(database_url: str, site: int) -> AsyncIterator[tuple[RunningServer, str]]:
    """A keyed server whose CORS list names the site as `http://localhost:<port>` only."""
    running, server, task = await start_server(
        database_url, dev=False, cors_origins=(f"http://localhost:{site}",)
    )
    await environments.ensure(running.db, name="browser-cors")
    _, key = await keys.create(running.db, environment="browser-cors", scope="read")
    yield running, key
    server.should_exit = True
    await task


async def _call_from(guarded: GuardedPage, page_url: str, api: str, key: str | None) -> Any:
    await guarded.page.goto(page_url)
    return await guarded.page.evaluate(CALL, [f"{api}/graphql", key])


async def test_a_local_page_drives_the_dev_server(
    server: RunningServer, site: int, guarded_page: GuardedPage
) -> None:
    answer = await _call_from(guarded_page, f"http://localhost:{site}/", server.url, None)
    assert answer.get("status") == 200, answer
    assert answer["body"]["data"]["users"]["totalCount"] == 0
    assert guarded_page.outside == []


async def test_only_the_listed_origin_reads_a_keyed_server(
    production: tuple[RunningServer, str], site: int, guarded_page: GuardedPage
) -> None:
    running, key = production
    listed = await _call_from(guarded_page, f"http://localhost:{site}/", running.url, key)
    assert listed.get("status") == 200, listed
    assert "users" in listed["body"]["data"]
    # The same page on 127.0.0.1 is another origin, not listed: the browser refuses the answer.
    other = await _call_from(guarded_page, f"http://127.0.0.1:{site}/", running.url, key)
    assert "Failed to fetch" in other.get("error", ""), other
    await asyncio.sleep(0)
    assert guarded_page.outside == []
