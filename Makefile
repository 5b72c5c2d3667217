# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PY := .venv/bin/python

.PHONY: run test bench lint fmt migrate keys openapi install mutate

# Installs uv if missing, then the locked dependencies into .venv.
install:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

run: install
	@$(PY) -m tools.run

test: install
	@$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	@command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq wrk)
	@$(PY) -m tools.bench $(BENCH_ARGS)

# Mutation testing of the security-critical modules (slow; on demand, not part of `test`):
# writes the score per module to docs/quality.md. MUTATE_ARGS=--rerun-survivors retries
# only what survived the last run; --report-only rewrites the report from it.
mutate: install
	@$(PY) -m tools.mutate $(MUTATE_ARGS)

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
