# leakyjax: `make test` and `make demo` set themselves up (a .venv with pip) on a
# fresh machine that has only Python >= 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
PYTEST_WORKERS ?= 2
export NO_MKDOCS_2_WARNING := 1

.PHONY: test test-fast demo lint format typecheck docs docs-check docs-serve results \
	results-slow bench bench-quick sdist clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Everything, what CI runs: ruff, pyright (basic), the package page, then every test,
# doctest, README and docs code block, the docs site in strict mode (any warning fails:
# tests/test_docs_site.py) and the results freshness check (tests/test_results.py).
test: $(STAMP) lint typecheck
	$(PY) -m tools.pypi_readme --check
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

# The quick tier (about 2 minutes on 2 cores): the table-driven exactness tests of every
# activation, the registry, the initialisers and the packaging, without the slow marker.
FAST_TESTS := tests/test_table.py tests/test_activations.py tests/test_registry.py \
	tests/test_initializers.py tests/test_packaging.py
test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) -p no:randomly -m "not slow" $(FAST_TESTS)

demo: $(STAMP)
	$(PY) -m leakyjax compare

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: $(STAMP)
	$(VENV)/bin/basedpyright --pythonpath $(PY)

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

# The strict build alone, warnings shown (`make test` runs it as a test).
docs-check: $(STAMP)
	$(PY) -m pytest -q -p no:randomly tests/test_docs_site.py

docs-serve: $(STAMP)
	$(VENV)/bin/mkdocs serve

# Rerun every results file the docs quote (minutes), copy their figures into docs/ and
# re-render the tables; results-slow adds the timing benchmarks (use a quiet machine).
results: $(STAMP)
	$(PY) -m tools.render_results --run
	$(PY) -m tools.pypi_readme

results-slow: $(STAMP)
	$(PY) -m tools.render_results --run --slow
	$(PY) -m tools.pypi_readme

bench-quick: $(STAMP)
	$(PY) -m benchmarks.bench_activations --quick
	$(PY) -m benchmarks.bench_train_step --quick

sdist: $(STAMP)
	$(PY) -m build --sdist --wheel --outdir dist .

clean:
	rm -rf $(VENV) build dist site *.egg-info
