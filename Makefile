# Everything a new user needs: `make demo` and `make test` set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install test lint demo demo-all serve migrate clean

help:
	@echo "make demo   - simulated calls with barge-in through the real stack (SQLite)"
	@echo "make demo-all - every scenario, with a summary"
	@echo "make test   - the test suite"
	@echo "make lint   - ruff and mypy"
	@echo "make serve  - the ASGI server on $(HOST):$(PORT)"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

migrate: $(STAMP)
	$(PY) manage.py migrate --no-input

demo: migrate
	$(PY) manage.py simulate_call --demo

demo-all: migrate
	$(PY) manage.py simulate_call --all

# Uvicorn: the same calls cost ~25% less server CPU than under Daphne
# (benchmarks/bench_calls.py, 40 concurrent calls). Daphne stays installed for
# runserver and for simulate_call.
# No permessage-deflate: base64 audio does not compress, and it costs CPU per frame.
serve: migrate
	$(VENV)/bin/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --lifespan off \
		--no-access-log --ws-per-message-deflate false

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
