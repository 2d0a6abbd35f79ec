"""The graphql-ws npm client as a live event subscriber process (tests/clients/graphql_ws)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.node_packages import install
from tests.server.live_clients import WAIT_SECONDS, ws_url

FOLDER = Path(__file__).parent / "graphql_ws"
PINNED = ("graphql-ws", "ws", "graphql")


def node_for_graphql_ws() -> str:
    """node, once the pinned packages are installed (or the test is skipped, saying why)."""
    return install(FOLDER, *PINNED, what="the graphql-ws client tests")


class NodeSubscriber:
    """`node subscribe.mjs`: exits once it has seen `count` events with a numeric `n`."""

    def __init__(self, node: str, base_url: str, count: int, live_filter: Any = None):
        self.arguments = [node, str(FOLDER / "subscribe.mjs"), ws_url(base_url), str(count)]
        if live_filter is not None:
            self.arguments.append(json.dumps(live_filter))
        self.messages: list[dict[str, Any]] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Task[None] | None = None

    async def start(self) -> NodeSubscriber:
        self.process = await asyncio.create_subprocess_exec(
            *self.arguments,
            cwd=FOLDER,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), WAIT_SECONDS)
        assert line.decode().strip() == "connected", line
        self._reading = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            if line.strip():
                self.messages.append(json.loads(line))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [m["event"] for m in self.messages if m["event"] is not None]

    def numbers(self) -> set[Any]:
        return {e["properties"].get("n") for e in self.events}

    async def finished(self) -> list[dict[str, Any]]:
        """Its messages, once it has exited 0."""
        assert self.process is not None and self._reading is not None
        await asyncio.wait_for(self._reading, WAIT_SECONDS)
        code = await asyncio.wait_for(self.process.wait(), WAIT_SECONDS)
        assert self.process.stderr is not None
        assert code == 0, (await self.process.stderr.read()).decode()
        return self.messages

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
