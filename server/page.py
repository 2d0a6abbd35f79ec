"""The reference Users & Sessions page: plain HTML, CSS and JavaScript modules from web/page.

The page is the project's own code (no framework, no build step, no third-party code), so a
machine without Node serves all of it. It talks to the public GraphQL API at /graphql only.
`GET /` answers index.html under a strict Content-Security-Policy (scripts and styles from
this origin only, nothing inline, no framing); `GET /page/<file>` answers the page's files,
each typed explicitly (JavaScript as text/javascript: every answer carries nosniff),
gzipped when the browser accepts it, and revalidated by ETag so an edited file is seen at
once. Files are held in memory and read again when they change on disk.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PAGE_DIR = Path(__file__).resolve().parents[1] / "web" / "page"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page needs its own scripts, styles and same-origin fetches, nothing else.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class PageFile:
    """One file of the page, held in memory plain and gzipped."""

    body: bytes
    gzipped: bytes
    content_type: str
    etag: str

    @classmethod
    def read(cls, path: Path) -> PageFile:
        """The file at `path`, typed by its suffix."""
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:20]
        gzipped = gzip.compress(body, compresslevel=9, mtime=0)
        return cls(body, gzipped, CONTENT_TYPES[path.suffix], f'"{digest}"')

    def answer(self, request: Request, headers: dict[str, str] | None = None) -> Response:
        """The file for this request: 304 when the browser holds it, gzipped when accepted."""
        common = {"ETag": self.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        common |= headers or {}
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=common)
        if "gzip" in request.headers.get("accept-encoding", ""):
            common["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.content_type, headers=common)
        return Response(self.body, media_type=self.content_type, headers=common)


# A file name of the page: no folders, no dots but the suffix's (nothing to traverse).
FILE_NAME = re.compile(r"[A-Za-z0-9_-]+\.(html|js|css|svg)")
_read: dict[str, tuple[int, PageFile]] = {}


def page_file(name: str, directory: Path = PAGE_DIR) -> PageFile | None:
    """The page's file `name`, or None; read again when it changed on disk."""
    if not FILE_NAME.fullmatch(name):
        return None
    path = directory / name
    try:
        changed = path.stat().st_mtime_ns
    except OSError:
        return None
    held = _read.get(name)
    if held is None or held[0] != changed:
        held = (changed, PageFile.read(path))
        _read[name] = held
    return held[1]


async def index(request: Request) -> Response:
    """The page itself, under its strict policy."""
    page = page_file("index.html")
    if page is None:
        return Response(f"the page's files are missing from {PAGE_DIR}", 404)
    policy = {"Content-Security-Policy": PAGE_POLICY, "X-Frame-Options": "DENY"}
    return page.answer(request, policy)


async def asset(request: Request) -> Response:
    """One of the page's scripts or style sheets."""
    found = page_file(request.path_params["name"])
    if found is None or request.path_params["name"] == "index.html":
        return Response("not found", status_code=404, media_type="text/plain")
    return found.answer(request)


routes = [
    Route("/", index, methods=["GET"]),
    Route("/page/{name:str}", asset, methods=["GET"]),
]
