# Two commands from a fresh clone: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench soak install clean

$(PY):
	@PYBIN=$$(scripts/find-python) && echo "Creating $(VENV) with $$PYBIN" && "$$PYBIN" -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[test,dev]"
	@touch $(STAMP)

install: $(STAMP)

# The embedded default is a development setup: DEBUG=1 unless the caller says otherwise.
demo: export DEBUG ?= 1
demo: $(STAMP)
	@mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_demo_admin
	$(PY) manage.py ensure_demo_calendar
	$(PY) manage.py ensure_demo_alerts
	$(PY) manage.py ensure_demo_replay_endpoints
	$(PY) manage.py ensure_demo_reconciliation
	$(PY) manage.py rundemo

test: export DEBUG ?= 1
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n $${PYTEST_WORKERS:-2} --create-db

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks on the PostgreSQL at 127.0.0.1 (and Redis for replay); not part of `make test`.
# The overload bench runs its own throwaway PostgreSQL server (tests/bench/cluster.py).
bench: export DEBUG ?= 1
bench: $(STAMP)
	$(PY) -m tests.bench.run
	$(PY) -m tests.bench.ceiling
	$(PY) -m tests.bench.dashboard
	$(PY) -m tests.bench.replay
	$(PY) -m tests.bench.partitions
	$(PY) -m tests.bench.overload

# 30 minutes of simulator, dashboards and bulk replays; RSS growth and 5xx (tests/bench/soak.py).
soak: export DEBUG ?= 1
soak: $(STAMP)
	$(PY) -m tests.bench.soak --minutes $${SOAK_MINUTES:-30}

clean:
	rm -rf $(VENV) var
