"""SQLite's WAL is checkpointed in the background: the write path never copies it back, and
it does not grow without bound under a stream of writes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from models.db import CHECKPOINT_INTERVAL_SECONDS, Database

ROW = "x" * 4000  # about one page per row
ROWS_PER_WRITE = 100


async def _write(db: Database, number: int) -> None:
    async def work(conn: AsyncConnection) -> None:
        await conn.execute(
            text("INSERT INTO blobs (n, body) VALUES (:n, :body)"),
            [{"n": number * ROWS_PER_WRITE + i, "body": ROW} for i in range(ROWS_PER_WRITE)],
        )

    await db.write(work)


async def test_the_wal_is_reused_instead_of_growing(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    db = Database(f"sqlite:///{path}")
    try:
        await db.write(
            lambda conn: conn.execute(text("CREATE TABLE blobs (n INTEGER PRIMARY KEY, body)"))
        )
        wal = Path(f"{path}-wal")
        largest = 0
        for number in range(40):  # ~16 MB written; SQLite alone would checkpoint at ~4 MB
            await _write(db, number)
            await asyncio.sleep(CHECKPOINT_INTERVAL_SECONDS)  # let a checkpoint start and run
            largest = max(largest, wal.stat().st_size)
        written = 40 * ROWS_PER_WRITE * len(ROW)
        assert largest < written / 4, (largest, written)
    finally:
        await db.dispose()
    with sqlite3.connect(path) as check:  # and every row is there
        assert check.execute("SELECT count(*) FROM blobs").fetchone() == (40 * ROWS_PER_WRITE,)


async def test_the_writer_does_not_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "off.db"
    db = Database(f"sqlite:///{path}")
    try:
        async with db.write_engine.connect() as conn:
            value = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar()
        assert value == 0
        async with db.engine.connect() as conn:  # readers keep SQLite's default
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 1000
    finally:
        await db.dispose()
