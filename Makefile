# Two set-up commands for users: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUILT := $(VENV)/.compiled
# The hot path is compiled with mypyc: a change to its sources rebuilds it. The list is setup.py's COMPILED.
COMPILED := $(shell sed -n '/^COMPILED = (/,/^)/s|^ *"\([a-z_/]*\)",$$|src/nutcracker/\1.py|p' setup.py)
# Targets that need no speed run uncompiled, unless a build exists: then it must be current.
CURRENT := $(STAMP) $(if $(wildcard src/nutcracker/*/*.so),$(BUILT))

.PHONY: demo test check bench build clean

# The dependencies and the package, uncompiled (quick: `make demo` on a fresh machine).
$(STAMP): pyproject.toml setup.py
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	NUTCRACKER_PURE_PYTHON=1 $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Then compiled in this venv: mypyc sees the same numpy types as `make check`.
$(BUILT): $(STAMP) $(COMPILED)
	$(BIN)/python -m pip install --quiet --no-build-isolation --no-deps -e .
	touch $(BUILT)

build: $(BUILT)

demo: $(CURRENT)
	$(BIN)/nutcracker demo

test: $(BUILT)
	$(BIN)/python -m pytest -q -p no:cacheprovider --hypothesis-profile=ci

check: $(CURRENT)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(BUILT)
	$(BIN)/python bench/decide.py
	$(BIN)/python bench/backtest.py

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache .hypothesis
	rm -f src/*.so src/nutcracker/*/*.so src/nutcracker/_compiled.json
