# The two commands of the README: `make demo` runs the gate end to end, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test test-all check bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/.installed
	DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/promotion-gate demo

# `make test` installs Chromium (apt, as root or with sudo) and starts PostgreSQL where it can
# (.ci/services); the tests that still lack a service skip with the reason. `make test-all` (what
# CI runs) is the same suite, failing instead of skipping.
test: $(BIN)/.installed
	.ci/services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all:
	PROMOTION_GATE_TEST_REQUIRE_SERVICES=1 $(MAKE) test

check: $(BIN)/.installed
	$(BIN)/promotion-gate check examples/repo --system support-assistant --now 2026-11-24T12:00:00Z

bench: $(BIN)/.installed
	$(BIN)/python bench/bench_gate.py

clean:
	rm -rf $(VENV) audit-store .pytest_cache
