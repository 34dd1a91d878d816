# Agnes developer commands. `make help` lists them.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PORT ?= 5000
export AGNES_DATA_DIR ?= $(CURDIR)/agnes-data
export AGNES_SEED_ADMIN_EMAIL ?= admin@example.com

.PHONY: help install install-test run worker cron test lint fix bench

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

install: ## Install Agnes and its dependencies
	$(PIP) install -q -e .

install-test: ## Install Agnes with test dependencies and the test tools (Claude Code CLI)
	$(PIP) install -q -e '.[test]'
	./scripts/install-test-tools.sh

run: install ## Run Agnes on http://127.0.0.1:$(PORT) (embedded jobs, no Redis needed)
	$(PYTHON) -m gunicorn --no-control-socket --workers 1 --threads 8 --bind 127.0.0.1:$(PORT) --access-logfile - wsgi:app

worker: ## Run an RQ worker (needs REDIS_URL)
	$(PYTHON) worker.py

cron: ## Run the periodic-job scheduler (needs REDIS_URL)
	$(PYTHON) worker.py --cron

test: install-test ## Install everything and run the test suite
	$(PYTHON) -m pytest

lint: ## Check style (ruff)
	ruff check .
	ruff format --check .

fix: ## Fix what ruff can fix
	ruff check --fix .
	ruff format .

bench: ## Run the benchmarks (print their figures)
	$(PYTHON) bench/state_store.py
	$(PYTHON) bench/served_marketplace.py
