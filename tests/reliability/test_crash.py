"""A server killed with SIGKILL loses no acknowledged event and stores no batch by halves.

Clients stream batches with idempotency keys (and a few invalid items, which are refused)
to a two-worker server subprocess; at a seeded random moment the whole process group is
killed. With the server down, every batch is either wholly stored (its valid events) or not
at all, and every acknowledged one is stored. The server restarts on the same database and
the clients retry what was not acknowledged; in the end every event is stored exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from tests.factories import expected_partition, stored_partition
from tests.reliability.conftest import Spawn, default_environment
from tests.reliability.stored import check_batches
from tests.reliability.workload import (
    Sender,
    arrival_order,
    generate_events,
    people,
    plan_requests,
    stream_requests,
)

STREAMS = 4
KILLS = 2


async def test_sigkill_at_a_random_moment_loses_nothing_acknowledged(
    any_url: str, spawn: Spawn
) -> None:
    rng = random.Random(f"crash-{any_url.split(':')[0]}")
    persons = people(10, identified=3, first_id=9500)
    events = generate_events(rng, persons, per_person=(30, 50), prefix="c")
    plan = plan_requests(
        rng, arrival_order(rng, events), max_size=25, heap_share=0.5, invalid_share=0.3
    )
    requests = dict(enumerate(plan))
    server = await spawn(any_url, workers=2)
    senders = [Sender(server.url, persons, key_prefix="crash-") for _ in range(STREAMS)]
    for sender in senders:
        sender.mark_identifying(random.Random(5), events)
    db, environment_id = await default_environment(any_url)

    async def kill() -> None:
        await asyncio.sleep(rng.uniform(0, 0.05))  # somewhere inside the next transactions
        server.kill()

    acknowledged: set[int] = set()
    try:
        for _ in range(KILLS):
            pending = {i: r for i, r in requests.items() if i not in acknowledged}
            fault_after = len(acknowledged) + rng.randint(2, max(2, len(pending) // 3))
            others = await stream_requests(
                senders, pending, acknowledged, fault_after=fault_after, fault=kill
            )
            assert not server.running
            assert others, "the kill came after the last batch"
            assert {a.outcome for _, a in others} == {"lost"}  # no 5xx, no error: only the crash
            await check_batches(db, environment_id, requests, acknowledged)
            await server.start()

        pending = {i: r for i, r in requests.items() if i not in acknowledged}
        assert await stream_requests(senders, pending, acknowledged) == []
        assert acknowledged == set(requests)
        present = await check_batches(db, environment_id, requests, acknowledged)
        assert present == Counter(e.key for e in events)  # every event exactly once
        assert await stored_partition(db, environment_id) == expected_partition(events)
    finally:
        for sender in senders:
            await sender.close()
        await db.dispose()
