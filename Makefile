# Two commands do everything on a fresh Debian or Ubuntu machine:
#   make demo   set up what is missing, start a throwaway directory, run the tool on it
#   make test   set up what is missing, run the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The suite runs in parallel (pytest-xdist): each worker has its own test slapd, and the
# tests wait on their directory, relay and web server often enough that four workers finish
# in less than half the time of one, even on two cores.
TEST_WORKERS ?= 4
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS)
STAMP := $(VENV)/.umacct-installed

.PHONY: setup system venv demo test test-later-dates lint bench clean

setup: system venv

system:
	@scripts/ensure-system-packages

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: setup
	@scripts/demo

test: setup
	$(PYTEST)

# The suite again on later calendars (faketime shifts the tests and their slapd together):
# from a 29 February more than a year ahead (the "@" form keeps the clock running) and 800
# days ahead; tests/faketime_support.py says what libfaketime changes in the test process.
test-later-dates: setup
	faketime -f '@2028-02-29 00:00:00' $(PYTEST)
	faketime -f +800d $(PYTEST)

lint: venv
	$(VENV)/bin/ruff check umacct tests bench
	$(VENV)/bin/ruff format --check umacct tests bench
	$(VENV)/bin/mypy

bench: setup
	@scripts/ensure-bench-tools
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
