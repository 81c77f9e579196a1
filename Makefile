# make run  — Beacon on its embedded defaults (memory bus, SQLite under ./data), in .venv
# make test — lint, type-check and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-long soak lint venv node ui packages bench clean
BENCH_ARGS ?=

venv: $(STAMP)

$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

node: tests/node/node_modules/.package-lock.json

tests/node/node_modules/.package-lock.json: tests/node/package-lock.json
	npm ci --prefix tests/node --no-audit --no-fund --loglevel=error

UI_SRC := $(shell find admin-ui/src -type f 2>/dev/null) admin-ui/next.config.mjs admin-ui/tsconfig.json

ui: admin-ui/out/index.html

admin-ui/node_modules/.package-lock.json: admin-ui/package-lock.json
	npm ci --prefix admin-ui --no-audit --no-fund --loglevel=error

admin-ui/out/index.html: admin-ui/node_modules/.package-lock.json $(UI_SRC)
	npm run build --prefix admin-ui

run: venv
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory ui; \
	else echo "npm not found: the admin UI is not built (/ui/ answers 404)"; fi
	$(BIN)/python run.py

bench/reference_node/node_modules/.package-lock.json: bench/reference_node/package-lock.json
	npm ci --prefix bench/reference_node --no-audit --no-fund --loglevel=error

# The flow scenario's reference (bench/flow.py): `langgraph dev` in its own venv, from its lock file.
LG_REF := bench/reference_langgraph/.venv

$(LG_REF)/.installed: bench/reference_langgraph/requirements.lock
	@test -x $(LG_REF)/bin/python || $(PYTHON) -m venv $(LG_REF)
	$(LG_REF)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/reference_langgraph/requirements.lock
	@touch $@

# make bench: Beacon vs bare python-socketio vs Node socket.io, same client, same run (~25 min);
# make bench BENCH_ARGS=--quick for a one-minute smoke run; BENCH_ARGS="--scenarios flow" for
# Beacon's runs against `langgraph dev` (a few minutes). Results: bench/results/
bench: venv bench/reference_node/node_modules/.package-lock.json $(LG_REF)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: venv
	$(BIN)/ruff check app run.py tests bench
	$(BIN)/mypy

packages:
	@scripts/ensure-packages.sh

# The realtime and delivery tests once more with realtime.fast_path off: the libraries' own path.
LIBRARY_PATH_TESTS := tests/test_delivery.py tests/test_subscriptions.py tests/test_node_client.py \
	tests/test_security_realtime.py tests/test_limits.py tests/test_slow_consumer.py tests/test_auth.py

test: packages venv node ui lint
	$(BIN)/python -m pytest -m "not long and not soak"
	BEACON_TEST_FAST_PATH=off $(BIN)/python -m pytest -m "not long and not soak and not fast_path" $(LIBRARY_PATH_TESTS)

test-long: packages venv node
	$(BIN)/python -m pytest -m "long and not soak"

soak: packages venv node  ## TESTPLAN L3: 30 minutes (SOAK_SECONDS=… for less)
	$(BIN)/python -m pytest -m soak -s

clean:
	rm -rf $(VENV) tests/node/node_modules admin-ui/node_modules admin-ui/.next admin-ui/out \
		bench/reference_node/node_modules bench/reference_langgraph/.venv \
		.pytest_cache .mypy_cache .ruff_cache
