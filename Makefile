# ClusterCockpit for Python — the README's commands.
#   make demo   set everything up and run the demo site on http://localhost:8080
#   make test   run every test (core and plugins) in one pytest run
#   make bench  run the benchmarks (hot paths against their physical limits)
#   make lint   ruff

SHELL := /bin/bash
PYTHON ?= python3
# Use uv from PATH, else install it into a local tools venv (only python3 is assumed).
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
STAMP := $(VENV)/.synced
PYTEST_ARGS ?=

.PHONY: all demo test bench lint assets sync clean format

all: test

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

$(STAMP): $(UV) pyproject.toml uv.lock plugins/*/pyproject.toml
	$(UV) sync --frozen --all-packages --all-extras --group dev
	@touch $(STAMP)

sync: $(STAMP)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

web/vendor/.built: web/node_modules/.package-lock.json web/build_assets.py
	$(PYTHON) web/build_assets.py
	@touch web/vendor/.built

assets: web/vendor/.built

test: sync assets
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: sync
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

format: sync
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

bench: sync assets
	$(UV) run --frozen python -m benchmarks $(BENCH)

demo: sync assets
	$(UV) run --frozen python -m cc_core.demo_launcher

clean:
	rm -rf $(VENV) .tools web/node_modules web/vendor
