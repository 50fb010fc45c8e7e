# The two commands a newcomer needs: `make run` (the app) and `make test` (the tests).
SHELL := /bin/bash
PY := .venv/bin/python
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: run install install-dev test lint format ingest bench

run:  ## install, ingest if empty, start Label Studio and the local model as needed, serve the app
	@scripts/run.sh

install:
	@scripts/bootstrap.sh app

install-dev:
	@scripts/bootstrap.sh dev

test: install-dev  ## lint, then every test (real Chroma, Label Studio, local LLM and browser)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format:
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

ingest: install
	$(PY) ingest.py

bench: install-dev  ## speed and quality figures (needs ../shared)
	$(PY) bench/ingest.py
	$(PY) bench/retrieval.py
	$(PY) bench/answer.py
	$(PY) bench/judge.py
	$(PY) bench/feedback.py
