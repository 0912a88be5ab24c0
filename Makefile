# Two commands do everything on a fresh Debian or Ubuntu machine:
#   make demo   set up what is missing, start a throwaway directory, run the tool on it
#   make test   set up what is missing, run the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.umacct-installed

.PHONY: setup system venv demo test lint bench clean

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

lint: venv
	$(VENV)/bin/ruff check umacct tests bench
	$(VENV)/bin/ruff format --check umacct tests bench
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
