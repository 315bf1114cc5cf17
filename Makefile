# Two commands for a newcomer: `make demo` and `make test`.
# Both bootstrap .venv from nothing; the stamp file makes later runs instant.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# solc (compiler), anvil (local Ethereum node) and eslint come from the npm registry.
NODE_STAMP := node_modules/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

demo: $(STAMP) $(NODE_STAMP)
	$(BIN)/shomei demo

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	node_modules/.bin/eslint .

test: lint $(NODE_STAMP)
	$(BIN)/pytest

bench: $(STAMP) $(NODE_STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev,bench]"
	$(BIN)/python bench/credentials.py
	$(BIN)/python bench/merkle.py
	$(BIN)/python bench/anchor.py
	$(BIN)/python bench/issuer_http.py
	$(BIN)/python bench/verifier_http.py

clean:
	rm -rf $(VENV) node_modules build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
