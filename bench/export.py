"""Exports of the whole query data set over HTTP: rows per second and the server's memory.

A fresh server process (bench/server.py) per database streams the first pages of an export
to a client that then leaves (so that the peak RSS read next includes what any export
allocates once: imports, the pool, compiled statements), then exports every user of the
data set as NDJSON and as CSV, read by a streaming client. The peak RSS (VmHWM) before and
after the full exports shows whether memory stays flat whatever the size (services/export.py
holds one page of rows at a time).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from rich.table import Table

from bench.server import ServerProcess

# Every user of the data set: its activity spans the last --days days.
EVERYONE = quote(json.dumps({"seen": {"lastDays": 3650}}))
# The bound the issue asks for: peak RSS growth over a whole export, whatever its size.
RSS_GROWTH_BOUND_MB = 50.0


async def _export(client: httpx.AsyncClient, fmt: str) -> dict[str, Any]:
    """Stream one users export; its rows (NDJSON: checked against its rowCount), bytes, rate."""
    started = time.perf_counter()
    rows = size = 0
    last = b""
    async with client.stream("GET", f"/export/users.{fmt}?filter={EVERYONE}") as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            rows += chunk.count(b"\n")
            last = (last + chunk)[-200:]
    seconds = time.perf_counter() - started
    rows -= 1  # NDJSON: the rowCount line; CSV: the header row
    if fmt == "ndjson":
        told = json.loads(last.strip().splitlines()[-1])["rowCount"]
        if told != rows:
            raise RuntimeError(f"the NDJSON export told {told} rows; {rows} arrived")
    # CSV rows hold no line breaks in the demo data (a quoted one would count twice here).
    return {
        "rows": rows,
        "mb": round(size / 1e6, 1),
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
    }


async def _first_page(client: httpx.AsyncClient) -> None:
    """Read a page's worth of an export and leave: what every export allocates once."""
    lines = 0
    async with client.stream("GET", f"/export/users.ndjson?filter={EVERYONE}") as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            lines += chunk.count(b"\n")
            if lines >= 2000:
                break


async def measure(url: str, log: Path) -> dict[str, Any]:
    """The figures of one database (its data set at `url`)."""
    async with (
        ServerProcess(url, log) as server,
        httpx.AsyncClient(base_url=server.url, timeout=600) as client,
    ):
        await _first_page(client)
        before = server.peak_rss_mb
        figures = {fmt: await _export(client, fmt) for fmt in ("ndjson", "csv")}
        after = server.peak_rss_mb
    if before is None or after is None:
        raise RuntimeError("the server's VmHWM could not be read")
    return {
        **figures,
        "peak_rss_before_mb": round(before, 1),
        "peak_rss_after_mb": round(after, 1),
        "peak_rss_growth_mb": round(after - before, 1),
        "bound_mb": RSS_GROWTH_BOUND_MB,
    }


def add_rows(table: Table, results: dict[str, Any]) -> None:
    """Rows for the bench's table: export rate and memory per database."""
    figures = results.get("export") or {}
    table.add_row("[bold]Export[/] (bench/export.py): every user, streamed over HTTP")
    dialects = ("sqlite", "postgresql")
    for fmt in ("ndjson", "csv"):
        table.add_row(
            f"  /export/users.{fmt}",
            *(
                f"{f[fmt]['rows_per_s']:,} rows/s" if (f := figures.get(d)) else "—"
                for d in dialects
            ),
            " / ".join(
                f"{f[fmt]['rows']:,} rows, {f[fmt]['mb']} MB in {f[fmt]['seconds']} s"
                for d in dialects
                if (f := figures.get(d))
            ),
            "",
        )
    table.add_row(
        "  server peak RSS growth over the exports",
        *(f"{f['peak_rss_growth_mb']:+.1f} MB" if (f := figures.get(d)) else "—" for d in dialects),
        " / ".join(
            f"{f['peak_rss_before_mb']:.0f} → {f['peak_rss_after_mb']:.0f} MB"
            for d in dialects
            if (f := figures.get(d))
        ),
        f"< {RSS_GROWTH_BOUND_MB:.0f} MB whatever the size (issue 21)",
    )
