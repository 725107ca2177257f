# leadrelay: the two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(CURDIR)/data
TEST_DATA_DIR ?= $(CURDIR)/.test-data
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/leadrelay
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test install install-test lint typecheck test-sqlite test-postgres lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements/runtime.lock
	$(BIN)/pip install --quiet -r requirements/runtime.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements/test.lock
	$(BIN)/pip install --quiet -r requirements/test.lock
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make demo: install, migrate SQLite, load demo data, run web server + worker, print logins
demo: install
	LEADRELAY_DATA_DIR=$(DATA_DIR) $(BIN)/leadrelay migrate --noinput -v0
	LEADRELAY_DATA_DIR=$(DATA_DIR) $(BIN)/leadrelay demo-data --credentials-out $(DATA_DIR)/demo-credentials.json
	@echo
	@echo "leadrelay is starting on http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	LEADRELAY_DATA_DIR=$(DATA_DIR) $(BIN)/leadrelay serve --with-worker --host $(HOST) --port $(PORT)

## make test: lint, type-check, then the suite on SQLite and, when it answers, PostgreSQL
test: install-test lint typecheck test-sqlite test-postgres

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck:
	LEADRELAY_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/mypy

test-sqlite:
	@echo "== tests on SQLite"
	rm -rf $(TEST_DATA_DIR)
	env -u DATABASE_URL LEADRELAY_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest --create-db $(PYTEST_ARGS)

test-postgres:
	@if $(BIN)/python -c "import sys, psycopg; psycopg.connect(sys.argv[1], dbname='postgres', connect_timeout=3).close()" "$(TEST_DATABASE_URL)" 2>/dev/null; then \
		echo "== tests on PostgreSQL ($(TEST_DATABASE_URL))"; \
		DATABASE_URL=$(TEST_DATABASE_URL) LEADRELAY_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/pytest --create-db $(PYTEST_ARGS); \
	elif [ -n "$$CI" ]; then \
		echo "PostgreSQL does not answer at $(TEST_DATABASE_URL), and CI must run that leg."; exit 1; \
	else \
		echo "== PostgreSQL does not answer at $(TEST_DATABASE_URL): its leg is skipped"; \
	fi

## make lock: re-pin requirements/*.lock from pyproject.toml in throwaway virtualenvs
lock:
	rm -rf /tmp/leadrelay-lock && $(PYTHON) -m venv /tmp/leadrelay-lock/rt && $(PYTHON) -m venv /tmp/leadrelay-lock/test
	/tmp/leadrelay-lock/rt/bin/pip install --quiet .
	/tmp/leadrelay-lock/rt/bin/pip freeze --exclude-editable | grep -v '^leadrelay' > requirements/runtime.lock
	/tmp/leadrelay-lock/test/bin/pip install --quiet ".[test]"
	/tmp/leadrelay-lock/test/bin/pip freeze --exclude-editable | grep -v '^leadrelay' > requirements/test.lock

clean:
	rm -rf $(VENV) $(TEST_DATA_DIR) build src/*.egg-info
