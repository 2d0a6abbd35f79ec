"""`python -m bench` in its tiniest mode: it runs end to end and produces its table and JSON.

Times nothing. PostgreSQL figures are included when the suite runs on PostgreSQL
(USERTRAIL_TEST_DATABASE_URL); PostGraphile never (npm install is too slow for CI).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.ingestion import median_round
from tests.conftest import PG_URL

ROOT = Path(__file__).parent.parent


def test_the_bench_prints_its_table_and_writes_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "latest.json"
    databases = "sqlite,postgresql" if PG_URL else "sqlite"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--users",
        "40",
        "--tile-users",
        "20",  # two copies: the replication runs too
        "--ingest-events",
        "200",
        "--ingest-rounds",
        "2",
        "--batch-size",
        "100",
        "--runs",
        "2",
        "--latency-runs",
        "1",
        "--definition-events",
        "2000",
        "--no-peer",
        "--databases",
        databases,
        "--pg-url",
        PG_URL or "postgresql://unused",
        "--output",
        str(output),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Usertrail bench" in done.stdout
    assert "GraphQL trackBatch" in done.stdout and "user timeline" in done.stdout
    figures = json.loads(output.read_text())
    assert figures["errors"] == []
    assert set(figures["internals"]) >= {"executor", "encoding", "input_conversion"}
    assert "Fast paths" in done.stdout
    assert figures["config"]["ingest_rounds"] == 2
    assert figures["dataset"]["users"] == 40 and figures["dataset"]["copies"] == 2
    for dialect in databases.split(","):
        ingestion = figures["ingestion"][dialect]
        assert ingestion["limit"]["events_per_second"] > 0
        for route in ("GraphQL trackBatch", "Heap /api/track (bulk)", "Segment /v1/batch"):
            assert ingestion[route]["events"] == 200 or "skipped" in ingestion[route]
            if "skipped" not in ingestion[route]:
                assert len(ingestion[route]["rounds"]) == 2
        shapes = {shape["key"] for shape in figures["shapes"]}
        assert set(figures["queries"][dialect]) == shapes
        assert all(figure["p50_ms"] > 0 for figure in figures["queries"][dialect].values())
        assert set(figures["statements"][dialect]) == shapes
        latency = figures["request_latency"][dialect]
        assert (latency["events"], latency["runs"]) == (1000, 1) and latency["p50_s"] > 0
    # One word of the row: rich wraps the row's label where the table has both dialects.
    assert "1000-event" in done.stdout
    assert figures["peer"]["postgraphile"] == {"skipped": "--no-peer"}
    assert "segment p50 / inline p50" in done.stdout and "defineEvent" in done.stdout
    for dialect in databases.split(","):
        assert figures["segment_ratio_p50"][dialect] > 0
        assert (
            figures["queries"][dialect]["segment_saved"]["returned"]
            == (figures["queries"][dialect]["segment_inline"]["returned"])
        )
    definitions = figures["definitions"]
    assert definitions["events"] == 2000 and len(definitions["backfills"]) >= 1
    assert all(row["seconds"] > 0 for row in definitions["backfills"])
    assert "ingestion_us_per_event_per_definition" in definitions


def test_an_ingestion_figure_is_its_median_round() -> None:
    runs = [
        {"events": 10, "events_per_second": 300.0, "peak_rss_mb": 90.0},
        {"events": 10, "events_per_second": 100.0, "peak_rss_mb": 120.0},
        {"events": 10, "events_per_second": 200.0, "peak_rss_mb": 80.0},
    ]
    middle = median_round(runs)
    assert middle["events_per_second"] == 200.0
    assert middle["rounds"] == [300.0, 100.0, 200.0]
    assert middle["peak_rss_mb"] == 120.0  # the peak of every round, not the median's
    assert median_round(runs[:2])["events_per_second"] == 100.0  # the lower middle
    assert median_round([{"skipped": "no route"}]) == {"skipped": "no route"}
