"""JSON bodies in and out for the Heap and Segment routes: bounded reading, gzip, error answers.

Both APIs answer every failure with a JSON object carrying `code` and `message` (the Segment
and RudderStack SDKs read exactly those two keys from a non-2xx answer). Client mistakes are
4xx, which the SDKs do not retry; a database that cannot be reached (models.db raises
`Unavailable` for every outage) is 503 with `Retry-After`, which they do retry. Any other
failure is a bug: logged, and answered 500.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from services.errors import Problem, Unavailable, UsertrailError

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

# Request bodies are read by msgspec: as fast as orjson, and exact, where orjson reads an
# integer past 64 bits as a float without a word. What it refuses raises one of JSON_REFUSED.
_JSON = msgspec.json.Decoder()
JSON_REFUSED = (msgspec.DecodeError, RecursionError, UnicodeError)


def parse_json(body: bytes | str) -> Any:
    """The values of a JSON text (strict: no NaN, no lone surrogates); raises JSON_REFUSED."""
    return _JSON.decode(body)


class JSONBody(Response):
    """A JSON response rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class HttpProblem(Exception):
    """A request refused as a whole: answered with `status` and a JSON error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = {key: value for key, value in extra.items() if value is not None}

    def response(self) -> Response:
        body = {"success": False, "code": self.code, "message": self.message, **self.extra}
        return JSONBody(body, status_code=self.status, headers=self.headers)


def problem_list(
    problems: Iterable[Problem], rename: Callable[[Problem], str | None]
) -> list[dict[str, Any]]:
    """Per-item problems as JSON objects; `rename` gives each field its name in the caller's API."""
    return [
        {"index": p.index, "field": rename(p), "code": p.code, "message": p.message}
        for p in problems
    ]


def refused_items(errors: list[dict[str, Any]], **counts: int) -> HttpProblem:
    """HTTP 400 for a request some of whose items were refused; the valid ones are stored."""
    first = errors[0]
    more = f" ({len(errors) - 1} more in errors)" if len(errors) > 1 else ""
    where = f"{first['field']}: " if first["field"] else ""
    return HttpProblem(
        400,
        first["code"],
        f"{where}{first['message']}{more}",
        field=first["field"],
        index=first["index"],
        errors=errors,
        **counts,
    )


async def read_json(request: Request, *, limit: int) -> Any:
    """The request's JSON body, gunzipped if so encoded; at most `limit` bytes before and after."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise HttpProblem(
            415,
            "UNSUPPORTED_ENCODING",
            f"Content-Encoding {encoding!r:.40} is not supported; send identity or gzip",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            raise _too_large(limit)
    body = _gunzip(bytes(raw), limit) if encoding in ("gzip", "x-gzip") else bytes(raw)
    try:
        return parse_json(body)
    except JSON_REFUSED as error:
        raise HttpProblem(400, "INVALID_JSON", f"the body is not valid JSON: {error}") from None


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate gzip members without ever holding more than `limit` + 1 inflated bytes."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        try:
            # max_length stays >= 1 here (0 would mean "no limit").
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as error:
            raise HttpProblem(400, "INVALID_GZIP", f"the gzip body is corrupt: {error}") from None
        if len(out) > limit:
            raise _too_large(limit, inflated=True)
        if not inflater.eof:
            raise HttpProblem(400, "INVALID_GZIP", "the gzip body is truncated")
        data = inflater.unused_data  # a further gzip member, if any
    return bytes(out)


def _too_large(limit: int, *, inflated: bool = False) -> HttpProblem:
    what = "inflated body" if inflated else "body"
    return HttpProblem(
        400, "PAYLOAD_TOO_LARGE", f"the {what} is larger than the limit of {limit} bytes"
    )


def json_api(endpoint: Endpoint) -> Endpoint:
    """Answer refusals, service errors and an unreachable database as JSON errors."""

    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except HttpProblem as problem:
            return problem.response()
        except Unavailable as error:  # the database is down, restarting or busy
            return unavailable(error).response()
        except UsertrailError as error:
            return HttpProblem(400, error.code, error.message, field=error.field).response()
        except Exception:  # a bug: logged, answered as JSON 500 so that SDKs retry it
            log.exception("ingestion failed unexpectedly")
            return HttpProblem(500, "INTERNAL", "internal error; retry later").response()

    guarded.__name__ = endpoint.__name__
    guarded.__doc__ = endpoint.__doc__
    return guarded


def unavailable(error: Unavailable) -> HttpProblem:
    """HTTP 503 with `Retry-After`: nothing was acknowledged, the same request may be retried."""
    return HttpProblem(
        503,
        error.code,
        error.message,
        headers={"Retry-After": str(error.retry_after)},
        retryAfter=error.retry_after,
    )
