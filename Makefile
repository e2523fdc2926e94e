# `make migrate` and `make test` are the two commands; everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PKGS := models repositories migrations core

.PHONY: install migrate test unit integration lint typecheck db-start db-stop db-status bench demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the project and its dev tools

migrate: $(STAMP)  ## upgrade the table to head (starts a local DynamoDB if no endpoint is set)
	$(BIN)/python -m migrations upgrade head

test: $(STAMP)  ## lint, type-check, then every test (unit on moto, the rest on DynamoDB Local)
	$(BIN)/python -m ruff check $(PKGS) tests benchmarks examples
	$(BIN)/python -m mypy --strict $(PKGS)
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)
	$(BIN)/python -m ruff check $(PKGS) tests benchmarks examples
	$(BIN)/python -m mypy --strict $(PKGS)

db-start: $(STAMP)  ## start (or reuse) the persistent local DynamoDB under .local/
	$(BIN)/python -m core.localdb start

db-stop: $(STAMP)
	$(BIN)/python -m core.localdb stop

db-status: $(STAMP)
	$(BIN)/python -m core.localdb status

bench: $(STAMP)
	$(BIN)/python -m benchmarks

demo: $(STAMP)
	$(BIN)/python -m examples.walkthrough

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
