# Two commands do everything from a fresh clone:
#   make run    install into .venv (first time) and run the quickstart scenario
#   make test   install into .venv (first time), lint, type-check and run the test suite
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data/ml-100k
TORCH  ?= 2.13.0

.PHONY: run test lint pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first (sentence-transformers would otherwise pull a CUDA one).
	$(PY) -m pip install --quiet torch==$(TORCH)
	# llama-cpp-python compiles llama.cpp from source the first time (~9 min on 2 cores).
	$(PY) -m pip install --quiet -e '.[dev,report]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/recarena run scenarios/quickstart.yaml $(ARGS)

test: lint pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/overhead.py --data $(DATA)
	$(PY) bench/offline_eval.py --data $(DATA)
	$(PY) bench/memory.py
	$(PY) bench/local_model.py
	$(PY) bench/alignment.py --data $(DATA)
	$(PY) bench/analysis.py --data $(DATA)

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache *.egg-info
