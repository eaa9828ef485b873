# Two set-up commands for users: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The core compiled with mypyc (setup.py): a change to these sources rebuilds it.
CORE := $(wildcard src/nutcracker/core/*.py)

.PHONY: demo test check bench build clean

$(STAMP): pyproject.toml setup.py $(CORE)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

build: $(STAMP)

demo: $(STAMP)
	$(BIN)/nutcracker demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-profile=ci

check: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/backtest.py

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis
	rm -f src/*.so src/nutcracker/core/*.so src/nutcracker/core/_compiled.json
