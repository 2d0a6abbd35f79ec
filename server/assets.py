"""The browser assets `make assets` builds (web/ bundled into server/static/build/), served here.

Every built file but manifest.json has a content hash in its name, so it is served with a
year-long immutable cache lifetime; the build writes a .br and a .gz beside each file and the
smallest one the browser accepts is sent, nothing is compressed per request. manifest.json
maps each entry (`graphiql.js`) to its file and is read again when a new build replaces it,
so `make assets` needs no server restart. Without a build, pages say how to make one.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from server.http_errors import JSONBody

BUILD_DIR = Path(__file__).parent / "static" / "build"
URL_PREFIX = "/static/"
MANIFEST = "manifest.json"
IMMUTABLE = "public, max-age=31536000, immutable"
# Content-Encoding -> the suffix of the file the build compressed that way, best first.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


@dataclass(slots=True)
class Assets:
    """The built files of one directory and the manifest naming their entries."""

    directory: Path = BUILD_DIR
    _manifest: dict[str, str] = field(default_factory=dict)
    _read_at: int | None = None

    def manifest(self) -> dict[str, str]:
        """Entry name -> file (relative to the directory); empty without a build."""
        try:
            changed = (self.directory / MANIFEST).stat().st_mtime_ns
        except OSError:
            self._manifest, self._read_at = {}, None
            return self._manifest
        if changed != self._read_at:
            try:
                self._manifest = json.loads((self.directory / MANIFEST).read_text())
            except (OSError, ValueError):  # half written by a build running now
                return {}
            self._read_at = changed
        return self._manifest

    def urls(self, *entries: str) -> dict[str, str] | None:
        """The URL of each entry, or None when the build lacks one of them."""
        manifest = self.manifest()
        if not all(entry in manifest for entry in entries):
            return None
        return {entry: URL_PREFIX + manifest[entry] for entry in entries}

    def file_for(self, name: str) -> Path | None:
        """The built file a URL names, or None (the manifest, a compressed twin, outside)."""
        if name == MANIFEST or name.endswith(tuple(suffix for _, suffix in ENCODINGS)):
            return None
        root = self.directory.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    async def serve(self, request: Request) -> Response:
        """GET /static/{name}: a built file, compressed as the browser accepts."""
        name = request.path_params["name"]
        path = self.file_for(name)
        if path is None:
            return JSONBody({"errors": [{"message": f"no built asset {name!r}"}]}, 404)
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type.endswith("javascript"):
            media_type += "; charset=utf-8"
        headers = {"cache-control": IMMUTABLE, "vary": "accept-encoding"}
        accepted = accepted_encodings(request.headers.get("accept-encoding", ""))
        for encoding, suffix in ENCODINGS:
            compressed = path.with_name(path.name + suffix)
            if encoding in accepted and compressed.is_file():
                headers["content-encoding"] = encoding
                return FileResponse(compressed, media_type=media_type, headers=headers)
        return FileResponse(path, media_type=media_type, headers=headers)

    def routes(self) -> list[Route]:
        """The route serving the built files."""
        return [Route(URL_PREFIX + "{name:path}", self.serve, methods=["GET", "HEAD"])]


def accepted_encodings(header: str) -> set[str]:
    """The content codings an Accept-Encoding header accepts (q=0 refuses one)."""
    accepted = set()
    for part in header.split(","):
        coding, *parameters = (item.strip() for item in part.split(";"))
        refused = any(_is_zero_quality(parameter) for parameter in parameters)
        if coding and not refused:
            accepted.add(coding.lower())
    return accepted


def _is_zero_quality(parameter: str) -> bool:
    name, _, value = parameter.partition("=")
    try:
        return name.strip().lower() == "q" and float(value) == 0
    except ValueError:
        return False
