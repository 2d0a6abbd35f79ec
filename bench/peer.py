"""The peer: PostGraphile 4, run by Node, over the same PostgreSQL database as Usertrail.

Installed once into bench/.node (`npm install postgraphile@4`; version 5 needs Node 22).
Our schema has no foreign keys across users (SPEC §9), so PostGraphile is told the relations
with its `@foreignKey` smart comments: sessions → users, events → sessions. It runs with
`--dynamic-json` (JSON as objects, as Usertrail returns them) and without GraphiQL or query
logging. Its nested query is ours with its names: users of the environment newest first,
their 5 newest sessions, each with its first 10 events.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.databases import asyncpg_dsn
from bench.server import ServedProcess

NODE_DIR = Path(__file__).parent / ".node"
BIN = NODE_DIR / "node_modules" / ".bin" / "postgraphile"
SMART_COMMENTS = {
    "sessions": "@foreignKey (environment_id, user_id) references users (environment_id, user_id)",
    "events": "@foreignKey (environment_id, user_id, session_id) "
    "references sessions (environment_id, user_id, id)",
}


def install(timeout: float = 600) -> str | None:
    """None when PostGraphile 4 is installed (installing it if needed), else why it is not."""
    if BIN.exists():
        return None
    if shutil.which("npm") is None or shutil.which("node") is None:
        return "node/npm not found on PATH"
    NODE_DIR.mkdir(exist_ok=True)
    try:
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "postgraphile@4"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"npm install postgraphile@4 took longer than {timeout:.0f} s"
    if done.returncode != 0 or not BIN.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"npm install postgraphile@4 failed: {' / '.join(tail)}"
    return None


async def add_smart_comments(url: str) -> None:
    """Declare the per-user relations to PostGraphile (comments only; no constraint)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for table, comment in SMART_COMMENTS.items():
            await conn.execute(f"COMMENT ON TABLE {table} IS $${comment}$$")
    finally:
        await conn.close()


class PostGraphile(ServedProcess):
    """`async with PostGraphile(url, log) as peer:` serves `peer.url` until the block ends."""

    name = "postgraphile"

    def __init__(self, database_url: str, log_path: Path, *, start_timeout: float = 120):
        super().__init__(database_url, log_path, start_timeout=start_timeout)

    def command(self) -> list[str]:
        return [
            "node",
            str(BIN.resolve()),
            "--connection",
            asyncpg_dsn(self.database_url),
            "--schema",
            "public",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dynamic-json",
            "--disable-graphiql",
            "--disable-query-log",
            "--disable-default-mutations",
        ]

    async def ready(self, client: httpx.AsyncClient) -> bool:
        answer = await client.post("/graphql", json={"query": "{ __typename }"})
        return answer.status_code == 200


async def _field_returning(client: httpx.AsyncClient, type_name: str, returned: str) -> str:
    query = (
        "query($name: String!) { __type(name: $name) "
        "{ fields { name type { name ofType { name } } } } }"
    )
    answer = await client.post("/graphql", json={"query": query, "variables": {"name": type_name}})
    for found in answer.json()["data"]["__type"]["fields"]:
        kind = found["type"]
        if returned in (kind["name"], (kind["ofType"] or {}).get("name")):
            return str(found["name"])
    raise RuntimeError(f"PostGraphile's {type_name} has no field returning {returned}")


async def nested_query(client: httpx.AsyncClient) -> str:
    """The nested users → sessions → events query in PostGraphile's names."""
    sessions = await _field_returning(client, "User", "SessionsConnection")
    events = await _field_returning(client, "Session", "EventsConnection")
    return f"""query($first: Int!, $environment: Int!) {{
  allUsers(first: $first, orderBy: LAST_SEEN_US_DESC, condition: {{environmentId: $environment}}) {{
    nodes {{ userId identity lastSeenUs
      {sessions}(first: 5, orderBy: START_US_DESC) {{ nodes {{ startUs
        {events}(first: 10, orderBy: TIME_US_ASC) {{ nodes {{ type timeUs properties }} }} }} }}
    }} }} }}"""


def nested_returned(data: dict[str, Any]) -> str:
    """What PostGraphile's nested query returned, counted as for Usertrail's."""
    users = data["allUsers"]["nodes"]
    sessions = [
        s for u in users for s in next(v for k, v in u.items() if k.startswith("sess"))["nodes"]
    ]
    events = sum(
        len(next(v for k, v in s.items() if k.startswith("events"))["nodes"]) for s in sessions
    )
    return f"{len(users)} users, {len(sessions)} sessions, {events} events"
