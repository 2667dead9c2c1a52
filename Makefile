# The front door. `make run` and `make test` set up what they need (virtualenv, dependencies,
# migrations) on a machine where PostgreSQL and RabbitMQ are reachable.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ENV_FILE ?= deploy/sandbox.env
# The lock files (every dependency pinned with hashes); `make lock` writes them with uv.
LOCK_DEV := requirements/dev.lock
LOCK_RUNTIME := requirements/runtime.lock
UV_VERSION ?= 0.13.9
LOCK_FLAGS ?=
PYTEST_ARGS ?=
LINT_PATHS := shared services sandboxes tests bench

.DEFAULT_GOAL := help
.PHONY: help install lock browser run test test-unit lint fmt migrate bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

# Exactly the locked versions, each checked against its hash; then the project itself, built by
# the locked setuptools (no build isolation, so nothing unpinned is fetched).
$(STAMP): pyproject.toml $(LOCK_DEV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK_DEV)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	@touch $(STAMP)

install: $(STAMP) ## create the virtualenv and install the locked dependencies

# Keeps the pins already in the files and resolves only what changed in pyproject.toml;
# `make lock LOCK_FLAGS=--upgrade` moves everything to the newest versions the ranges allow.
lock: ## re-resolve requirements/*.lock from pyproject.toml (hashes included); commit them
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet 'uv==$(UV_VERSION)'
	$(VENV)/bin/uv pip compile pyproject.toml requirements/build.in --extra dev $(LOCK_FLAGS) \
		--generate-hashes --universal --python-version 3.11 --custom-compile-command 'make lock' \
		--quiet -o $(LOCK_DEV)
	$(VENV)/bin/uv pip compile pyproject.toml requirements/build.in -c $(LOCK_DEV) \
		--generate-hashes --universal --python-version 3.11 --custom-compile-command 'make lock' \
		--quiet -o $(LOCK_RUNTIME)

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
