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

test: setup lint
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# The whole story with real processes, ~30 s; `make demo DEMO_ARGS=--keep-running` keeps it up until Ctrl-C.
DEMO_ARGS ?=
demo: setup
	$(PY) tests/demo.py $(DEMO_ARGS)

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .demo .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
