"""The Users & Sessions page (web/page, server/page.py) in headless Chromium, on the demo data.

A real dev server holds the data set `make serve` loads (the Makefile's DEMO people over
DEMO_DAYS days); Playwright for Python drives Debian's /usr/bin/chromium. Every request the
page makes to a host other than loopback is aborted and recorded, and each test asserts
there was none. The page's answers are compared with what the public API answers for the
same query. Screenshots go to tests/browser/screenshots/ (git-ignored): users-list,
users-sorted, users-filtered, sessions-highlighted, user-sessions-events, event-defined,
rage-clicks, sessions-page, api-key-asked. axe-core comes from npm (tests/browser/axe, pinned
by its lock) and is injected into the page. The page's transferred size is held to
PAGE_BUDGET_BYTES; the time to the first list is printed (the page marks it), never asserted.

Chromium comes from tests/browser/conftest.py (`browser`, `cannot_run`): without playwright,
chromium, or npm for axe-core, the tests are skipped and say why; with the CI environment
variable set they fail instead, so that CI never passes unchecked. The page needs no build
(GraphiQL's assets are not involved), so its server is this module's own.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

try:
    from playwright.async_api import expect
except ImportError:  # the `browser` fixture skips (or fails in CI), saying why
    expect = None  # type: ignore[assignment]

from services import demo, environments, keys
from tests.browser.conftest import SCREENSHOTS, GuardedPage, open_guarded
from tests.conftest import RunningServer, start_server
from tests.demo_server import makefile_demo
from tests.node_packages import install

AXE = Path(__file__).parent / "axe"
AXE_SCRIPT = AXE / "node_modules" / "axe-core" / "axe.min.js"
# The page's own files, transferred on a first visit (headers included), must stay under this.
PAGE_BUDGET_BYTES = 100_000
USER_ROW = "[data-testid=user-row]"
SESSION_ROW = "[data-testid=session-row]"
EVENT_ITEM = "[data-testid=event-item]"
# How long a page of a session's events may take to arrive and render.
PAGE_LOADED_WITHIN_MS = 30_000


@dataclass
class Tab(GuardedPage):
    """A page in a fresh browser context that may reach only this machine."""

    async def transferred_by_path(self) -> dict[str, int]:
        """Bytes received (headers and encoded body) per URL path answered."""
        sizes: dict[str, int] = {}
        for _method, path, received in await self.transferred():
            sizes[path] = sizes.get(path, 0) + received
        return sizes

    def clean(self) -> None:
        """Nothing left the machine, and the page logged no error."""
        assert self.outside == [], f"requests that tried to leave the machine: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"


def guarded_tab(browser: Any, *, bypass_csp: bool = False) -> AbstractAsyncContextManager[Tab]:
    """A Tab in its own context whose every non-loopback request is aborted and recorded."""
    return open_guarded(browser, Tab, bypass_csp=bypass_csp, default_timeout_ms=15_000)


@pytest.fixture
async def tab(browser: Any) -> AsyncIterator[Tab]:
    """A guarded page under the page's own Content-Security-Policy."""
    async with guarded_tab(browser) as guarded:
        yield guarded


async def load_demo(running: RunningServer, environment: str = "default") -> None:
    """The demo data set `make serve` loads (the Makefile's DEMO people over DEMO_DAYS)."""
    people, days = makefile_demo()
    environment_id = (await environments.ensure(running.db, name=environment)).id
    batches = demo.generate(users=people, days=days, seed=1)
    await demo.load(running.db, environment_id=environment_id, batches=batches)


@pytest.fixture(scope="module")
async def site(module_database_url: str) -> AsyncIterator[RunningServer]:
    """A real dev-mode server holding the demo data, shared by this module's tests."""
    running, server, task = await start_server(module_database_url, dev=True)
    await load_demo(running)
    yield running
    server.should_exit = True
    await task


async def query(running: RunningServer, text: str, key: str | None = None, **variables: Any) -> Any:
    """The `data` of a GraphQL query sent to the public API."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=running.url, headers=headers) as client:
        answer = await client.post("/graphql", json={"query": text, "variables": variables})
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


async def shot(tab: Tab, name: str) -> Path:
    """Saves a screenshot under tests/browser/screenshots/ (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await tab.page.screenshot(path=str(path), full_page=True)
    return path


async def summary_starts(tab: Tab, text: str) -> None:
    """Waits until the list's summary line starts with `text` (the page's count)."""
    await expect(tab.page.locator(".summary")).to_have_text(re.compile("^" + re.escape(text)))


async def open_users(tab: Tab, running: RunningServer) -> float:
    """Opens the page at `/` and waits for the first users list; seconds it took."""
    started = time.perf_counter()
    await tab.page.goto(f"{running.url}/")
    await tab.page.wait_for_selector(USER_ROW)
    return time.perf_counter() - started


async def first_user_with(running: RunningServer, wanted: str) -> tuple[str, str]:
    """(userId, session id) of a listed user with a web session holding `wanted` events:
    "raw" (an undefined click) or "rage" (a rage click)."""
    sessions = await query(
        running,
        """{ sessions(first: 100, filter: {time: {lastDays: 30}, sources: [WEB]}) { edges { node {
             id hasRageClick user { userId lastSeen }
             events(first: 100) { edges { node { type defined isRageClick } } } } } } }""",
    )
    for edge in sessions["sessions"]["edges"]:
        session = edge["node"]
        events = [e["node"] for e in session["events"]["edges"]]
        if wanted == "rage" and any(e["isRageClick"] for e in events):
            return session["user"]["userId"], session["id"]
        if wanted == "raw" and any(e["type"] == "click" and not e["defined"] for e in events):
            return session["user"]["userId"], session["id"]
    raise AssertionError(f"the demo data holds no web session with a {wanted} click")


USERS = """query($filter: UserFilter) { users(filter: $filter, first: 25) {
  totalCount edges { node { displayName } } } }"""


async def test_users_list_renders_newest_first_with_total_and_paging(
    tab: Tab, site: RunningServer
) -> None:
    seconds = await open_users(tab, site)
    expected = (await query(site, USERS))["users"]
    rows = tab.page.locator(USER_ROW)
    names = await rows.locator("strong").all_inner_texts()
    assert names == [e["node"]["displayName"] for e in expected["edges"]]
    summary = await tab.page.locator(".summary").inner_text()
    assert f"{expected['totalCount']} users seen in the last 7 days" in summary
    first = rows.first
    assert "First session in" in (
        await first.locator("td").nth(2).locator("span").get_attribute("title") or ""
    )
    exact = await first.locator("time").get_attribute("title")
    assert exact and re.search(r"\d{1,2}:\d{2}:\d{2}", exact), exact
    await shot(tab, "users-list")
    await tab.page.get_by_role("button", name="Load more").click()
    shown = min(50, expected["totalCount"])
    await expect(rows).to_have_count(shown)
    assert len(set(await rows.evaluate_all("rows => rows.map(r => r.dataset.userId)"))) == shown
    sizes = await tab.transferred_by_path()
    page_bytes = sum(
        size for path, size in sizes.items() if path == "/" or path.startswith("/page/")
    )
    # The page marks its first rendered list; the time is reported, never asserted.
    listed = await tab.page.evaluate(
        "() => performance.getEntriesByName('first-users-list')[0].startTime"
    )
    print(
        f"page files transferred: {page_bytes} bytes; first users list rendered "
        f"{listed:.0f} ms after navigation started ({seconds:.2f} s as Playwright waited)"
    )
    assert page_bytes < PAGE_BUDGET_BYTES, sizes
    tab.clean()


SORTED = """query($order: UserOrder) { users(orderBy: $order, first: 25) {
  edges { node { userId } } } }"""


async def test_column_headers_sort_the_list(tab: Tab, site: RunningServer) -> None:
    await open_users(tab, site)
    rows = tab.page.locator(USER_ROW)
    for header, field, direction in (
        ("Last seen", "LAST_SEEN", "ASC"),
        ("First session", "FIRST_SEEN", "DESC"),
        ("First session", "FIRST_SEEN", "ASC"),
    ):
        await tab.page.get_by_role("button", name=header).click()
        order = {"field": field, "direction": direction}
        wanted = [
            e["node"]["userId"] for e in (await query(site, SORTED, order=order))["users"]["edges"]
        ]
        await expect(rows.first).to_have_attribute("data-user-id", wanted[0])
        await expect(rows.last).to_have_attribute("data-user-id", wanted[-1])
        assert await rows.evaluate_all("rows => rows.map(r => r.dataset.userId)") == wanted
        sorted_header = tab.page.locator(f"th[data-sort={field}]")
        aria = "ascending" if direction == "ASC" else "descending"
        assert await sorted_header.get_attribute("aria-sort") == aria
    await shot(tab, "users-sorted")
    tab.clean()


async def test_time_filter_between_two_dates_and_last_days(tab: Tab, site: RunningServer) -> None:
    await open_users(tab, site)
    await tab.page.fill("#seen-days", "1")
    await tab.page.click("[data-testid=apply-filters]")
    day = (await query(site, USERS, filter={"seen": {"lastDays": 1}}))["users"]["totalCount"]
    await summary_starts(tab, f"{day} user")
    await tab.page.select_option("#seen-mode", "between")
    today = time.strftime("%Y-%m-%d", time.localtime())
    await tab.page.fill("#seen-from", today)
    await tab.page.fill("#seen-to", today)
    await tab.page.click("[data-testid=apply-filters]")
    await expect(tab.page.locator(".summary")).to_contain_text("between")
    assert await tab.page.locator(USER_ROW).count() >= 1
    tab.clean()


async def test_a_users_sessions_events_and_properties(tab: Tab, site: RunningServer) -> None:
    user_id, session_id = await first_user_with(site, "raw")
    await tab.page.goto(f"{site.url}/#/user/{user_id}")
    await tab.page.wait_for_selector(SESSION_ROW)
    expected = await query(
        site,
        """query($u: String!) { user(userId: $u) {
             sessions(first: 20) { edges { node { id } } } } }""",
        u=user_id,
    )
    ids = await tab.page.locator(SESSION_ROW).evaluate_all(
        "rows => rows.map(r => r.dataset.sessionId)"
    )
    assert ids == [e["node"]["id"] for e in expected["user"]["sessions"]["edges"]]
    await tab.page.locator(f"{SESSION_ROW}[data-session-id='{session_id}'] button").click()
    raw = tab.page.locator(f"{EVENT_ITEM}[data-defined=false]").first
    await raw.wait_for()
    assert float(await raw.locator(".event-main").evaluate("e => getComputedStyle(e).opacity")) < 1
    await raw.locator(".event-main").click()
    assert await raw.locator("[data-testid=event-properties]").is_visible()
    assert "path" in await raw.locator("[data-testid=event-properties]").inner_text()
    web = tab.page.locator(f"{SESSION_ROW}[data-session-id='{session_id}'] .browser")
    assert " on " in (await web.get_attribute("title") or "")
    # "About this user": the search narrows the list to matching properties.
    items = tab.page.locator("[data-testid=property-item]")
    await items.first.wait_for()
    everything = await items.count()
    await tab.page.fill("[data-testid=property-search]", "initial country")
    await expect(items).to_have_count(1)
    assert "Initial Country" in await items.first.inner_text()
    assert everything > 1
    await shot(tab, "user-sessions-events")
    tab.clean()


async def test_define_a_raw_event_marks_it_defined(tab: Tab, site: RunningServer) -> None:
    user_id, session_id = await first_user_with(site, "raw")
    await tab.page.goto(f"{site.url}/#/user/{user_id}?session={session_id}")
    raw_click = tab.page.locator(f"{EVENT_ITEM}[data-defined=false]", has_text="click").first
    await raw_click.wait_for()
    target = await raw_click.locator(".detail").inner_text()
    await raw_click.locator("[data-testid=define-event]").click()
    await tab.page.fill("[data-testid=define-event-name]", "Clicked in the page test")
    await tab.page.click("[data-testid=define-event-submit]")
    defined = tab.page.locator(
        f"{EVENT_ITEM}[data-defined=true]", has_text="Clicked in the page test"
    )
    await defined.first.wait_for()
    assert target in await defined.first.inner_text()
    marker = await defined.first.locator(".marker").evaluate(
        "e => getComputedStyle(e).backgroundColor"
    )
    assert marker not in ("rgba(0, 0, 0, 0)", "transparent")
    definitions = await query(site, "{ eventDefinitions { name eventCount } }")
    made = [d for d in definitions["eventDefinitions"] if d["name"] == "Clicked in the page test"]
    assert made and made[0]["eventCount"] >= 1
    await shot(tab, "event-defined")
    tab.clean()


async def test_rage_clicks_are_red(tab: Tab, site: RunningServer) -> None:
    user_id, session_id = await first_user_with(site, "rage")
    await tab.page.goto(f"{site.url}/#/user/{user_id}?session={session_id}")
    rage = tab.page.locator(f"{EVENT_ITEM}[data-rage=true]")
    await rage.first.wait_for()
    color = await rage.first.locator(".name").evaluate("e => getComputedStyle(e).color")
    red, green, blue = (int(part) for part in re.findall(r"\d+", color)[:3])
    assert red > 150 and green < 80 and blue < 80, color
    assert (
        await tab.page.locator(f"{SESSION_ROW}[data-session-id='{session_id}'] .rage-mark").count()
        == 1
    )
    # Hovering a most frequent event highlights its instances in the list.
    chip = tab.page.locator("[data-testid=frequent-event]").first
    await chip.hover()
    assert await tab.page.locator(f"{EVENT_ITEM}.hl").count() >= 1
    await shot(tab, "rage-clicks")
    tab.clean()


async def test_filters_narrow_the_list(tab: Tab, site: RunningServer) -> None:
    await open_users(tab, site)
    await tab.page.click("[data-testid=add-property-filter]")
    condition = tab.page.locator("[data-testid=property-condition]")
    await condition.locator("[data-testid=condition-property]").fill("identity")
    await condition.locator("select").select_option("CONTAINS")
    await condition.locator("[data-testid=condition-value]").fill("acme")
    await tab.page.click("[data-testid=apply-filters]")
    where = [{"property": "identity", "op": "CONTAINS", "value": "acme"}]
    expected = (await query(site, USERS, filter={"properties": where}))["users"]
    total = expected["totalCount"]
    await summary_starts(tab, f"{total} user")
    names = await tab.page.locator(USER_ROW).locator("strong").all_inner_texts()
    assert names and all("acme" in name.lower() for name in names)
    assert names == [e["node"]["displayName"] for e in expected["edges"]]

    # Did event X, at least N times: the list narrows further, and "See all sessions"
    # opens a user's sessions with the matching ones highlighted.
    await tab.page.click("[data-testid=add-event-filter]")
    event = tab.page.locator("[data-testid=event-condition]")
    await event.locator("[data-testid=condition-event]").select_option("type:click")
    await event.locator("[data-testid=condition-property]").fill("path")
    await event.locator("select[aria-label=Operator]").select_option("EQUALS")
    await event.locator("[data-testid=condition-value]").fill("/")
    await event.locator("[data-testid=condition-at-least]").fill("2")
    await tab.page.click("[data-testid=apply-filters]")
    on_home = [{"property": "path", "op": "EQUALS", "value": "/"}]
    did = [{"event": {"type": "click", "where": on_home}, "atLeast": 2}]
    both = (await query(site, USERS, filter={"properties": where, "events": did}))["users"]
    await summary_starts(tab, f"{both['totalCount']} user")
    assert 0 < both["totalCount"] < total
    names = await tab.page.locator(USER_ROW).locator("strong").all_inner_texts()
    assert names == [e["node"]["displayName"] for e in both["edges"]]
    await shot(tab, "users-filtered")
    await tab.page.get_by_role("link", name=re.compile("^See all sessions")).first.click()
    await tab.page.wait_for_selector("[data-testid=highlight-note]")
    assert await tab.page.locator(f"{SESSION_ROW}[data-highlighted=true]").count() >= 1
    await shot(tab, "sessions-highlighted")
    tab.clean()


async def test_sessions_page_filters_and_its_limitation(tab: Tab, site: RunningServer) -> None:
    await tab.page.goto(f"{site.url}/#/sessions")
    await tab.page.wait_for_selector(SESSION_ROW)
    await tab.page.select_option("[data-testid=sessions-event]", "type:Invoice Paid")
    await tab.page.get_by_role("button", name="Apply").click()
    notice = tab.page.locator("[data-testid=sessions-limitation]")
    await notice.wait_for()
    assert "only sessions that started client-side" in await notice.inner_text()
    expected = await query(
        site,
        """{ sessions(filter: {event: {type: "Invoice Paid"}}) { totalCount } }""",
    )
    count = expected["sessions"]["totalCount"]
    await summary_starts(tab, f"{count} session")
    await tab.page.check("[data-testid=include-server-only]")
    lifted = await query(
        site,
        """{ sessions(filter: {event: {type: "Invoice Paid"}, includeServerOnly: true}) {
             totalCount } }""",
    )
    more = lifted["sessions"]["totalCount"]
    await summary_starts(tab, f"{more} session")
    assert more > count
    assert "included" in await notice.inner_text()
    await shot(tab, "sessions-page")

    # By user properties: client-side sessions of the users whose plan is pro.
    await tab.page.uncheck("[data-testid=include-server-only]")
    await tab.page.select_option("[data-testid=sessions-event]", "")
    by_property = tab.page.locator("[data-testid=sessions-user-property]")
    await by_property.locator("[data-testid=condition-property]").fill("plan")
    await by_property.locator("[data-testid=condition-value]").fill("pro")
    await tab.page.get_by_role("button", name="Apply").click()
    pro = [{"property": "plan", "op": "EQUALS", "value": "pro"}]
    on_pro = await query(
        site,
        "query($p: [PropertyCondition!]) { sessions(filter: {userProperties: $p}) { totalCount } }",
        p=pro,
    )
    await summary_starts(tab, f"{on_pro['sessions']['totalCount']} session")
    assert "user properties" in await notice.inner_text()

    # By one user: all of that user's sessions, server-only ones too.
    await by_property.locator("[data-testid=condition-property]").fill("")
    user_id, _ = await first_user_with(site, "raw")
    await tab.page.fill("[data-testid=sessions-user]", user_id)
    await tab.page.get_by_role("button", name="Apply").click()
    theirs = await query(
        site,
        "query($u: String) { sessions(filter: {userId: $u}) { totalCount } }",
        u=user_id,
    )
    await summary_starts(tab, f"{theirs['sessions']['totalCount']} session")
    assert "all of that user's sessions" in await notice.inner_text()
    # A session opens on its user's page, chosen, with its events.
    first = tab.page.locator(SESSION_ROW).first
    session_id = await first.get_attribute("data-session-id")
    await first.locator("button").click()
    await tab.page.wait_for_selector(EVENT_ITEM)
    chosen = tab.page.locator(f"{SESSION_ROW}[data-session-id='{session_id}'] button")
    assert await chosen.get_attribute("aria-current") == "true"
    assert f"#/user/{user_id}" in tab.page.url
    tab.clean()


async def test_keyboard_reaches_rows_sessions_and_events(tab: Tab, site: RunningServer) -> None:
    await open_users(tab, site)
    link = tab.page.locator(f"{USER_ROW} a").first
    await link.focus()
    await tab.page.keyboard.press("ArrowDown")
    second = await tab.page.evaluate("document.activeElement.closest('tr').dataset.userId")
    ids = await tab.page.locator(USER_ROW).evaluate_all("rows => rows.map(r => r.dataset.userId)")
    assert second == ids[1]
    outline = await tab.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    await tab.page.keyboard.press(" ")
    await tab.page.wait_for_selector(SESSION_ROW)
    assert f"#/user/{ids[1]}" in tab.page.url
    # Tab reaches the sessions; Enter opens one; Tab goes on into its events.
    for _ in range(12):
        await tab.page.keyboard.press("Tab")
        if await tab.page.evaluate("!!document.activeElement.closest('[data-testid=session-row]')"):
            break
    else:
        raise AssertionError("Tab never reached a session")
    await tab.page.keyboard.press("Enter")
    await tab.page.wait_for_selector(EVENT_ITEM)
    for _ in range(40):
        await tab.page.keyboard.press("Tab")
        if await tab.page.evaluate("!!document.activeElement.closest('[data-testid=event-item]')"):
            break
    else:
        raise AssertionError("Tab never reached an event")
    await tab.page.keyboard.press("Enter")
    expanded = await tab.page.evaluate("document.activeElement.getAttribute('aria-expanded')")
    assert expanded == "true"
    tab.clean()


def axe_script() -> Path:
    """axe-core's script, installed from npm (tests/browser/axe) if it is missing."""
    install(AXE, "axe-core", what="the accessibility test")
    return AXE_SCRIPT


async def serious_violations(tab: Tab, script: Path) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands."""
    await tab.page.add_script_tag(path=str(script))
    found = await tab.page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(f"{n['target']}: {n['failureSummary']}" for n in v["nodes"][:4])
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


async def test_no_serious_accessibility_violations(browser: Any, site: RunningServer) -> None:
    script = await asyncio.to_thread(axe_script)
    # Playwright injects axe-core as an inline script, which the page's policy refuses: this
    # context alone bypasses the policy (every other test runs under it).
    async with guarded_tab(browser, bypass_csp=True) as tab:
        await check_accessibility(tab, site, script)


async def check_accessibility(tab: Tab, site: RunningServer, script: Path) -> None:
    """No serious or critical axe-core violation on the users list, a user, the sessions."""
    await open_users(tab, site)
    await tab.page.click("[data-testid=add-property-filter]")
    await tab.page.click("[data-testid=add-event-filter]")
    problems = {"users": await serious_violations(tab, script)}
    user_id, session_id = await first_user_with(site, "rage")
    await tab.page.goto(f"{site.url}/#/user/{user_id}?session={session_id}")
    await tab.page.wait_for_selector(EVENT_ITEM)
    await tab.page.wait_for_selector("[data-testid=property-item]")
    await tab.page.locator(f"{EVENT_ITEM} .event-main").first.click()
    await tab.page.locator("[data-testid=define-event]").first.click()
    problems["user"] = await serious_violations(tab, script)
    await tab.page.goto(f"{site.url}/#/sessions")
    await tab.page.wait_for_selector(SESSION_ROW)
    problems["sessions"] = await serious_violations(tab, script)
    assert problems == {"users": [], "user": [], "sessions": []}, json.dumps(problems, indent=1)
    tab.clean()


async def test_outside_dev_mode_the_page_asks_for_a_key_for_this_tab(
    tab: Tab, database_url: str
) -> None:
    running, server, task = await start_server(database_url, dev=False)
    try:
        await load_demo(running, environment="keyed")
        _, read_key = await keys.create(running.db, environment="keyed", scope="read")
        await tab.page.goto(f"{running.url}/")
        await tab.page.wait_for_selector("[data-testid=api-key]")
        await shot(tab, "api-key-asked")
        await tab.page.fill("[data-testid=api-key]", read_key)
        await tab.page.click("[data-testid=api-key-submit]")
        await tab.page.wait_for_selector(USER_ROW)
        kept = await tab.page.evaluate("sessionStorage.getItem('usertrail.apiKey')")
        assert kept == read_key
        assert await tab.page.evaluate("localStorage.length") == 0
        # A read key may not define events: the form says an admin key is needed.
        user_id, session_id = await first_user_with_key(running, read_key)
        await tab.page.goto(f"{running.url}/#/user/{user_id}?session={session_id}")
        raw = tab.page.locator(f"{EVENT_ITEM}[data-defined=false]").first
        await raw.locator("[data-testid=define-event]").click()
        await tab.page.click("[data-testid=define-event-submit]")
        alert = tab.page.locator(".define-form [role=alert]")
        await alert.filter(has_text="admin").wait_for()
        # 401 answers are logged by Chromium as console errors: the page's key request.
        tab.errors = [e for e in tab.errors if "401" not in e and "403" not in e]
        tab.clean()
    finally:
        server.should_exit = True
        await task


async def first_user_with_key(running: RunningServer, key: str) -> tuple[str, str]:
    """(userId, session id) of a web session with a raw event, read with `key`."""
    found = await query(
        running,
        """{ sessions(first: 50, filter: {sources: [WEB]}) { edges { node {
             id user { userId } events(first: 50) { edges { node { defined } } } } } } }""",
        key=key,
    )
    for edge in found["sessions"]["edges"]:
        if any(not e["node"]["defined"] for e in edge["node"]["events"]["edges"]):
            return edge["node"]["user"]["userId"], edge["node"]["id"]
    raise AssertionError("no web session with a raw event")


async def test_page_files_are_typed_compressed_and_under_a_strict_policy(
    site: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=site.url) as client:
        page = await client.get("/")
        script = await client.get("/page/app.js", headers={"accept-encoding": "gzip"})
        again = await client.get("/page/app.js", headers={"if-none-match": script.headers["etag"]})
        outside = await client.get("/page/..%2Fserver%2Fpage.py")
        missing = await client.get("/page/nothing.js")
    policy = page.headers["content-security-policy"]
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in page.text and 'src="/page/app.js"' in page.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-encoding"] == "gzip"
    assert script.headers["x-content-type-options"] == "nosniff"
    assert again.status_code == 304
    assert outside.status_code == 404 and missing.status_code == 404


async def test_saved_segments_filter_the_list_and_a_filter_saves_as_one(
    tab: Tab, site: RunningServer
) -> None:
    pro = {"properties": [{"property": "plan", "op": "EQUALS", "value": "pro"}]}
    made = await query(
        site,
        """mutation($input: SegmentInput!) { createSegment(input: $input) {
             segment { id } errors { message } } }""",
        input={"name": "Pro plan (page test)", "filter": pro},
    )
    segment_id = made["createSegment"]["segment"]["id"]
    members = (await query(site, USERS, filter={"segmentId": segment_id}))["users"]
    await open_users(tab, site)
    await tab.page.select_option("[data-testid=segment-select]", segment_id)
    await summary_starts(tab, f"{members['totalCount']} user")
    names = await tab.page.locator(USER_ROW).locator("strong").all_inner_texts()
    assert names == [e["node"]["displayName"] for e in members["edges"]]
    # The filter on screen, saved from the page, is a segment the API lists.
    await tab.page.select_option("[data-testid=segment-select]", "")
    await tab.page.click("[data-testid=add-property-filter]")
    condition = tab.page.locator("[data-testid=property-condition]")
    await condition.locator("[data-testid=condition-property]").fill("seats")
    await condition.locator("select").select_option("GREATER_THAN")
    await condition.locator("[data-testid=condition-value]").fill("4")
    await tab.page.click("[data-testid=apply-filters]")
    await tab.page.click("[data-testid=save-segment]")
    await tab.page.fill("[data-testid=segment-name]", "Teams of five or more")
    await tab.page.click("[data-testid=save-segment-submit]")
    await expect(tab.page.locator(".save-segment [role=status]")).to_contain_text("Saved")
    segments = await query(site, "{ segments { name filter userCount } }")
    saved = [s for s in segments["segments"] if s["name"] == "Teams of five or more"]
    assert saved and saved[0]["filter"]["properties"][0]["op"] == "GREATER_THAN"
    tab.clean()


async def test_a_session_with_a_replay_shows_a_play_icon(tab: Tab, site: RunningServer) -> None:
    agent = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    )
    await query(
        site,
        """mutation($input: TrackInput!) { track(input: $input) { accepted } }""",
        input={
            "event": "pageview",
            "userId": "424242",
            "source": "WEB",
            "properties": {"replay": True},
            "context": {"userAgent": agent, "url": "https://shop.example/replayed"},
        },
    )
    await tab.page.goto(f"{site.url}/#/user/424242")
    row = tab.page.locator(SESSION_ROW).first
    await row.wait_for()
    assert await row.locator(".play").get_attribute("title") == "Replay available"
    browser = await row.locator(".browser").get_attribute("title")
    assert browser is not None and browser.startswith("Chrome 131 on Mac OS X")
    tab.clean()


async def test_a_long_sessions_events_are_all_reachable(tab: Tab, site: RunningServer) -> None:
    """A session of 450 events shows its first page and the rest on "Show more events"."""
    now = time.time()
    events = [
        {
            "event": "pageview",
            "userId": "450450",
            "source": "WEB",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 900 + i)),
            "context": {"url": f"https://shop.example/step/{i}"},
        }
        for i in range(450)
    ]
    stored = await query(
        site,
        "mutation($e: [TrackInput!]!) { trackBatch(events: $e) { accepted } }",
        e=events,
    )
    assert stored["trackBatch"]["accepted"] == 450
    await tab.page.goto(f"{site.url}/#/user/450450")
    await tab.page.locator(f"{SESSION_ROW} button").first.click()
    items = tab.page.locator(EVENT_ITEM)
    # Each page is a request and 200 rendered rows: generous waits for a loaded machine.
    await expect(items).to_have_count(200, timeout=PAGE_LOADED_WITHIN_MS)
    more = tab.page.locator("[data-testid=more-events]")
    await expect(more).to_contain_text("200 of 450 shown")
    await more.click()
    await expect(items).to_have_count(400, timeout=PAGE_LOADED_WITHIN_MS)
    await more.click()
    await expect(items).to_have_count(450, timeout=PAGE_LOADED_WITHIN_MS)
    await expect(more).to_be_hidden()
    paths = await items.locator(".detail").all_inner_texts()
    assert paths == [f"/step/{i}" for i in range(450)]
    tab.clean()
