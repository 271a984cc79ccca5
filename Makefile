# GridTokenX — the two commands: `make demo` and `make test`. Each sets itself up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup services web web-types web-types-check lint test test-fast demo bench clean

# pip is upgraded first: the current pip installs the dependencies ~8 s faster than the venv's own 23.2 (measured).
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[edge,central,dev]'
	@touch $(STAMP)

# The web3.js compatibility test's npm packages (tests/compat/package-lock.json), installed when missing or stale.
NODE_STAMP := tests/compat/node_modules/.package-lock.json
$(NODE_STAMP): tests/compat/package-lock.json
	@command -v node >/dev/null 2>&1 || { echo "setup: Node.js 20 is needed for tests/compat (apt-get install nodejs)" >&2; exit 1; }
	@cd tests/compat && npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

setup: $(STAMP) $(NODE_STAMP) services web

# The web app (central/web: React + TypeScript + Vite), built into central/web/dist, which central serves at / and
# /app/*. `npm ci` from the committed lock file when node_modules is older than it; the build when any source is newer
# than the last build.
WEB := central/web
WEB_SRC := $(shell find $(WEB)/src -type f 2>/dev/null) $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "web: npm is missing (Node 20): sudo apt-get install -y nodejs npm" >&2; exit 1; }
	@cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@
$(WEB)/dist/index.html: $(WEB)/node_modules/.package-lock.json $(WEB_SRC)
	@cd $(WEB) && npm run --silent build >/dev/null
	@echo "web app built into $(WEB)/dist"
web: $(WEB)/dist/index.html

# The API types the web app is typed with (src/api/schema.d.ts) must be generated from the current OpenAPI document
# (`gridtokenx-central openapi`, no server needed). Regenerate with `make web-types`.
web-types: $(STAMP) $(WEB)/node_modules/.package-lock.json
	@$(PY) -m central.cli openapi > $(WEB)/openapi.json
	@cd $(WEB) && npx --no-install openapi-typescript openapi.json -o src/api/schema.d.ts >/dev/null
web-types-check: $(STAMP) $(WEB)/node_modules/.package-lock.json
	@tmp=$$(mktemp -d); $(PY) -m central.cli openapi > $$tmp/openapi.json && \
	(cd $(WEB) && npx --no-install openapi-typescript $$tmp/openapi.json -o $$tmp/schema.d.ts >/dev/null) && \
	if ! diff -q $$tmp/schema.d.ts $(WEB)/src/api/schema.d.ts >/dev/null; then \
	  echo "central/web/src/api/schema.d.ts is stale: the API changed. Run: make web-types" >&2; rm -rf $$tmp; exit 1; fi; \
	rm -rf $$tmp

services:
	@bash .ci/services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture
	@$(MAKE) --no-print-directory web-types-check

# Every test, slow ones included, spread over the cores by pytest-xdist. A file's tests run in one worker (one xdist
# group per file, so module-level state stays together) unless the file is marked `spread`; files with slow tests are
# handed out first (tests/conftest.py). Every test is isolated: private databases cloned from the migrated template,
# private brokers, free ports. Twice as many workers as cores (at most 8, for PostgreSQL's connection limit): many
# tests wait on processes, brokers and fsyncs, so two workers per core keep the cores busy (docs/testing.md has the
# figures). `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( 2 * n > 8 ? 8 : 2 * n )))
PYTEST_DIST := --dist loadgroup --no-loadscope-reorder
# Lint runs beside the tests (the tests leave a core idle part of the time); its output is printed after theirs, and
# `make test` fails if either fails.
test: setup
	@log=$$(mktemp); $(MAKE) --no-print-directory lint >"$$log" 2>&1 & lint=$$!; \
	echo "$(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_DIST)  (make lint runs beside it)"; \
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_DIST); tests=$$?; \
	wait $$lint; linted=$$?; cat "$$log"; rm -f "$$log"; \
	[ $$linted = 0 ] || echo "make lint failed (exit $$linted)"; [ $$linted = 0 ] && [ $$tests = 0 ]

test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) $(PYTEST_DIST) -m "not slow"

# The whole story with real processes, ~30 s; `make demo DEMO_ARGS=--keep-running` keeps it up until Ctrl-C.
DEMO_ARGS ?=
demo: setup
	$(PY) tests/demo.py $(DEMO_ARGS)

# `make bench BENCH_BEFORE=<rev>` runs every benchmark from <rev> and from this tree back to back (bench/run.sh).
BENCH_BEFORE ?=
bench: setup
	@PY=$(PY) bash bench/run.sh $(BENCH_BEFORE)

clean:
	rm -rf .demo tests/compat/node_modules .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
