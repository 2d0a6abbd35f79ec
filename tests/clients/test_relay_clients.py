"""Relay-style pagination as the clients frontend teams use do it (issue 16): relay-compiler 21
compiles `@connection` and `@refetchable` fragments against schema.graphql, and the queries it
writes page a real server both ways; Apollo Client 4's `relayStylePagination` pages the Users
list forward and back into one merged cache.

The pinned packages (tests/clients/relay/package.json and its lock) are installed on first run
into tests/clients/relay/node_modules, which git ignores. Without node or npm, or when npm
cannot install them, the tests are skipped and say why; with the CI environment variable set
they fail instead, so that CI never passes without these clients.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import RunningServer
from tests.node_packages import in_use, install
from tests.support import Api

RELAY = Path(__file__).parent / "relay"
PINNED = ("relay-compiler", "@apollo/client", "graphql")
GENERATED = RELAY / "src" / "__generated__"
NOW = datetime.now(UTC).replace(microsecond=0)


async def _run(*command: str, timeout: float = 180) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a command run in tests/clients/relay, without blocking
    the event loop the server runs in."""
    process = await asyncio.create_subprocess_exec(
        *command, cwd=RELAY, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def event(user: int, at: datetime) -> dict[str, Any]:
    return {"event": "pageview", "userId": str(user), "source": "WEB", "timestamp": at.isoformat()}


async def seed(api: Api) -> None:
    """Users 1..29, last seen a minute apart (pairs at the same instant: ties); user 1 has
    four sessions, the oldest of 12 events."""
    events = [event(u, NOW - timedelta(minutes=u // 2 + 1)) for u in range(1, 30)]
    oldest = NOW - timedelta(days=1)
    events += [event(1, oldest + timedelta(seconds=i)) for i in range(12)]
    events += [event(1, oldest + timedelta(hours=h)) for h in (3, 6)]
    assert (await api.track_batch(events))["errors"] == []


USERS = """query($after: String) { users(first: 100, after: $after) {
  pageInfo { hasNextPage endCursor } edges { node { id userId } } } }"""


async def every_user(api: Api) -> list[str]:
    found, after = [], None
    while True:
        users = (await api.gql(USERS, after=after))["users"]
        found += [edge["node"]["userId"] for edge in users["edges"]]
        if not users["pageInfo"]["hasNextPage"]:
            return found
        after = users["pageInfo"]["endCursor"]


def compile_artifacts(node: str) -> tuple[str, dict[str, str]]:
    """relay-compiler's output and the artifacts it wrote (by name), read while this process
    holds the folder: a concurrent run of the suite recompiles into the same place."""
    with in_use(RELAY):
        shutil.rmtree(GENERATED, ignore_errors=True)  # artifacts of this run only
        done = subprocess.run(
            [node, "node_modules/relay-compiler/cli.js"],
            cwd=RELAY,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, f"relay-compiler failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout, {
            path.name.removesuffix(".graphql.js"): path.read_text()
            for path in GENERATED.glob("*.graphql.js")
        }


def operation_text(artifacts: dict[str, str], name: str) -> str:
    """The query text relay-compiler wrote for operation `name`."""
    artifact = artifacts[name]
    found = re.search(r'"text": ("(?:[^"\\]|\\.)*")', artifact)
    assert found is not None, f"no query text in {name}.graphql.js"
    return str(json.loads(found.group(1)))


async def walk(api: Api, query: str, at: Any, size: int, **variables: Any) -> list[list[str]]:
    """Pages of ids: forward to the end with Relay's variables, then back to the start."""
    pages: list[list[str]] = []
    after = None
    while True:
        page = at(await api.gql(query, first=size, after=after, **variables))
        pages.append([edge["node"]["id"] for edge in page["edges"]])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    before = page["pageInfo"]["startCursor"]
    back = [pages[-1]]
    while before is not None:
        # As Relay's loadPrevious sends them: the forward variables null.
        page = at(
            await api.gql(query, first=None, after=None, last=size, before=before, **variables)
        )
        back.insert(0, [edge["node"]["id"] for edge in page["edges"]])
        before = page["pageInfo"]["startCursor"] if page["pageInfo"]["hasPreviousPage"] else None
    assert back == pages, "paging back did not retrace the pages forward"
    return pages


async def test_relay_compiler_compiles_connections_and_refetchable_fragments(
    api: Api, server: RunningServer
) -> None:
    node = await asyncio.to_thread(install, RELAY, *PINNED, what="the Relay client tests")
    out, artifacts = await asyncio.to_thread(compile_artifacts, node)
    print("relay-compiler:", re.sub(r"\x1b\[[0-9;]*m", "", out).strip().splitlines()[-3])
    for fragment in ("UsersPage_query", "UsersPage_user", "UsersPage_session"):
        artifact = artifacts[fragment]
        assert '"backward": {' in artifact and '"forward": {' in artifact, fragment
    assert "node(id: $id)" in operation_text(artifacts, "UsersPageCardRefetchQuery")
    # The queries relay-compiler wrote page the real server both ways.
    await seed(api)
    root = await walk(
        api, operation_text(artifacts, "UsersPagePaginationQuery"), lambda d: d["users"], 4
    )
    assert sum(len(page) for page in root) == 29
    user_id = (await api.gql('{ user(userId: "1") { id } }'))["user"]["id"]
    sessions = operation_text(artifacts, "UsersPageUserSessionsQuery")
    pages = await walk(api, sessions, lambda d: d["node"]["sessions"], 2, id=user_id)
    assert sum(len(page) for page in pages) == 4
    events = operation_text(artifacts, "UsersPageSessionEventsQuery")
    oldest = pages[-1][-1]
    pages = await walk(api, events, lambda d: d["node"]["events"], 5, id=oldest)
    assert [len(page) for page in pages] == [5, 5, 2]
    card = await api.gql(operation_text(artifacts, "UsersPageCardRefetchQuery"), id=user_id)
    assert card["node"]["sessionCount"] == 4


async def test_apollo_relay_style_pagination_merges_every_user_once_in_order(
    api: Api, server: RunningServer
) -> None:
    node = await asyncio.to_thread(install, RELAY, *PINNED, what="the Relay client tests")
    await seed(api)
    expected = await every_user(api)
    # The opening page starts after the 7th user, as a deep link would open it.
    opening = (await api.gql("{ users(first: 7) { pageInfo { endCursor } } }"))["users"]
    code, out, err = await _run(
        node,
        "apollo-pagination.mjs",
        f"{server.url}/graphql",
        "4",
        opening["pageInfo"]["endCursor"],
    )
    assert code == 0, f"the Apollo script failed:\n{out}\n{err}"
    result = json.loads(out.strip().splitlines()[-1])
    directions = [f["direction"] for f in result["fetches"]]
    print(f"Apollo relayStylePagination: {len(result['merged'])} users merged from {directions}")
    assert directions == ["opening"] + ["forward"] * 5 + ["backward"] * 2
    assert result["merged"] == expected, "the merged cache is not the list, once, in order"
    assert result["watched"] == expected, "the watching query did not see the merged list"
    info = result["pageInfo"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (False, False)
