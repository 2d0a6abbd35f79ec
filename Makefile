# Usertrail developer commands. `make serve` and `make test` work on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATABASE_URL ?= sqlite+aiosqlite:///usertrail.db
PORT ?= 8000
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
# People of demo activity `make serve` loads into an empty database first; DEMO=0 skips it.
DEMO ?= 200
DEMO_DAYS ?= 14
# Extra arguments of `make bench`, e.g. BENCH_ARGS="--users 2000 --quick".
BENCH_ARGS ?=
# `make profile`: the ingestion route (graphql, heap, segment) and database (sqlite, postgresql)
# to sample with py-spy, and extra arguments, e.g. PROFILE_ARGS="--events 120000 --top 20".
ROUTE ?= heap
DB ?= sqlite
PROFILE_ARGS ?=

.PHONY: serve test test-pg lint schema bench profile clean install assets maybe-assets lock

# GraphiQL's browser files: npm packages (web/package-lock.json) bundled into server/static/build/.
ASSETS := server/static/build/manifest.json
ASSET_SOURCES := web/package-lock.json web/build.mjs $(wildcard web/*/*.js web/*/*.css)

# Dependencies at the exact versions of requirements.lock (constraints: a package pyproject.toml
# adds that the lock does not name yet installs unpinned until the next `make lock`).
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=python3 if that is 3.11+)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $(STAMP)

install: $(STAMP) maybe-assets

$(ASSETS): $(ASSET_SOURCES)
	cd web && npm ci --prefer-offline --no-audit --no-fund --loglevel=error && node build.mjs

assets: $(ASSETS)  ## build GraphiQL's browser files from npm packages (needs Node 20+ and npm)

# serve, install and test build the assets when node and npm exist; without them (or when the
# build fails, e.g. offline with an empty npm cache) the server still runs, and /graphql in a
# browser says how to build them.
maybe-assets:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		$(MAKE) -s --no-print-directory assets || echo "warning: GraphiQL's assets did not build (see above); the server runs without them"; \
	elif [ -f $(ASSETS) ]; then \
		echo "note: node and npm not found: GraphiQL's assets stay as last built"; \
	else \
		echo "note: node and npm not found: GraphiQL's assets are not built (make assets needs Node 20+ and npm)"; \
	fi

LOCK_VENV := .lock-venv
lock:  ## re-pin requirements.lock: the newest versions pyproject.toml allows, from a fresh venv
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/pip install --quiet -e '.[test]'
	{ sed -n '/^#/p' requirements.lock; $(LOCK_VENV)/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(LOCK_VENV)
	@echo "requirements.lock updated: run make install, make test, USERTRAIL_FAST_PATHS=0 make test and make test-pg before committing it"

serve: $(STAMP) maybe-assets  ## migrate, load demo data into an empty database (DEMO=0: don't), serve the page at http://127.0.0.1:8000/ and GraphiQL at /graphql
	$(BIN)/usertrail serve --dev --host 127.0.0.1 --port $(PORT) --database-url $(DATABASE_URL) \
		--demo-if-empty $(DEMO) --demo-days $(DEMO_DAYS)

test: $(STAMP) maybe-assets  ## the whole suite on SQLite (PostgreSQL-only tests skip, saying why, without a server)
	$(BIN)/python -m pytest -q

test-pg: $(STAMP) maybe-assets  ## the whole suite on PostgreSQL
	USERTRAIL_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest -q

lint: $(STAMP)  ## ruff, and mypy over services/ and models/ (pyproject.toml [tool.mypy])
	$(BIN)/ruff check .
	$(BIN)/mypy

schema: $(STAMP)  ## regenerate schema.graphql from the code
	$(BIN)/usertrail export-schema --output schema.graphql

bench: $(STAMP)  ## benchmarks: prints a table, writes bench/results/latest.json
	$(BIN)/python -m bench $(BENCH_ARGS)

profile: $(STAMP)  ## py-spy on the server while one route ingests: cores per thread, hot functions
	@test -x $(BIN)/py-spy || $(BIN)/pip install --quiet 'py-spy>=0.4'
	$(BIN)/python -m bench.profile --route $(ROUTE) --database $(DB) $(PROFILE_ARGS)

clean:
	rm -rf $(VENV) $(LOCK_VENV) *.egg-info .pytest_cache .hypothesis .mypy_cache web/node_modules server/static/build
