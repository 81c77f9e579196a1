# make run  — Beacon on its embedded defaults (memory bus, SQLite under ./data), in .venv
# make test — lint, type-check and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-long lint venv node packages clean

venv: $(STAMP)

$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

node: tests/node/node_modules/.package-lock.json

tests/node/node_modules/.package-lock.json: tests/node/package-lock.json
	npm ci --prefix tests/node --no-audit --no-fund --loglevel=error

run: venv
	$(BIN)/python run.py

lint: venv
	$(BIN)/ruff check app run.py tests
	$(BIN)/mypy

packages:
	@scripts/ensure-packages.sh

test: packages venv node lint
	$(BIN)/python -m pytest -m "not long"

test-long: packages venv node
	$(BIN)/python -m pytest -m long

clean:
	rm -rf $(VENV) tests/node/node_modules .pytest_cache .mypy_cache .ruff_cache
