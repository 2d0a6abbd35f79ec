"""JSON bodies in and out for the Heap and Segment routes: bounded reading, gzip, error answers.

Both APIs answer every failure with a JSON object carrying `code` and `message` (the Segment
and RudderStack SDKs read exactly those two keys from a non-2xx answer). Client mistakes are
4xx, which the SDKs do not retry; a database that cannot be reached (models.db raises
`Unavailable` for every outage) is 503 with `Retry-After`, which they do retry. Any other
failure is a bug: logged, and answered 500. A client that leaves before its body is read is
no failure: logged at info, without a traceback.

Gzip bodies are inflated in time linear in their size, to at most the route's limit, from at
most MAX_GZIP_MEMBERS members, before the route looks at what they say (`gunzip`).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from services.errors import Problem, Unavailable, UsertrailError

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

# Request bodies are read by msgspec: as fast as orjson, and exact, where orjson reads an
# integer past 64 bits as a float without a word. What it refuses raises one of JSON_REFUSED.
_JSON = msgspec.json.Decoder()
JSON_REFUSED = (msgspec.DecodeError, RecursionError, UnicodeError)
# Input handed to zlib at a time, and the most gzip members a body may hold (SDKs send one;
# RFC 1952 allows several, as `cat a.gz b.gz` makes).
GZIP_SLICE = 16 * 1024
MAX_GZIP_MEMBERS = 1000
# The status recorded (metrics, access log) for a request whose client left before its body
# was read; nginx's convention. Nobody receives it.
CLIENT_CLOSED = 499


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


def answer_items(
    problems: Iterable[Problem], *, batch: str | None, accepted: int, duplicates: int
) -> Response:
    """200 with the counts, or HTTP 400 (raised) naming each refused item; the valid ones are
    stored either way.

    Problems carry the caller's positions and field names (services.batch_items.Placed). In a
    batch request (its array named `batch`) each is said once, in item order, its field inside
    its item (`events[3].timestamp`); a request of one item names the field alone.
    """
    unique = {(p.index, p.code, p.field): p for p in problems}.values()  # a link and its event
    if not unique:
        return JSONBody({"success": True, "accepted": accepted, "duplicates": duplicates})
    errors: list[dict[str, Any]] = [
        {
            "index": p.index if batch else None,
            "field": _in_item(
                p.field, f"{batch}[{p.index}]" if batch and p.index is not None else None
            ),
            "code": p.code,
            "message": p.message,
        }
        for p in sorted(unique, key=lambda p: p.index or 0)
    ]
    first = errors[0]
    more = f" ({len(errors) - 1} more in errors)" if len(errors) > 1 else ""
    where = f"{first['field']}: " if first["field"] else ""
    raise HttpProblem(
        400,
        first["code"],
        f"{where}{first['message']}{more}",
        field=first["field"],
        index=first["index"],
        errors=errors,
        accepted=accepted,
        duplicates=duplicates,
    )


def _in_item(field: str | None, item: str | None) -> str | None:
    if item is None:
        return field
    return f"{item}.{field}" if field else item


async def read_json(request: Request, *, limit: int) -> Any:
    """The request's JSON body, gunzipped if so encoded; at most `limit` bytes before and after."""
    return decode_json_body(await read_body(request, limit=limit))


async def read_body(request: Request, *, limit: int) -> bytes:
    """The request's body, gunzipped if so encoded; at most `limit` bytes before and after.

    A client that goes away before sending the whole body raises starlette's ClientDisconnect
    (`json_api` logs it at info)."""
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
    return gunzip(bytes(raw), limit) if encoding in ("gzip", "x-gzip") else bytes(raw)


def decode_json_body(body: bytes) -> Any:
    """The values of a JSON request body; HTTP 400 INVALID_JSON when it is not JSON."""
    try:
        return parse_json(body)
    except JSON_REFUSED as error:
        raise HttpProblem(400, "INVALID_JSON", f"the body is not valid JSON: {error}") from None


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate gzip members, in time linear in `data`, holding at most `limit` + 1 inflated bytes.

    The input goes to zlib in slices of GZIP_SLICE bytes: at the end of a member zlib copies
    what it was given past that member (`unused_data`), so handing it the whole rest of the
    body made every member cost the size of the body (quadratic: 8 MB of empty 20-byte
    members took 37 s). Members are counted too: past MAX_GZIP_MEMBERS the body is refused,
    since each one costs a fresh inflater however little it holds.
    """
    out = bytearray()
    view = memoryview(data)
    position = members = 0
    while position < len(view):
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise HttpProblem(
                400,
                "INVALID_GZIP",
                f"the gzip body has more than {MAX_GZIP_MEMBERS} members; "
                "compress the body as one gzip stream",
            )
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        while not inflater.eof:
            if position >= len(view):
                raise HttpProblem(400, "INVALID_GZIP", "the gzip body is truncated")
            piece = view[position : position + GZIP_SLICE]
            try:
                # max_length stays >= 1 here (0 would mean "no limit").
                out += inflater.decompress(piece, limit + 1 - len(out))
            except zlib.error as error:
                raise HttpProblem(
                    400, "INVALID_GZIP", f"the gzip body is corrupt: {error}"
                ) from None
            if len(out) > limit:
                raise _too_large(limit, inflated=True)
            # Below the output bound zlib consumes the whole slice, up to the member's end.
            position += len(piece) - len(inflater.unused_data)
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
        except ClientDisconnect:  # nothing to answer, nothing was stored: not a failure of ours
            log.info(
                "the client closed the connection before sending the whole body of %s %s",
                request.method,
                request.url.path,
            )
            return Response(status_code=CLIENT_CLOSED)
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
