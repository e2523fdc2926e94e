# `make migrate` and `make test` are the two commands; everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PKGS := models repositories migrations core

.PHONY: install migrate test unit integration lint typecheck db-start db-stop db-status db-env bench demo clean mutation reliability sam

# constraints.txt: the versions the suite last passed with (regenerate: make constraints).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with the project and its dev tools (versions from constraints.txt)

migrate: $(STAMP)  ## upgrade the table to head (starts a local DynamoDB if no endpoint is set)
	$(BIN)/python -m migrations upgrade head

test: $(STAMP)  ## lint, type-check, then every test (unit on moto, the rest on DynamoDB Local)
	$(BIN)/python -m ruff check $(PKGS) tests benchmarks examples
	$(BIN)/python -m mypy --strict $(PKGS)
	$(BIN)/python -m pytest -n auto
	$(BIN)/python -m migrations export --format cloudformation -o build/templates/cloudformation.json
	$(BIN)/python -m migrations export --format sam -o build/templates/sam.json
	$(BIN)/cfn-lint --non-zero-exit-code error build/templates/cloudformation.json build/templates/sam.json

unit: $(STAMP)  ## the unit tests only (on moto: no DynamoDB Local, no Java)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)  ## ruff and mypy --strict, no tests
	$(BIN)/python -m ruff check $(PKGS) tests benchmarks examples
	$(BIN)/python -m mypy --strict $(PKGS)

db-start: $(STAMP)  ## start (or reuse) the persistent local DynamoDB under .local/
	$(BIN)/python -m core.localdb start

db-stop: $(STAMP)  ## stop the persistent local DynamoDB (its data stays in .local/)
	$(BIN)/python -m core.localdb stop

db-status: $(STAMP)  ## say whether the persistent local DynamoDB runs, and where
	$(BIN)/python -m core.localdb status

db-env: $(STAMP)  ## start the local DynamoDB if needed and print export lines for an app's shell
	@$(BIN)/python -m core.localdb env

# Not part of `make test` (a few minutes): client CPU against a canned DynamoDB (recorded answers served by a
# process of its own on 127.0.0.1), plus a live section on DynamoDB Local. Installs the bench extra (pydynox) once.
# BENCH_ARGS passes flags to it (--rounds N, --quick, --profile).
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)  ## time the data layer against bare PynamoDB, raw botocore, boto3 and pydynox
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

demo: $(STAMP)  ## walk through every access pattern against the local DynamoDB
	$(BIN)/python -m examples.walkthrough

# Not part of `make test` (installs the SAM CLI into .local/sam-cli once, a few minutes): sam validate --lint
# and sam build of the SAM export, then a request served by the built artifact alone on DynamoDB Local.
SAM_VENV := .local/sam-cli
$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet "aws-sam-cli>=1.130,<2"

sam: $(STAMP) $(SAM_VENV)/bin/sam  ## validate and build the SAM export with the SAM CLI, and serve a request from the artifact
	SAM_CLI=$(CURDIR)/$(SAM_VENV)/bin/sam $(BIN)/python -m pytest -m sam tests/integration/test_sam_app_local.py

# Not part of `make test` (slow: minutes per file). Narrow it: make mutation PATHS=core/client.py,repositories/cache.py
# JOBS copies run side by side; MUTATION_ARGS passes more flags to tests/mutation/mutation.py (--time-limit, --drop, --keep).
PATHS ?=
JOBS ?= 2
mutation: $(STAMP)  ## mutmut over core/, models/, repositories/ against the unit tests; prints the score and survivors
	$(BIN)/python tests/mutation/mutation.py --paths '$(PATHS)' --jobs $(JOBS) $(MUTATION_ARGS)

# Not part of `make test` (a few minutes): faults at botocore's before-send on every write path, concurrent
# processes SIGKILLed mid-write and mid-backfill, hostile input, attacks; prints one table, exits 1 on any false
# outcome. The fault phases (1, 4) run on each transport/API side by side: lean, botocore
# (DATALAYER_TRANSPORT=botocore) and async (repositories.asyncio, plus tasks cancelled mid-write).
# RELIABILITY_ARGS passes flags to it (--seed, --rounds, --workers, --worker-ops, --kills, --phases,
# --transports lean,botocore,async, --jobs).
reliability: $(STAMP)  ## the reliability suite against DynamoDB Local (python -m tests.reliability)
	$(BIN)/python -m tests.reliability $(RELIABILITY_ARGS)

clean:  ## remove .venv and the tools' caches (the local DynamoDB under .local/ stays)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info

# Every target with a `##` comment, in the order of this file.
.PHONY: help
help:  ## list the targets with what each does
	@awk -F ':.*## ' '/^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(firstword $(MAKEFILE_LIST))
