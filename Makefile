# GridTokenX — the two commands: `make demo` and `make test`. Each sets itself up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup services lint test test-fast demo bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[edge,central,dev]'
	@touch $(STAMP)

setup: $(STAMP) services

services:
	@bash .ci/services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture

# Every test, slow ones included, spread over the cores by pytest-xdist (`--dist loadfile`: a file's tests run in one
# worker, so module-level state stays together). Every test is isolated: private databases cloned from the migrated
# template, private brokers, free ports. `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= auto
test: setup lint
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not slow"

# The whole story with real processes, ~30 s; `make demo DEMO_ARGS=--keep-running` keeps it up until Ctrl-C.
DEMO_ARGS ?=
demo: setup
	$(PY) tests/demo.py $(DEMO_ARGS)

# `make bench BENCH_BEFORE=<rev>` runs every benchmark from <rev> and from this tree back to back (bench/run.sh).
BENCH_BEFORE ?=
bench: setup
	@PY=$(PY) bash bench/run.sh $(BENCH_BEFORE)

clean:
	rm -rf .demo .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
