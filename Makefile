# One entry point per job; each makes sure .venv exists and holds the project first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# The e2e tests mostly wait (Temporal timers, emulated rollouts): three processes on two cores halve the run.
# Each test file stays on one process (module-scoped worlds); the real testbed's tests run in two queues
# (tests/conftest.py). PYTEST_WORKERS=0 runs everything in one.
PYTEST_WORKERS ?= 3
# Real components (Go, from the module proxy) are built into this cache, keyed by component and version.
PEERSYNC_TESTBED_CACHE ?= $(HOME)/.cache/peersync-testbed
# `make demo TESTBED=real`: the same mission on the real provider, nodes and control plane.
TESTBED ?= emulated

.PHONY: install demo test bench lint docs clean testbed

install: $(STAMP)

# Reinstall only when the dependency declarations change, so repeated `make` calls are fast.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[devnet,dev]'
	@touch $(STAMP)

demo: $(STAMP) testbed
	$(BIN)/python -m devnet.demo --state-dir .devnet --testbed $(TESTBED)

test: $(STAMP) testbed
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Pinned builds of etcd, Kubernetes, kwok, CometBFT and the ICS provider (testbed/README.md); needs Go only.
testbed:
	PEERSYNC_TESTBED_CACHE=$(PEERSYNC_TESTBED_CACHE) $(PYTHON) testbed/build.py

bench: $(STAMP)
	$(BIN)/python -m bench

# Generated documentation (a test fails when the committed copy is stale).
docs: $(STAMP)
	$(BIN)/python -m workers.settings_reference > docs/settings.md

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .devnet .pytest_cache .ruff_cache .hypothesis
