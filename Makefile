# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PY := .venv/bin/python

.PHONY: run test bench lint fmt migrate keys openapi install

# Installs uv if missing, then the locked dependencies into .venv.
install:
	@command -v uv >/dev/null 2>&1 || test -x "$(UV)" || python3 -m pip install --quiet --user uv
	@$(UV) sync --frozen --quiet

run: install
	@$(PY) -m tools.run

test: install
	@$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	@$(PY) -m tools.bench

lint: install
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .

fmt: install
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

migrate: install
	@$(PY) -c "from tools.platform import *; import os; migrate(database_urls(dict(os.environ)))"

keys: install
	@$(PY) -m gateway.keys

# Writes the merged OpenAPI document of a running platform to docs/openapi.json.
openapi: install
	@curl -sf http://127.0.0.1:$${GATEWAY_PORT:-8000}/openapi.json | $(PY) -m json.tool > docs/openapi.json
	@echo "docs/openapi.json written"
