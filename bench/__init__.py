"""Usertrail benchmarks: `python -m bench` (or `make bench`) prints one table of figures.

Every figure comes with its comparison from the same run:

- ingestion throughput over real HTTP to a `usertrail serve` subprocess (GraphQL
  `trackBatch`, Heap `/api/track` bulk, Segment `/v1/batch`; batches of 500) on SQLite and
  PostgreSQL, beside the raw rate of inserting the same rows into the events table with a
  plain `executemany` (SQLite) or COPY (PostgreSQL): the limit;
- the server's peak RSS (VmHWM) during each ingestion run;
- the latency of one 1000-event `trackBatch` request of realistic events (target ≤ 6 s;
  the suite checks the same batch is stored, without timing it);
- query latency p50/p95 over HTTP on a demo data set (default 100,000 people, ~1,000,000
  events), and SQL statements per query at two page sizes (in-process, counted by
  `Database.statement_count`);
- PostGraphile 4 answering the equivalent nested users → sessions → events query on the same
  PostgreSQL database, and the ratio of Usertrail's p50 to PostGraphile's.

Figures also go to `bench/results/latest.json`. See `bench/dataset.py` for how the query
data set is built quickly and honestly.
"""
