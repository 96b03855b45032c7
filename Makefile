# leakyjax: `make test` and `make demo` set themselves up (a .venv with pip) on a
# fresh machine that has only Python >= 3.10 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
PYTEST_WORKERS ?= 2

.PHONY: test demo lint format bench bench-quick clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest -q -n $(PYTEST_WORKERS)

demo: $(STAMP)
	$(PY) -m leakyjax compare

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench-quick: $(STAMP)
	$(PY) -m benchmarks.bench_activations --quick
	$(PY) -m benchmarks.bench_train_step --quick

clean:
	rm -rf $(VENV) build dist *.egg-info
