"""Standard security headers on every answer, error answers and CORS preflights included.

- `X-Content-Type-Options: nosniff`: a browser runs or styles a body only as the type it is
  served as (a JSON answer holding user-sent text is never read as HTML or script).
- `Referrer-Policy: no-referrer`: links followed from GraphiQL or the page do not carry the
  server's URL to other sites.
- HTML answers may not be framed (clickjacking): `X-Frame-Options: DENY`, and a page that
  sets no `Content-Security-Policy` of its own gets DEFAULT_HTML_POLICY. A page that sets
  its own (GraphiQL's lists where its scripts come from) keeps it untouched.

A header the route already set is left as it is.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Restricts nothing a page needs to run (scripts, styles, fetches), so that it is safe for
# any HTML answer; pages with scripts of their own set a stricter policy themselves.
DEFAULT_HTML_POLICY = "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
EVERY_ANSWER = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
HTML_ANSWER = {"Content-Security-Policy": DEFAULT_HTML_POLICY, "X-Frame-Options": "DENY"}


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP answer that lacks them."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                added = dict(EVERY_ANSWER)
                if headers.get("content-type", "").lower().startswith("text/html"):
                    added |= HTML_ANSWER
                for name, value in added.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
