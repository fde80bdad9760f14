# Two commands on a fresh clone: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: run test lint typecheck bench clean system-deps pg

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(TESTSTAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(STAMP)

# The demo: a scripted morning played into the live service (see README, Quick start).
run: $(STAMP)
	$(BIN)/watcher serve --config watcher.yaml --demo

# Debian packages the integration tests talk to (real Prometheus, Alertmanager, net-snmp...).
# Installed once here, never from tests running in parallel (dpkg takes a lock).
system-deps:
	bash scripts/system-deps.sh

pg:
	bash scripts/ensure-postgres.sh

test: $(TESTSTAMP) system-deps pg
	$(BIN)/ruff check watcher tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 -q $(PYTEST_ARGS)

lint: $(TESTSTAMP)
	$(BIN)/ruff check watcher tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/replay.py

clean:
	rm -rf $(VENV) watcher.db* .pytest_cache .mypy_cache
