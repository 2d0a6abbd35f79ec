"""GraphiQL at /graphql: the project's own page over the assets `make assets` builds.

Nothing on the page comes from outside the app (no CDN): the script, styles and Monaco's
workers are the built files server/assets.py serves. The page holds no inline script or
style; its settings (endpoint, worker files, the default tabs, the headers hint) travel in a
JSON script tag that web/graphiql/main.js reads, so its Content-Security-Policy forbids
inline code. Without a build, the page says how to make one.
"""

from __future__ import annotations

import html
import json
import re

from starlette.responses import HTMLResponse

from server.assets import Assets

# What GraphiQL needs and no more: its own script, module chunks and workers; its styles,
# with the <style> elements Monaco adds for themes and decorations ('unsafe-inline': styles
# cannot run code); fonts and icons GraphiQL's CSS inlines as data: URLs. Subscriptions connect
# to ws(s)://<the page's host>/graphql: policy_for adds that host to connect-src.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self' data:",
        "img-src 'self' data:",
        "worker-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
# The page is regenerated per request (dev mode or not, a new build): never cached.
PAGE_HEADERS = {"content-security-policy": CONTENT_SECURITY_POLICY, "cache-control": "no-store"}
# A Host header that may go into the policy: a name, IPv4 or [IPv6] address, optional port.
# Anything else (spaces, `;`, quotes) could add sources or directives: such a page keeps 'self'.
PLAIN_HOST = re.compile(
    r"(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
)
# Monaco asks web/graphiql/main.js for a worker by label: label -> the worker's entry.
WORKER_LABELS = {
    "editor": "editor.worker.js",
    "json": "json.worker.js",
    "graphql": "graphql.worker.js",
}
ENTRIES = ("graphiql.js", "graphiql.css", *WORKER_LABELS.values())

DEFAULT_QUERY = """\
# The people seen in the last 30 days, most recent first,
# with their session count and 3 latest sessions.
# `make serve` loads demo data: this shows demo users.
#
# Run: Ctrl-Enter or the ▶ button. Complete: Ctrl-Space.
# Every type and field: the Docs (book icon, left).
query RecentUsers {
  users(first: 10, filter: {seen: {lastDays: 30}}) {
    totalCount
    edges {
      node {
        displayName
        lastSeen
        sessionCount
        sessions(first: 3) {
          edges {
            node {
              startTime
              browser
              eventCount
            }
          }
        }
      }
    }
  }
}
"""
# The second default tab: a subscription (web/graphiql/main.js runs it over WebSocket).
LIVE_QUERY = """\
# Events as they are stored, live: run it (▶ again stops),
# then send events (README "Sending events"); each one
# appears on the right. Outside dev mode, this tab too
# needs a read key in its Headers.
subscription LiveEvents {
  liveEvents {
    event {
      name
      time
      source
      user {
        userId
        displayName
      }
    }
    dropped
  }
}
"""
DEV_HEADERS = """\
// Dev mode: no API key is needed (requests act in
// the `default` environment).
{}
"""
KEY_HEADERS = """\
// Every request needs an API key: put one of scope
// read in place of <your read key> (made by
// `usertrail key create --env NAME --scope read`).
{
  "Authorization": "Bearer <your read key>"
}
"""

PAGE = """\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Usertrail GraphiQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="{css}">
    <script type="application/json" id="graphiql-config">{config}</script>
    <script type="module" src="{js}"></script>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
  </body>
</html>
"""
NOT_BUILT = """\
<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Usertrail GraphiQL: assets not built</title>
  </head>
  <body>
    <h1>GraphiQL's assets are not built</h1>
    <p>This server answers GraphQL at <code>{endpoint}</code> (POST, or GET with a
    <code>query</code> parameter), but the GraphiQL page needs its browser files, built from
    npm packages into <code>server/static/build/</code>.</p>
    <p>To build them, run <code>make assets</code> (it needs Node 20 or newer and npm), then
    reload this page: no restart is needed.</p>
    <p>Without them, any GraphQL client works, e.g.
    <code>curl -H 'Content-Type: application/json' -d '{{"query": "{{ users {{ totalCount }} }}"}}'
    http://HOST:PORT{endpoint}</code>.</p>
  </body>
</html>
"""


def page_config(urls: dict[str, str], *, endpoint: str, dev: bool) -> dict[str, object]:
    """What web/graphiql/main.js reads: endpoint, workers, the default tabs and headers."""
    return {
        "endpoint": endpoint,
        "workers": {label: urls[entry] for label, entry in WORKER_LABELS.items()},
        "defaultQuery": DEFAULT_QUERY,
        "liveQuery": LIVE_QUERY,
        "defaultHeaders": DEV_HEADERS if dev else KEY_HEADERS,
    }


def script_json(value: object) -> str:
    """JSON safe inside a <script> element (no `</script>`, no `<!--`)."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def policy_for(host: str | None) -> str:
    """The page's policy, whose connect-src names the page's own host as ws: and wss: (CSP
    Level 3 counts them as 'self', but older browsers, Safari's among them, do not)."""
    if host is None or not PLAIN_HOST.fullmatch(host):
        return CONTENT_SECURITY_POLICY
    own = f"connect-src 'self' ws://{host} wss://{host}"
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", own)


def graphiql_page(
    assets: Assets, *, endpoint: str, dev: bool, host: str | None = None
) -> HTMLResponse:
    """The GraphiQL page for `endpoint` served at `host` (the request's Host header), or the
    page saying how to build its assets."""
    headers = PAGE_HEADERS | {"content-security-policy": policy_for(host)}
    urls = assets.urls(*ENTRIES)
    if urls is None:
        return HTMLResponse(NOT_BUILT.format(endpoint=html.escape(endpoint)), headers=headers)
    config = page_config(urls, endpoint=endpoint, dev=dev)
    body = PAGE.format(
        css=html.escape(urls["graphiql.css"]),
        js=html.escape(urls["graphiql.js"]),
        config=script_json(config),
    )
    return HTMLResponse(body, headers=headers)
