# Herald: `make run` starts the whole system on one machine, `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml 2>/dev/null | cut -c1-12)

.PHONY: help install run test lint contract migrate bench screenshots validate-deploy validate-observability clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

install: $(STAMP)  ## create .venv and install Herald with its test tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

run: install  ## the whole system in one process on 8000-8002 (embedded stores unless their URLs are set)
	HERALD_EMBEDDED=1 $(BIN)/python -m scripts.run_local

test: install lint  ## lint, the quick tier (no services), then the tests on the real PostgreSQL, Redis and RabbitMQ
	$(BIN)/pytest -m quick -q
	$(BIN)/pytest -m services

lint: install  ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

contract: install  ## schemathesis against the gateway on the real services, SCHEMATHESIS_MAX_EXAMPLES per operation [200]
	SCHEMATHESIS_MAX_EXAMPLES=$(or $(SCHEMATHESIS_MAX_EXAMPLES),200) $(BIN)/pytest tests/contract -m services -s

migrate: install  ## apply database migrations and create the bootstrap admin
	$(BIN)/python -m scripts.migrate

bench: install  ## gateway and delivery curves, each beside its reference, charts in docs/bench (wrk, smtp-sink; ~6 min)
	$(BIN)/python -m scripts.bench

screenshots: install  ## retake the console's screenshots in docs/console/ (Debian's chromium, the local services)
	HERALD_SCREENSHOTS=1 $(BIN)/pytest tests/web/console/test_console_browser_queue.py -k screenshots

validate-deploy:  ## check docker-compose.yml, the entrypoint and the Helm chart (tools cached in var/tools)
	bash scripts/validate_deploy.sh

validate-observability:  ## promtool check config and rules (installs Debian's prometheus package if needed)
	bash scripts/validate_observability.sh

clean:  ## remove the virtual environment and local data
	rm -rf $(VENV) var
