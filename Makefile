# Every target installs what it needs (idempotently): Python packages from constraints.txt, then the data packages.
PY ?= python3
LINTED = $(wildcard src tests benchmarks)
PIP = $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt
export PYTHONUNBUFFERED = 1

.PHONY: setup data main test lint format bench

setup:
	$(PIP) -e ".[dev]"

data: setup
	$(PY) -m sparsenets data install all

# The main job: train on real data and write the report (grows toward train sparse → compact → compare → report).
main: data
	$(PY) -m sparsenets run mlp-mnist
	$(PY) -m sparsenets report runs --out report

lint: setup
	$(PY) -m ruff check $(LINTED)
	$(PY) -m ruff format --check $(LINTED)

test: data lint
	$(PY) -m pytest -q

format:
	$(PY) -m ruff check --fix $(LINTED)
	$(PY) -m ruff format $(LINTED)
