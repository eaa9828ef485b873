# Two set-up commands for users: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The hot path is compiled with mypyc (setup.py): a change to its sources rebuilds it.
COMPILED := $(wildcard src/nutcracker/core/*.py) src/nutcracker/exchange/matching.py src/nutcracker/backtest/runner.py

.PHONY: demo test check bench build clean

$(STAMP): pyproject.toml setup.py $(COMPILED)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	NUTCRACKER_PURE_PYTHON=1 $(BIN)/python -m pip install --quiet -e '.[dev]'
	# then compile in this venv: mypyc sees the same numpy types as `make check`
	$(BIN)/python -m pip install --quiet --no-build-isolation --no-deps -e .
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
	rm -f src/*.so src/nutcracker/*/*.so src/nutcracker/_compiled.json
