# Everything a fresh clone needs: Python 3.11+, make and a C compiler. The Makefile installs the
# rest (uv, then the locked dependencies) into .tools/ and .venv/.
PYTHON ?= python3
VENV := .venv
UV := .tools/bin/uv
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Python caches compiled modules (.pyc, and pytest's rewritten test modules) unless told not to.
# Where the environment says not to (PYTHONDONTWRITEBYTECODE, as some CI images and sandboxes set),
# every process compiles all it imports again: a worker's start-up took 3.2 s of CPU instead of
# 1.3 s, and the test suite starts about 80 of them. The caches are in __pycache__/ (git-ignored).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install js-install lint typecheck test fuzz run bench bench-agent bench-cache bench-cancel bench-concurrency bench-cpu bench-e2e bench-instructions bench-store bench-stream clean console test-browser

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "graphrun needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

install: $(VENV)/.installed

# The official JS LangGraph SDK for tests/langgraph/test_js_sdk.py, exactly as tests/js/package-lock.json
# pins it. Without npm there is nothing to install, and that test skips saying so.
NPM := $(shell command -v npm 2>/dev/null)
JS_INSTALLED := tests/js/node_modules/.installed

$(JS_INSTALLED): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund
	@touch $@

js-install: $(if $(NPM),$(JS_INSTALLED))
	@$(if $(NPM),:,echo "npm not found: tests/langgraph/test_js_sdk.py will be skipped")

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

# The package, then bench/agent/, the Aegra and langgraph-runtime-pg peers, the e2e report and
# bench/concurrency.py (strict too; they import graphrun from src/, and the older bench modules they
# use are followed silently rather than checked).
typecheck: install
	$(VENV)/bin/mypy
	MYPYPATH=src $(VENV)/bin/mypy --strict --follow-imports=silent bench/agent
	MYPYPATH=src $(VENV)/bin/mypy --strict --follow-imports=silent bench/_aegra.py bench/_pg.py bench/_runtime_pg.py bench/_venv.py bench/report
	MYPYPATH=src $(VENV)/bin/mypy --strict --follow-imports=silent bench/concurrency.py bench/_held_graphs.py

test: lint typecheck js-install
	$(VENV)/bin/pytest

# The web console: console/ (React, Vite, @langchain/langgraph-sdk) built into src/graphrun/console/static/,
# which is committed and ships in the wheel, so neither users nor CI need Node. Rebuilt exactly from
# console/package-lock.json; run it after changing console/ and commit the result.
console:
	npm ci --prefix console --no-audit --no-fund
	npm run --prefix console build

# The console's tests in headless Chromium (Debian's chromium, driven by Playwright from PyPI; Playwright's
# own browser download is never used). One process: they share one `graphrun serve` per module.
test-browser: install
	GRAPHRUN_BROWSER_TESTS=1 $(VENV)/bin/pytest -n 0 tests/console

# The LangGraph API suite (tests marked `reference`) against LangGraph's own dev server; on first use
# it installs langgraph-cli[inmem] into bench/.peer-venv, as make bench does, and reuses it afterwards.
.PHONY: test-reference
test-reference: install
	$(VENV)/bin/python -c 'from bench._systems import ensure_peer; v, note = ensure_peer(); print(note); raise SystemExit(v is None)'
	GRAPHRUN_TEST_REFERENCE_VENV=$(CURDIR)/bench/.peer-venv $(VENV)/bin/pytest -m reference

# Records again what the reference dev server streams for tests/langgraph/refgraphs.py into
# tests/langgraph/captures/ (compared with graphrun's translator by test_translate.py); review the diff.
.PHONY: capture-reference
capture-reference: install
	$(VENV)/bin/python -c 'from bench._systems import ensure_peer; v, note = ensure_peer(); print(note); raise SystemExit(v is None)'
	$(VENV)/bin/python tests/langgraph/capture.py bench/.peer-venv/bin/langgraph

# The suite's schemathesis run (tests/api/test_openapi_fuzz.py) with ten times the examples.
fuzz: install
	GRAPHRUN_FUZZ_EXAMPLES=200 $(VENV)/bin/pytest -q tests/api/test_openapi_fuzz.py

run: install
	$(VENV)/bin/graphrun serve

# The whole suite; bench/e2e.py writes docs/benchmarks.md. On first use it installs LangGraph's dev
# server (langgraph-cli[inmem], from PyPI) into bench/.peer-venv and Aegra (aegra-api, with a Python
# >= 3.12 it finds, e.g. pyenv's; BENCH_AEGRA_PYTHON names one) into bench/.aegra-venv, and reuses
# them afterwards. Aegra also needs a PostgreSQL server (BENCH_AEGRA_POSTGRES_URL, default
# postgresql://postgres@127.0.0.1:5432/postgres) on which it may create databases.
bench: install
	$(VENV)/bin/python bench/cache.py
	$(VENV)/bin/python bench/e2e.py

bench-cache: install
	$(VENV)/bin/python bench/cache.py

bench-cancel: install
	$(VENV)/bin/python bench/cancel.py

# How many waiting conversations one worker process holds (memory, loop lag, throughput) and what
# CPU-bound runs do to each other under each admission policy (bench/concurrency.py, issue #18;
# decision 0019). Prints a Markdown report; about 15 minutes.
bench-concurrency: install
	$(VENV)/bin/python bench/concurrency.py

bench-e2e: install
	$(VENV)/bin/python bench/e2e.py

# CPU per completed run of graphrun serve (native and LangGraph client paths) and of raw LangGraph, in
# one run (bench/cpu.py; --src DIR compares another source tree, --together serves them at once).
bench-cpu: install
	$(VENV)/bin/python bench/cpu.py

# Instructions per completed run of the API and worker processes, counted by callgrind (needs
# valgrind): steadier than CPU time on a shared machine, for before/after comparisons.
bench-instructions: install
	$(VENV)/bin/python bench/instructions.py

# The agent-load bench (issue #18, bench/agent/): graphrun serve, graphrun api + workers on PostgreSQL,
# langgraph dev, Aegra and langgraph-api on langgraph-runtime-pg serving one tool-calling agent
# against a fake OpenAI server; 100 and 1,000 conversations and a reconnect storm; writes
# docs/benchmarks-agent.md and .json. About 13 minutes; BENCH_QUICK=1 is a smoke test (20/100
# conversations). Adds langchain-openai to the peers' venvs.
bench-agent: install
	$(VENV)/bin/python -m bench.agent

bench-store: install
	$(VENV)/bin/python bench/store.py

bench-stream: install
	$(VENV)/bin/python bench/stream.py

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache tests/js/node_modules console/node_modules
