# The two commands the README promises: `make demo` and `make test`.
# Both build .venv on first use, so a fresh machine needs only Python 3.11+ and git.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/certgate demo --data-dir .demo

lint: $(STAMP)
	$(BIN)/ruff check gateway pki policies tests
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python tests/perf/bench.py

clean:
	rm -rf $(VENV) .demo build *.egg-info
