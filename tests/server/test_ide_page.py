"""The GraphiQL page and the built files behind it, on real servers over a stand-in build.

The stand-in build (a manifest and small files written by the test) stands for what `make
assets` writes, so these tests need no node; tests/browser runs the real build in Chromium.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from graphql import parse, validate

from graph.schema import schema
from server.assets import IMMUTABLE, MANIFEST, accepted_encodings
from server.ide import DEFAULT_QUERY, DEV_HEADERS, KEY_HEADERS, LIVE_QUERY
from tests.conftest import RunningServer, start_server

HTML = {"accept": "text/html"}
SCRIPT = b"export const usertrail = 'GraphiQL stand-in';\n" * 40
FILES = {
    "graphiql.js": "graphiql-TEST0001.js",
    "graphiql.css": "graphiql-TEST0002.css",
    "editor.worker.js": "workers/editor.worker-TEST0003.js",
    "json.worker.js": "workers/json.worker-TEST0004.js",
    "graphql.worker.js": "workers/graphql.worker-TEST0005.js",
}


def write_build(directory: Path, files: dict[str, str] = FILES) -> Path:
    """A stand-in for `make assets`' output: each file with a .gz and a .br twin."""
    for name in files.values():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(SCRIPT)
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(SCRIPT))
        path.with_name(path.name + ".br").write_bytes(b"brotli stand-in")
    (directory / MANIFEST).write_text(json.dumps(files))
    return directory


class PageParts(HTMLParser):
    """The <script> and <link> elements of a page, and the text inside each <script>."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.script_text: list[str] = []
        self.inline_handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inline_handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self.script_text.append("")
            self._in_script = True
        elif tag == "link":
            self.links.append(dict(attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text[-1] += data


def parts_of(html: str) -> PageParts:
    parts = PageParts()
    parts.feed(html)
    return parts


@pytest.fixture
async def built_server(database_url: str, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A dev server over a stand-in build, beside a file it must not serve (secret.txt)."""
    assets = write_build(tmp_path / "build")
    (tmp_path / "secret.txt").write_text("not an asset")
    running, server, task = await start_server(database_url, dev=True, assets_dir=str(assets))
    yield running
    server.should_exit = True
    await task


def test_the_default_queries_are_valid_against_the_schema() -> None:
    for query in (DEFAULT_QUERY, LIVE_QUERY):
        assert validate(schema._schema, parse(query)) == []
        assert query.lstrip().startswith("#")  # it says what it shows
    assert "subscription LiveEvents" in LIVE_QUERY


async def test_the_page_has_no_inline_script_and_loads_only_the_apps_files(
    built_server: RunningServer,
) -> None:
    async with httpx.AsyncClient(base_url=built_server.url) as client:
        page = await client.get("/graphql", headers=HTML)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'"
    assert policy["worker-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    host = built_server.url.removeprefix("http://")  # subscriptions: ws(s) to the own host
    assert policy["connect-src"] == f"'self' ws://{host} wss://{host}"
    assert policy["object-src"] == "'none'"
    parts = parts_of(page.text)
    assert not parts.inline_handlers
    [config_tag, module] = sorted(parts.scripts, key=lambda s: str(s.get("type")))
    assert config_tag == {"type": "application/json", "id": "graphiql-config"}
    assert module == {"type": "module", "src": "/static/graphiql-TEST0001.js"}
    stylesheets = [link["href"] for link in parts.links if link.get("rel") == "stylesheet"]
    assert stylesheets == ["/static/graphiql-TEST0002.css"]
    config = json.loads(next(text for text in parts.script_text if text.strip()))
    assert config == {
        "endpoint": "/graphql",
        "workers": {
            "editor": "/static/workers/editor.worker-TEST0003.js",
            "json": "/static/workers/json.worker-TEST0004.js",
            "graphql": "/static/workers/graphql.worker-TEST0005.js",
        },
        "defaultQuery": DEFAULT_QUERY,
        "liveQuery": LIVE_QUERY,
        "defaultHeaders": DEV_HEADERS,
    }


async def test_outside_dev_mode_the_headers_editor_asks_for_a_read_key(
    database_url: str, tmp_path: Path
) -> None:
    assets = write_build(tmp_path / "build")
    running, server, task = await start_server(
        database_url, dev=False, introspection=True, assets_dir=str(assets)
    )
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            page = await client.get("/graphql", headers=HTML)  # no key
        assert page.status_code == 200
        [text] = [text for text in parts_of(page.text).script_text if text.strip()]
        headers = json.loads(text)["defaultHeaders"]
        assert headers == KEY_HEADERS and '"Authorization": "Bearer <your read key>"' in headers
        assert "<" not in text  # no markup inside the script element, even from the hint
        async with httpx.AsyncClient(base_url=running.url) as client:
            named = await client.get("/graphql", headers=HTML | {"host": "usertrail.example:8443"})
            # A Host that would add a source or a directive leaves connect-src at 'self'.
            hostile = await client.get(
                "/graphql", headers=HTML | {"host": "a.example; script-src *"}
            )
        connect = [
            d.strip() for d in named.headers["content-security-policy"].split(";") if "connect" in d
        ]
        assert connect == [
            "connect-src 'self' ws://usertrail.example:8443 wss://usertrail.example:8443"
        ]
        policy = hostile.headers["content-security-policy"]
        assert "connect-src 'self';" in policy and "example" not in policy
        assert policy.count("script-src") == 1
    finally:
        server.should_exit = True
        await task


async def test_built_files_are_served_compressed_with_immutable_cache_headers(
    built_server: RunningServer,
) -> None:
    url = "/static/graphiql-TEST0001.js"
    async with httpx.AsyncClient(base_url=built_server.url) as client:
        brotli = await client.get(url, headers={"accept-encoding": "gzip, br"})
        assert brotli.headers["content-encoding"] == "br"
        assert brotli.content == b"brotli stand-in"  # httpx without brotli leaves it encoded
        gzipped = await client.get(url, headers={"accept-encoding": "gzip, br;q=0"})
        assert gzipped.headers["content-encoding"] == "gzip" and gzipped.content == SCRIPT
        plain = await client.get(url, headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == SCRIPT
        for answer in (brotli, gzipped, plain):
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == IMMUTABLE
            assert answer.headers["vary"].lower() == "accept-encoding"
            assert "javascript" in answer.headers["content-type"]
        head = await client.head(url, headers={"accept-encoding": "identity"})
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(SCRIPT)
        worker = await client.get("/static/workers/json.worker-TEST0004.js")
        assert worker.status_code == 200
        for missing in (
            f"/static/{MANIFEST}",
            "/static/graphiql-TEST0001.js.br",
            "/static/graphiql-TEST9999.js",
            "/static/..%2Fsecret.txt",
            "/static/workers/..%2F..%2Fsecret.txt",
            "/static/%2e%2e/secret.txt",
        ):
            refused = await client.get(missing)
            assert refused.status_code == 404, missing
            assert refused.headers["content-type"].startswith("application/json")


def test_accept_encoding_refusals_are_read() -> None:
    assert accepted_encodings("gzip, deflate, br, zstd") == {"gzip", "deflate", "br", "zstd"}
    assert accepted_encodings("br;q=0, gzip;q=0.5") == {"gzip"}
    assert accepted_encodings("BR; q=0.000, gzip;q=bad") == {"gzip"}
    assert accepted_encodings("") == set()


async def test_without_a_build_the_page_says_how_to_make_one(
    database_url: str, tmp_path: Path
) -> None:
    running, server, task = await start_server(database_url, assets_dir=str(tmp_path))
    try:
        async with httpx.AsyncClient(base_url=running.url) as client:
            page = await client.get("/graphql", headers=HTML)
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert "assets are not built" in page.text and "<code>make assets</code>" in page.text
            assert "Node 20" in page.text and "npm" in page.text
            assert not parts_of(page.text).scripts
            # A build made while the server runs is picked up without a restart.
            write_build(tmp_path)
            rebuilt = await client.get("/graphql", headers=HTML)
            assert 'src="/static/graphiql-TEST0001.js"' in rebuilt.text
            served = await client.get("/static/graphiql-TEST0001.js")
            assert served.status_code == 200
            # The API itself never needed the build.
            answer = await client.post("/graphql", json={"query": "{ __typename }"})
            assert answer.json() == {"data": {"__typename": "Query"}}
    finally:
        server.should_exit = True
        await task
