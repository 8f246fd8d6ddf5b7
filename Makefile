# Everything a new user needs: `make demo` and `make test` set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

# The developer commands ask for the development settings (config/dev_settings.py)
# explicitly; `make serve` is production and refuses to start without its values.
DEV := DJANGO_SETTINGS_MODULE=config.dev_settings

.PHONY: help install test test-host lint demo demo-all serve serve-dev migrate migrate-dev seed-dev settings-table clean

help:
	@echo "make demo   - simulated calls through the real stack: barge-in, goodbye, tools, transfer (SQLite)"
	@echo "make demo-all - every scenario, with a summary"
	@echo "make test   - the test suite"
	@echo "make test-host - the wheel installed into a new project, calls through it"
	@echo "make lint   - ruff and mypy"
	@echo "make serve  - the ASGI server on $(HOST):$(PORT) (production settings)"
	@echo "make serve-dev - the same with the development settings"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The end-to-end calls one after another at full priority, and the rest of the suite
# beside them at the lowest (`nice`; one pytest-xdist worker: a test database and a
# channel-layer prefix of its own), so no real-time call shares the CPU with another
# test; its report follows theirs. Then the calls across two server processes, on
# their own: they stall the Redis server the others use.
test: $(STAMP)
	@log=$$(mktemp); \
	$(DEV) nice -n 19 $(PY) -m pytest -n 1 --ignore=tests/e2e > $$log 2>&1 & rest=$$!; \
	trap 'kill $$rest 2>/dev/null' INT TERM; \
	$(DEV) $(PY) -m pytest tests/e2e --ignore=tests/e2e/test_processes.py; calls=$$?; \
	wait $$rest; code=$$?; cat $$log; rm -f $$log; \
	test $$calls -eq 0 -a $$code -eq 0
	$(DEV) $(PY) -m pytest tests/e2e/test_processes.py

# The distribution as a host installs it: the wheel into a fresh virtualenv, a new
# `django-admin startproject` with the README's edits, simulated calls through it.
test-host: $(STAMP)
	bash tests/host/run.sh

# The README's table of CALLBRIDGE settings, from their one definition (calls/conf.py).
settings-table: $(STAMP)
	$(PY) -m calls.conf README.md

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

migrate: $(STAMP)
	$(PY) manage.py migrate --no-input

migrate-dev: $(STAMP)
	$(DEV) $(PY) manage.py migrate --no-input

# The shop's demo customer and order: the tool and transfer scenarios call as them.
seed-dev: migrate-dev
	$(DEV) $(PY) manage.py seed_shop

demo: seed-dev
	$(DEV) $(PY) manage.py simulate_call --demo

demo-all: seed-dev
	$(DEV) $(PY) manage.py simulate_call --all

# Uvicorn: the same calls cost ~25% less server CPU than under Daphne
# (benchmarks/bench_calls.py, 40 concurrent calls). Daphne stays installed for
# runserver and for simulate_call.
# No permessage-deflate: base64 audio does not compress, and it costs CPU per frame.
UVICORN := $(VENV)/bin/uvicorn config.asgi:application --host $(HOST) --port $(PORT) \
	--lifespan on --no-access-log --ws-per-message-deflate false

# Several worker processes behind one address need what they share outside
# them: PostgreSQL (DATABASE_URL) and Redis (REDIS_URL, the channel layer that
# carries control and the live view). Without both, one process, and it says so.
# With several (SERVE_WORKERS), a stream rarely reaches the worker whose webhook
# opened its model session ahead (calls/live/preopen.py): that is off by default.
WORKERS ?= $(shell nproc)

# The admin's CSS and JS, hashed and gzipped into STATIC_ROOT; WhiteNoise serves them.
serve: migrate
	$(PY) manage.py collectstatic --no-input --verbosity 0
	@if echo "$$DATABASE_URL" | grep -q '^postgres' && [ -n "$$REDIS_URL" ]; then \
		echo "serving with $(WORKERS) worker processes (PostgreSQL and Redis shared)"; \
		SERVE_WORKERS=$(WORKERS) $(UVICORN) --workers $(WORKERS); \
	else \
		echo "serving with one process: set DATABASE_URL and REDIS_URL for several"; \
		$(UVICORN); \
	fi

serve-dev: migrate-dev
	$(DEV) $(UVICORN)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
