# The front door. `make run` and `make test` set up what they need (virtualenv, dependencies,
# migrations) on a machine where PostgreSQL and RabbitMQ are reachable.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ENV_FILE ?= deploy/sandbox.env
PYTEST_ARGS ?=
LINT_PATHS := shared services sandboxes tests bench

.DEFAULT_GOAL := help
.PHONY: help install browser run test test-unit lint fmt migrate bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create the virtualenv and install dependencies

# The browser tests drive Debian's Chromium (Playwright's own download is not used).
CHROMIUM ?= /usr/bin/chromium
APT := $(if $(filter 0,$(shell id -u)),,sudo) apt-get
$(CHROMIUM):
	$(APT) install -y chromium chromium-driver || ($(APT) update && $(APT) install -y chromium chromium-driver)

browser: $(CHROMIUM) ## install Debian's chromium for the browser tests (when missing)

run: $(STAMP) ## run the whole stack on the sandboxes (Ctrl-C stops it)
	$(PY) -m services.launcher --env-file $(ENV_FILE)

test: $(STAMP) $(CHROMIUM) ## run the whole suite on real PostgreSQL and RabbitMQ
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-unit: $(STAMP) ## the fast, pure tests only
	$(PY) -m pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint + format check), mypy --strict, the layer contracts (import-linter)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy $(LINT_PATHS)
	$(VENV)/bin/lint-imports --no-cache

fmt: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)

migrate: $(STAMP) ## apply database migrations to DATABASE_URL
	$(PY) -m shared.infra.migrations --env-file $(ENV_FILE)

bench: $(STAMP) ## run every benchmark in bench/ (prints figures)
	@set -e; for b in bench/bench_*.py; do echo "== $$b"; PYTHONPATH=. $(PY) $$b; done

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
