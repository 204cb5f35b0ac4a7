# The commands people run; CI calls the same targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
# Python 3.13 is the Lambda runtime: take it from pyenv when it is there, else from PATH.
PYTHON313 ?= $(shell PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null || command -v python3.13)
STAMP := $(VENV)/.installed
# The venv's bin first, so that sam build finds python3.13 there; no SAM telemetry leaves the machine.
export PATH := $(abspath $(BIN)):$(PATH)
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1
export PYTHONPATH := $(abspath layers/adapters):$(abspath functions):$(abspath local)

.PHONY: help venv lock lock-check browser run test lint typecheck validate scan build bench pytest invoke put-events openapi stats clean

help:
	@echo "make run     the whole system on localhost (moto, partner sandboxes, HTTP gateway, queue pump)"
	@echo "make test    every check: ruff, mypy, sam validate --lint, sam build, pytest with coverage (installs Chromium)"
	@echo "make build   sam build (python3.13, arm64) and the built layer's size"
	@echo "make scan    cfn-lint with the serverless rules, and checkov, on template.yaml"
	@echo "make bench   sam build, then the performance benchmark: ratios against baselines of the same run"
	@echo "make invoke FUNCTION=LeadIntakeFunction EVENT=events/lead_intake/post_valid.json"
	@echo "make put-events EVENT=events/licence_issuance/licence_requested.json   (onto the bus of a running make run)"
	@echo "make lock    re-pin every dependency with hashes after changing a requirements*.txt (make lock-check: current?)"
	@echo "make openapi regenerate the HTTP API's OpenAPI document (functions/api_docs/openapi.json) from the functions"
	@echo "make stats   where the code stands against issue 19's size targets (prints, never fails)"
	@echo ".venv/bin/hub --help   the operators' command line (dlq, events, invoke, local, secrets; --stage for AWS)"

# Each *.txt names what we ask for (top-level pins); its lock (make lock) pins everything with hashes, and every venv
# and the layer are installed from the locks alone (--require-hashes).
LOCKS := layers/adapters/requirements.txt:layers/adapters/requirements.lock requirements-dev.txt:requirements-dev.lock \
	requirements-scan.txt:requirements-scan.lock
UV_COMPILE = $(BIN)/uv pip compile --quiet --generate-hashes --universal --python-version 3.13 --custom-compile-command "make lock"

$(STAMP): requirements-dev.lock layers/adapters/requirements.lock pyproject.toml
	@test -n "$(PYTHON313)" || { echo "python3.13 not found (pyenv install 3.13.0)"; exit 1; }
	@test -x $(BIN)/python3.13 || $(PYTHON313) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	@# The project itself, editable, for .venv/bin/hub (setuptools is pinned in requirements-dev.txt).
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

venv: $(STAMP)

# Re-pin after changing a requirements*.txt: versions already locked stay unless the inputs need others
# (UPGRADE=1 takes the newest allowed).
lock: $(STAMP)
	@for pair in $(LOCKS); do $(UV_COMPILE) $(if $(UPGRADE),--upgrade) "$${pair%%:*}" -o "$${pair##*:}" || exit 1; done

# CI: each lock is what `make lock` would write now (it resolves against the index, so it needs the network).
lock-check: $(STAMP)
	@for pair in $(LOCKS); do \
	  copy=$$(mktemp); cp "$${pair##*:}" "$$copy"; \
	  $(UV_COMPILE) "$${pair%%:*}" -o "$$copy" >/dev/null || exit 1; \
	  diff -u "$${pair##*:}" "$$copy" >/dev/null || { echo "$${pair##*:} is stale: run make lock"; rm -f "$$copy"; exit 1; }; \
	  rm -f "$$copy"; \
	done; echo "locks are current"

# checkov pins boto3, packaging and others far below requirements-dev.txt, so it gets a small venv of its own.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
$(SCAN_STAMP): requirements-scan.lock
	@test -n "$(PYTHON313)" || { echo "python3.13 not found (pyenv install 3.13.0)"; exit 1; }
	@test -x $(SCAN_VENV)/bin/python3.13 || $(PYTHON313) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-scan.lock
	@touch $@

# LISTEN=0.0.0.0 lets a container reach the stack (make run LISTEN=0.0.0.0 ADVERTISE=host.docker.internal).
run: $(STAMP)
	$(BIN)/hub local run $(if $(LISTEN),--host $(LISTEN)) $(if $(ADVERTISE),--advertise $(ADVERTISE))

invoke: $(STAMP)
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<logical id> EVENT=<file>"; exit 2; }
	$(BIN)/hub local invoke $(FUNCTION) $(EVENT)

put-events: $(STAMP)
	@test -n "$(EVENT)" || { echo "usage: make put-events EVENT=<file>"; exit 2; }
	$(BIN)/hub local put-events $(EVENT)

openapi: $(STAMP)
	$(BIN)/hub local openapi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy functions layers/adapters local

validate: $(STAMP)
	$(BIN)/sam validate --lint

# Suppressions live with their reasons: checks skipped for every resource of a kind in .checkov.yaml, per-resource
# ones in template.yaml (Metadata: cfn-lint / checkov). No network: --skip-download.
scan: $(STAMP) $(SCAN_STAMP)
	$(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	@# Checkov does not know Fn::ForEach (the alarms): it scans the template with the loops unrolled.
	$(BIN)/hub local expand template.yaml .aws-sam/scan-template.json
	$(SCAN_VENV)/bin/checkov --file .aws-sam/scan-template.json --framework cloudformation --compact --quiet --skip-download

build: $(STAMP)
	$(BIN)/sam build
	@$(BIN)/hub local layer-size .aws-sam/build/AdaptersLayer

# The browser tests need a Chromium: Debian's when it is there or root can install it, else Playwright's own build
# (tests/browser/conftest.py takes whichever exists). One line and a failure when neither can be had.
CHROMIUM := /usr/bin/chromium
browser: $(STAMP)
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium from the OS packages (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
	    && exit 0; \
	fi; \
	echo "installing Playwright's chromium (playwright install chromium)"; \
	$(BIN)/playwright install chromium >/dev/null 2>&1 && exit 0; \
	echo "no Chromium for the browser tests: run as root on Debian (apt-get install chromium) or let playwright install chromium reach its CDN"; \
	exit 1

pytest: $(STAMP) browser
	@# --durations: the slowest tests, so that the suite's wall time (issue 19) has names attached.
	$(BIN)/pytest -n auto --dist loadfile --cov --cov-report=term --durations=25

bench: build
	$(BIN)/python -m bench.run
	$(BIN)/python bench/hot_campaign.py
	$(BIN)/python -m bench.time_budgets

test: lock-check lint typecheck validate scan build pytest

# Standard library only, so it needs no venv (and installs none).
stats:
	@python3 scripts/stats.py

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage
