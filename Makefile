# Two commands do everything on a fresh Debian or Ubuntu machine:
#   make demo   set up what is missing, start a throwaway directory, run the tool on it
#   make test   set up what is missing, run the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
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
	$(PY) -m pytest -q

# The suite again on later calendars (faketime shifts the tests and their slapd together):
# 400 and 800 days ahead, and from a 29 February (the "@" form keeps the clock running);
# tests/faketime_support.py says what libfaketime changes in the test process.
test-later-dates: setup
	faketime -f +400d $(PY) -m pytest -q
	faketime -f +800d $(PY) -m pytest -q
	faketime -f '@2028-02-29 00:00:00' $(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check umacct tests bench
	$(VENV)/bin/ruff format --check umacct tests bench
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
