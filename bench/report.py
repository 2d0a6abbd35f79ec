"""The bench's one table: figures per database, each beside its same-run comparison and target."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from bench import export, internals, live, request_latency

DIALECTS = ("sqlite", "postgresql")
ROUTES = {
    "GraphQL trackBatch": ("≥ 10,000/s", ""),
    "Heap /api/track (bulk)": ("≥ 40,000/s, ≥ 20 % of limit; PG ≥ 25,000/s", "server events"),
    "Segment /v1/batch": ("≥ 40,000/s, ≥ 20 % of limit; PG ≥ 25,000/s", "with messageIds"),
}
QUERY_TARGETS = {
    "users_page": "p50 ≤ 50 ms",
    "filtered_users": "p50 ≤ 200 ms",
    "timeline": "p50 ≤ 80 ms",
    "sessions_page": "p50 ≤ 150 ms",
    "nested": "p50 ≤ 1.5 × PostGraphile's",
    "segment_inline": "p50 ≤ 200 ms",
    "segment_saved": "p50 ≤ 1.10 × inline (issue 9)",
}
BACKFILL_TARGET = "< 5 s on SQLite for 1,000,000 events (issue 4)"


def _skipped(figure: dict[str, Any]) -> str:
    return f"skipped: {figure.get('skipped') or figure.get('error', '?')}"


def _rate(figure: dict[str, Any] | None, limit: float | None) -> str:
    if not figure:
        return "—"
    if "events_per_second" not in figure:
        return _skipped(figure)
    rate = figure["events_per_second"]
    share = f" ({100 * rate / limit:.1f} % of limit)" if limit else ""
    rounds = [r for r in figure.get("rounds", []) if r is not None]
    spread = f" [dim]{min(rounds):,.0f}–{max(rounds):,.0f}[/]" if len(rounds) > 1 else ""
    return f"{rate:,.0f}{share}{spread}"


def _latency(figure: dict[str, Any] | None) -> str:
    if not figure:
        return "—"
    if "p50_ms" not in figure:
        return _skipped(figure)
    return f"{figure['p50_ms']:.1f} / {figure['p95_ms']:.1f} (n={figure['runs']})"


def _statements(results: dict[str, Any], shape: str) -> str:
    parts, sizes = [], ""
    for dialect, name in zip(DIALECTS, ("SQLite", "PG"), strict=True):
        counts = results.get("statements", {}).get(dialect, {}).get(shape)
        if counts:
            sizes = "→".join(key.rsplit("_", 1)[1] for key in counts)
            parts.append(f"{'→'.join(str(v) for v in counts.values())} {name}")
    return f"SQL statements at first {sizes}: {', '.join(parts)}" if parts else ""


def _ingestion_rows(table: Table, results: dict[str, Any]) -> None:
    ingestion = results.get("ingestion", {})
    config = results.get("config", {})
    rounds = config.get("ingest_rounds") or 1
    of_rounds = f", median of {rounds} rounds [dim](range)[/]" if rounds > 1 else ""
    table.add_row(
        f"[bold]Ingestion over HTTP[/]: {config.get('ingest_events', 0):,} demo events per run, "
        f"batches of {config.get('batch_size')}, {config.get('concurrency')} clients "
        f"(events/s{of_rounds})"
    )
    limits = {d: ingestion.get(d, {}).get("limit", {}).get("events_per_second") for d in DIALECTS}
    for route, (target, kind) in ROUTES.items():
        figures = [ingestion.get(d, {}).get(route) or {} for d in DIALECTS]
        rss = " / ".join(
            f"{f['peak_rss_mb']:.0f} MB" if f.get("peak_rss_mb") else "—" for f in figures
        )
        label = f"  {route}" + (f" ({kind})" if kind else "")
        cells = [_rate(f, limits[d]) for f, d in zip(figures, DIALECTS, strict=True)]
        table.add_row(label, *cells, f"server peak RSS {rss}", target)
    table.add_row(
        "  limit: the same rows inserted raw",
        *(
            f"{_rate(ingestion[d]['limit'], None)} ({ingestion[d]['limit']['method']})"
            if limits[d]
            else "—"
            for d in DIALECTS
        ),
        "executemany per batch / COPY per batch, fresh events table",
    )
    peaks = [
        max(
            (f.get("peak_rss_mb") or 0 for f in ingestion.get(d, {}).values() if "events" in f),
            default=0,
        )
        for d in DIALECTS
    ]
    table.add_row(
        "  server peak RSS during ingestion (VmHWM)",
        *(f"{p:.0f} MB" if p else "—" for p in peaks),
        "largest of the three routes",
        "< 400 MB",
    )
    _latency_row(table, results)


def _latency_row(table: Table, results: dict[str, Any]) -> None:
    figures = [results.get("request_latency", {}).get(d) for d in DIALECTS]
    cells = [
        f"{f['p50_s']:.2f} s / {f['max_s']:.2f} s (n={f['runs']})" if f else "—" for f in figures
    ]
    size = next((f["body_bytes"] for f in figures if f), 0)
    table.add_row(
        f"  one {request_latency.EVENTS}-event trackBatch request\n    [dim]p50 / max[/]",
        *cells,
        f"realistic ~1.7 KB click events, a {size / 1e6:.1f} MB body, one request at a time",
        f"≤ {request_latency.TARGET_SECONDS:g} s (issue 16)",
    )


def _query_rows(table: Table, results: dict[str, Any]) -> None:
    data = results.get("dataset", {})
    queries = results.get("queries", {})
    peer = results.get("peer", {})
    table.add_row(
        f"[bold]Queries over HTTP[/]: p50 / p95 ms on {data.get('users', 0):,} users, "
        f"{data.get('events', 0):,} events, {data.get('sessions', 0):,} sessions"
    )
    for shape in results.get("shapes", []):
        key = shape["key"]
        figures = [queries.get(d, {}).get(key) or {} for d in DIALECTS]
        returned = next((f["returned"] for f in figures if "returned" in f), "")
        comparison = _statements(results, key)
        if key == "nested":
            ours = f"PostGraphile 4 on PG: {_latency(peer.get('postgraphile'))}"
            if peer.get("ratio_p50") is not None:
                ours += (
                    f"; Usertrail in turn with it: {_latency(peer.get('usertrail_in_turn'))}; "
                    f"Usertrail/PostGraphile p50 = {peer['ratio_p50']:.2f}×"
                )
            comparison = f"{ours}\n{comparison}"
        if key == "segment_saved":
            comparison = f"{_segment_ratio(results)}\n{comparison}"
        table.add_row(
            f"  {shape['label']}\n    [dim]returns {returned}[/]",
            *(_latency(f) for f in figures),
            comparison,
            QUERY_TARGETS.get(key, ""),
        )


def _segment_ratio(results: dict[str, Any]) -> str:
    ratios = results.get("segment_ratio_p50", {})
    parts = [
        f"{ratios[d]:.2f}× {name}"
        for d, name in zip(DIALECTS, ("SQLite", "PG"), strict=True)
        if ratios.get(d) is not None
    ]
    return f"segment p50 / inline p50 = {', '.join(parts) or '—'}"


def _definition_rows(table: Table, results: dict[str, Any]) -> None:
    figures = results.get("definitions") or {}
    events = figures.get("events") or results.get("config", {}).get("definition_events") or 0
    table.add_row(
        f"[bold]Event definitions[/] (bench/bench_definitions.py): defineEvent (validate, insert, "
        f"backfill) over {events:,} stored events, SQLite only (s)"
    )
    if "backfills" not in figures:
        reason = figures.get("skipped") or "stage failed (see errors)"
        table.add_row("  defineEvent backfill", f"skipped: {reason}", "—", "", BACKFILL_TARGET)
        return
    for row in figures["backfills"]:
        table.add_row(
            f"  {row['definition']}",
            f"{row['seconds']:.2f} s",
            "—",
            f"{row['matches']:,} matching events (filled in {figures['fill_seconds']:.0f} s)",
            BACKFILL_TARGET,
        )
    per_batch = ", ".join(
        f"{row['definitions']} → {row['seconds_per_1000_events'] * 1000:.2f} ms"
        for row in figures["ingestion"]
    )
    table.add_row(
        "  ingestion: cost per active definition\n    [dim]µs per event per definition[/]",
        f"{figures['ingestion_us_per_event_per_definition']:.2f} µs",
        "—",
        f"match_new_events per 1000 events, by active definitions: {per_batch}",
        "reported (issue 4)",
    )


def _memory_row(table: Table, results: dict[str, Any]) -> None:
    peaks = results.get("query_server_peak_rss_mb", {})
    table.add_row(
        "  server peak RSS after the query runs (VmHWM)",
        *(f"{peaks[d]:.0f} MB" if peaks.get(d) else "—" for d in DIALECTS),
        "the server that answered the queries above",
        "< 400 MB",
    )


def build_table(results: dict[str, Any]) -> Table:
    """The one table `python -m bench` prints."""
    table = Table(
        title=f"Usertrail bench ({results.get('started', '')}, {results.get('seconds', 0):.0f} s)",
        caption="\n".join(results.get("notes", [])),
        caption_justify="left",
    )
    table.add_column("Figure")
    table.add_column("SQLite", justify="right")
    table.add_column("PostgreSQL", justify="right")
    table.add_column("Same-run comparison")
    table.add_column("Target (issue 7 unless noted)")
    _ingestion_rows(table, results)
    table.add_section()
    _query_rows(table, results)
    _memory_row(table, results)
    table.add_section()
    _definition_rows(table, results)
    table.add_section()
    internals.add_rows(table, results)
    table.add_section()
    export.add_rows(table, results)
    table.add_section()
    live.add_rows(table, results)
    return table


def citus_table(results: dict[str, Any]) -> Table:
    """PostgreSQL beside Citus (`--citus-url`): the same figures on one node and distributed."""
    table = Table(title=f"Citus ({results['machine'].get('citus', '')}) beside PostgreSQL")
    for column in ("figure", "PostgreSQL", "Citus"):
        table.add_column(column)
    ingestion = results.get("ingestion", {})
    for route in [*ROUTES, "limit"]:
        figures = [ingestion.get(d, {}).get(route) for d in ("postgresql", "citus")]
        name = "raw insert (COPY)" if route == "limit" else route
        table.add_row(f"{name}, events/s", *[_rate(f, None) for f in figures])
    latency = results.get("request_latency", {})
    table.add_row(
        f"one {request_latency.EVENTS}-event trackBatch, s p50 / max",
        *[
            f"{f['p50_s']:.2f} / {f['max_s']:.2f} (n={f['runs']})" if f else "—"
            for f in (latency.get(d) for d in ("postgresql", "citus"))
        ],
    )
    queries = results.get("queries", {})
    for key in QUERY_TARGETS:
        figures = [queries.get(d, {}).get(key) for d in ("postgresql", "citus")]
        if any(figures):
            table.add_row(f"{key}, ms p50 / p95", *[_latency(f) for f in figures])
    return table
