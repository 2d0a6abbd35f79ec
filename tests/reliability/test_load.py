"""A small bounded load run (tests/reliability/load_run.py) answers every request without error.

No timing is asserted: the figures depend on the machine. The full run is
`.venv/bin/python -m tests.reliability.load_run` (2,000 requests, 16 clients).
"""

from __future__ import annotations

from tests.reliability.conftest import Spawn
from tests.reliability.load_run import run_load


async def test_a_small_load_run_has_no_errors(any_url: str, spawn: Spawn) -> None:
    server = await spawn(any_url, workers=2)
    result = await run_load(server.url, requests=300, clients=8, seed=3)
    assert result.errors == [], result.report()
    assert sum(len(v) for v in result.latencies.values()) == 300
    assert {"graphql-track", "heap-track", "segment-batch", "query-users"} <= set(result.latencies)
