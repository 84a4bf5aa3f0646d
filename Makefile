# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create and reuse .venv by themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test lint typecheck unit bench clean sandbox local browser azurite checkov infra chaos

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

demo: $(STAMP) ## run the main job on the embedded local Azure sandbox
	$(BIN)/python -m steward.cli demo

test: lint typecheck browser azurite checkov ## every check and every test tier (what CI runs)
	$(BIN)/python -m pytest

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .

typecheck: $(STAMP) ## mypy --strict on the core, adapters, activities, orchestrators and entrypoints
	$(BIN)/mypy

unit: $(STAMP) ## the fast tier only
	$(BIN)/python -m pytest tests/unit

browser: ## the headless Chromium the report tests render in (Debian package, installed once)
	@scripts/ensure-chromium.sh >/dev/null

checkov: ## checkov for the infra policy scan (its own pinned environment in var/checkov, once)
	@scripts/infra-check.sh --install

infra: $(STAMP) checkov ## the infra checks alone (Bicep parse, policy scan, filters vs classifier, roles)
	$(BIN)/python -m pytest tests/infra -q

AZURITE_VERSION := 3.37.0
azurite: ## the Azurite blob emulator the report-store tests use (npm, into var/azurite, once)
	@test -x var/azurite/node_modules/.bin/azurite-blob || npm install --prefix var/azurite --no-audit --no-fund --silent azurite@$(AZURITE_VERSION)

SEEDS ?= 9
chaos: $(STAMP) ## the full chaos run (SEEDS="1 2 3" for several): faults, duplicated events, SIGKILLs; figures in artifacts/chaos
	$(BIN)/python -m tests.chaos --seeds $(SEEDS)

bench: $(STAMP) ## benchmarks on the sandbox; results in artifacts/benchmarks
	$(BIN)/python -m benchmarks

sandbox: $(STAMP) ## serve the local ARM sandbox and print its endpoint
	$(BIN)/python -m steward.cli sandbox serve

local: $(STAMP) ## sandbox + Durable runner + local Functions host around function_app.py
	$(BIN)/python -m steward.cli local up --scale 60

clean: ## remove the virtual environment and local state
	rm -rf $(VENV) var artifacts .pytest_cache .mypy_cache .ruff_cache .hypothesis
