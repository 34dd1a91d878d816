# Agnes developer commands. `make help` lists them.
#
# Python runs from a virtualenv: the active one ($VIRTUAL_ENV), else ./.venv, created on first
# use with python3 (override with SYSTEM_PYTHON=python3.12). The system Python is never changed.
SYSTEM_PYTHON ?= python3
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),$(CURDIR)/.venv)
PYTHON := $(VENV)/bin/python
PORT ?= 5000
PYTEST_ARGS ?=
export PORT
export AGNES_DATA_DIR ?= $(CURDIR)/agnes-data
export AGNES_SEED_ADMIN_EMAIL ?= admin@example.com

.PHONY: help install install-test tools run worker cron test lint fix bench

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(PYTHON):
	@$(SYSTEM_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "make: Agnes needs Python 3.11 or newer as $(SYSTEM_PYTHON) (set SYSTEM_PYTHON=python3.x)"; exit 1; }
	@echo "make: creating the virtualenv $(VENV)"
	@$(SYSTEM_PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "make: '$(SYSTEM_PYTHON) -m venv' failed: install Debian's python3-venv package (apt-get install python3-venv)"; exit 1; }

# Stamps: reinstall only when pyproject.toml changes (or the virtualenv is new).
$(VENV)/.agnes-installed: pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install -q -e .
	@touch $@

$(VENV)/.agnes-installed-test: pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install -q -e '.[test]'
	@touch $@ $(VENV)/.agnes-installed

install: $(VENV)/.agnes-installed ## Install Agnes into the virtualenv (.venv unless one is active)

install-test: $(VENV)/.agnes-installed-test ## Install Agnes with its test dependencies

tools: ## Install or start what the tests drive (Redis, Chromium, Node + Claude Code CLI); says what is missing
	@./scripts/install-test-tools.sh

run: install ## Run Agnes on http://127.0.0.1:$(PORT) (embedded jobs, no Redis needed)
	$(VENV)/bin/gunicorn --no-control-socket --workers 1 --threads 8 --graceful-timeout 8 \
	  --bind 127.0.0.1:$(PORT) --access-logfile - wsgi:app

worker: install ## Run an RQ worker (needs REDIS_URL)
	$(PYTHON) worker.py

cron: install ## Run the periodic-job scheduler (needs REDIS_URL)
	$(PYTHON) worker.py --cron

# Three timed phases; each prints how long it took. The last line is pytest's own summary.
test: ## Install everything and run the test suite (prints the time of each phase)
	@began=$$(date +%s); \
	$(MAKE) --no-print-directory install-test || exit 1; \
	installed=$$(date +%s); echo "make test: install phase took $$((installed - began)) s"; \
	./scripts/install-test-tools.sh || exit 1; \
	tooled=$$(date +%s); echo "make test: tools phase took $$((tooled - installed)) s"; \
	AGNES_MAKE_TEST_STARTED=$$began AGNES_MAKE_TEST_TOOLS_DONE=$$tooled \
	  $(PYTHON) -m pytest -p tests.deploy.phase_timer $(PYTEST_ARGS)

lint: install-test ## Check style (ruff)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fix: install-test ## Fix what ruff can fix
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install-test ## Run the benchmarks (print their figures)
	$(PYTHON) bench/state_store.py
	$(PYTHON) bench/served_marketplace.py
