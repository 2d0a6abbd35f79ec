"""GraphQL over HTTP: graphql-http's audit suite (npm `graphql-http`, `auditServer`) against a
real server, outside dev mode (with an API key) and in dev mode.

The audit's pinned packages (tests/audit/package.json and its lock) are installed on first
run into tests/audit/node_modules, which git ignores. Without node or npm, or when npm cannot
install them, the test is skipped and says why; with the CI environment variable set it fails
instead, so that CI never passes without auditing.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from services import environments, keys
from tests.conftest import start_server
from tests.node_packages import install

AUDIT = Path(__file__).parents[1] / "audit"
# Audits Strawberry cannot be made to pass, by id, with the reason. None today: the server
# meets every MUST and every SHOULD of graphql-http 1.23.1.
UNFIXABLE: dict[str, str] = {}


async def _audit(node: str, url: str, key: str | None) -> tuple[dict[str, int], list[Any]]:
    env = {**os.environ, **({"USERTRAIL_AUDIT_KEY": key} if key else {})}
    process = await asyncio.create_subprocess_exec(
        node,
        str(AUDIT / "audit.mjs"),
        url,
        cwd=AUDIT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    lines = out.decode().strip().splitlines()
    if len(lines) < 2:
        pytest.fail(f"the audit printed no result (exit {process.returncode}): {err.decode()}")
    return json.loads(lines[-1]), json.loads(lines[-2])


@pytest.mark.parametrize("dev", [False, True], ids=["with an API key", "dev mode"])
async def test_graphql_http_audit(database_url: str, dev: bool) -> None:
    node = await asyncio.to_thread(install, AUDIT, "graphql-http", what="the graphql-http audit")
    # The audit's operations introspect (`__type`): outside dev mode that needs the switch
    # (and a read key, which it has).
    running, server, task = await start_server(database_url, dev=dev, introspection=True)
    try:
        key = None
        if not dev:
            await environments.ensure(running.db, name="audit")
            _, key = await keys.create(running.db, environment="audit", scope="read")
        counts, results = await _audit(node, f"{running.url}/graphql", key)
    finally:
        server.should_exit = True
        await task
    print(f"graphql-http audit ({'dev mode' if dev else 'with an API key'}): {counts}")
    failures = [r for r in results if r["status"] == "error"]
    fixable = [r for r in results if r["status"] == "warn" and r["id"] not in UNFIXABLE]
    assert not failures, f"MUST failures: {failures}"
    assert not fixable, f"SHOULD warnings: {fixable}"
    assert counts["ok"] + len(UNFIXABLE) >= len(results) - counts["notice"]
