# Harmony developer commands. `make demo` and `make test` work on a fresh machine with only
# Python 3.11+: they create .venv and install into it on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed
PYTEST_ARGS ?=

.PHONY: demo test run zipapp fmt lint types docs docs-verify bench release-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(RUNTIME_STAMP)

demo: $(RUNTIME_STAMP)          ## run Harmony against the built-in fake Spotify and slskd
	$(BIN)/harmony demo

test: $(DEV_STAMP)              ## run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

run: $(RUNTIME_STAMP)           ## run the service with ./harmony.toml if present
	$(BIN)/harmony serve $(if $(wildcard harmony.toml),--config harmony.toml,)

zipapp: $(DEV_STAMP)            ## build dist/harmony.pyz
	$(BIN)/python build.py

fmt: $(DEV_STAMP)
	$(BIN)/ruff format harmony tests tools build.py
	$(BIN)/ruff check --fix harmony tests tools build.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check harmony tests tools build.py
	$(BIN)/ruff format --check harmony tests tools build.py

types: $(DEV_STAMP)
	$(BIN)/mypy harmony

docs: $(RUNTIME_STAMP)          ## regenerate the generated parts of docs/ (and the packaged copy of openapi.json)
	$(BIN)/harmony config docs > docs/configuration.md
	$(BIN)/harmony config sample > docs/harmony.sample.toml
	cp docs/openapi.json harmony/openapi.json
	$(BIN)/python tools/route_drift.py --write

docs-verify: $(DEV_STAMP)       ## fail when docs/ is out of date with the code, or names what is not there
	$(BIN)/python tools/docs_reference_guard.py
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_docs.py

bench: $(DEV_STAMP)             ## run every benchmark at full size; reports and summary.md in reports/bench/
	$(BIN)/python tools/bench/run.py

release-check: $(DEV_STAMP)     ## the release gate (docs/operations/release.md); log in reports/release-check.md
	$(BIN)/python tools/release_check.py

clean:
	rm -rf $(VENV) dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache
