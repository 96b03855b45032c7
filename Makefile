# leakyjax: `make test` and `make demo` set themselves up (a .venv with pip) on a
# fresh machine that has only Python >= 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
PYTEST_WORKERS ?= 2
export NO_MKDOCS_2_WARNING := 1

.PHONY: test demo lint format typecheck docs docs-check docs-serve results results-slow \
	bench bench-quick sdist clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# ruff, pyright (basic), the docs site in strict mode, then the tests, doctests, README and
# docs code blocks and the results freshness check (tests/test_results.py).
test: $(STAMP) lint typecheck docs-check
	$(PY) -m tools.pypi_readme --check
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

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

docs-check: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir $$(mktemp -d)

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
