# Two commands do everything from a fresh clone:
#   make run    install into .venv (first time) and run the quickstart scenario
#   make test   install into .venv (first time), lint, type-check, check the import
#               contracts and run the test suite
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   ?= ../shared/data/ml-100k
CASCADES ?= ../shared/data/twitter-cascades
TORCH  ?= 2.13.0

.PHONY: run test lint pytest bench bench-install tune clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch first (sentence-transformers would otherwise pull a CUDA one).
	$(PY) -m pip install --quiet torch==$(TORCH)
	# Everything, so the tests cover the extras too. llama-cpp-python (the 'local' extra)
	# compiles llama.cpp from source the first time (~9 min on 2 cores).
	$(PY) -m pip install --quiet -e '.[dev,local,embeddings,report,ray]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/recarena run scenarios/quickstart.yaml $(ARGS)

test: lint pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	# Layers, SDK seams and sibling cycles ([tool.importlinter] in pyproject.toml).
	$(VENV)/bin/lint-imports

pytest: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/overhead.py --data $(DATA)
	$(PY) bench/offline_eval.py --data $(DATA)
	$(PY) bench/memory.py
	$(PY) bench/llm_throughput.py
	$(PY) bench/local_model.py
	$(PY) bench/alignment.py --data $(DATA) --part utility
	$(PY) bench/alignment.py --data $(DATA) --part llm
	nice -n 10 $(PY) bench/validity.py --data $(DATA)
	$(PY) bench/new_items.py --data $(DATA)
	$(PY) bench/graph_overhead.py
	$(PY) bench/trace_cli.py --data $(DATA)
	$(PY) bench/analysis.py --data $(DATA)
	$(PY) bench/tasks.py --data $(DATA) --agent none --users 40 --samples 5
	$(PY) bench/tasks.py --data $(DATA) --agent llmrank
	$(PY) bench/tasks.py --data $(DATA) --agent macrec
	nice -n 10 $(PY) bench/social.py --data $(DATA) --cascades $(CASCADES)

# Install time and size of the core and the full install (fresh venvs; needs the network).
bench-install: $(STAMP)
	$(PY) bench/install.py --torch $(TORCH)

# Refit the utility brain on tuning users and rewrite scenarios/roles/utility_user.yaml.
tune: $(STAMP)
	$(PY) bench/tune_utility.py --data $(DATA)
	# Then every taste family's calibration (scenarios/taste_calibration.json).
	$(PY) bench/tune_taste.py --data $(DATA) --feed-only --users 60 --steps 4

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache *.egg-info
