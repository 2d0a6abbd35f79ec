"""Browser fixtures: headless Chromium (Playwright for Python over Debian's /usr/bin/chromium)
whose pages may reach only this machine, a dev server holding demo data, GraphiQL's assets.

Every request a page makes to a host other than 127.0.0.1, localhost or ::1 is aborted and
recorded in `GuardedPage.outside`: a test asserts the list is empty. Without playwright,
chromium or the built assets (and no node to build them) the tests are skipped, saying why;
with the CI environment variable set they fail instead, so that CI never passes unchecked.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import pytest

from models.db import Database
from server.assets import BUILD_DIR, MANIFEST
from services import demo, environments
from tests import node_packages
from tests.conftest import RunningServer, start_server

CHROMIUM = Path("/usr/bin/chromium")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WEB = Path(__file__).parents[2] / "web"
SCREENSHOTS = Path(__file__).parent / "screenshots"
# Demo people loaded for the browser tests (a few seconds; the default query shows 10).
DEMO_PEOPLE = 40


def cannot_run(reason: str) -> NoReturn:
    """Skip, saying why; fail instead when the CI environment variable is set."""
    node_packages.cannot_run("the browser tests", reason)


@pytest.fixture(scope="session")
def built_assets() -> Path:
    """GraphiQL's built assets (`make assets`), built now if they are missing and node exists."""
    if (BUILD_DIR / MANIFEST).exists():
        return BUILD_DIR
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        cannot_run("GraphiQL's assets are not built and node/npm are not on PATH (make assets)")
    assert node is not None and npm is not None
    steps = ([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"], [node, "build.mjs"])
    for step in steps:
        try:
            done = subprocess.run(step, cwd=WEB, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            cannot_run(f"`{' '.join(step[:2])}` did not finish within 600 s")
        if done.returncode != 0:
            cannot_run(f"`{' '.join(step[:2])}` failed in {WEB}: {done.stderr.strip()[-1000:]}")
    return BUILD_DIR


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's), shared by the session's tests."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        cannot_run("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        cannot_run(f"{CHROMIUM} is missing (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


@dataclass
class GuardedPage:
    """A page in a fresh browser context that may reach only this machine."""

    page: Any
    outside: list[str] = field(default_factory=list)  # aborted: they tried to leave
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions
    finished: list[Any] = field(default_factory=list)  # requests answered, in order

    async def transferred(self) -> list[tuple[str, str, int]]:
        """(method, URL path, bytes received: headers and encoded body) per answered request."""
        sizes = []
        for request in self.finished:
            size = await request.sizes()
            body = size["responseBodySize"]
            response = await request.response()
            if not body and response is not None:  # Chromium reports none for web workers
                body = int(await response.header_value("content-length") or 0)
            received = size["responseHeadersSize"] + body
            sizes.append((request.method, urlsplit(request.url).path, received))
        return sizes


def is_loopback_url(url: str) -> bool:
    """True for URLs this machine answers (and data:/blob: URLs, which need no network)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob"):
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS


Guarded = TypeVar("Guarded", bound=GuardedPage)


@asynccontextmanager
async def open_guarded(
    browser: Any,
    kind: type[Guarded],
    *,
    bypass_csp: bool = False,
    default_timeout_ms: float | None = None,
) -> AsyncIterator[Guarded]:
    """A page (as `kind`) in its own context whose every non-loopback request is aborted
    and recorded, with its console errors and answered requests."""
    context = await browser.new_context(
        viewport={"width": 1400, "height": 900}, bypass_csp=bypass_csp
    )
    page = await context.new_page()
    if default_timeout_ms is not None:
        page.set_default_timeout(default_timeout_ms)
    guarded = kind(page)

    async def only_loopback(route: Any) -> None:
        if is_loopback_url(route.request.url):
            await route.continue_()
        else:
            guarded.outside.append(route.request.url)
            await route.abort("blockedbyclient")

    await context.route("**/*", only_loopback)
    page.on("console", lambda m: m.type == "error" and guarded.errors.append(m.text))
    page.on("pageerror", lambda error: guarded.errors.append(f"uncaught: {error}"))
    page.on("requestfinished", lambda request: guarded.finished.append(request))
    try:
        yield guarded
    finally:
        await context.close()


@pytest.fixture
async def guarded_page(browser: Any) -> AsyncIterator[GuardedPage]:
    """A page whose every non-loopback request is aborted and recorded."""
    async with open_guarded(browser, GuardedPage) as guarded:
        yield guarded


async def load_demo(
    db: Database, *, environment: str = "default", people: int = DEMO_PEOPLE
) -> None:
    """The demo data set `usertrail serve --demo-if-empty` loads (into `default`)."""
    environment_id = (await environments.ensure(db, name=environment)).id
    await demo.load(
        db, environment_id=environment_id, batches=demo.generate(users=people, days=14, seed=1)
    )


@pytest.fixture
async def demo_server(database_url: str, built_assets: Path) -> AsyncIterator[RunningServer]:
    """A real dev-mode server holding demo data, serving the built assets."""
    running, server, task = await start_server(database_url, dev=True)
    await load_demo(running.db)
    yield running
    server.should_exit = True
    await task


def screenshot_path(name: str) -> Path:
    """Where a test saves a screenshot (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
