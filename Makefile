# One command to set up and run the main job, one to set up and pass the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test clean

$(BIN)/hpo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build; an open range could pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/hpo

setup: $(BIN)/hpo

demo: setup
	$(BIN)/hpo demo

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) hpo-runs .hpo-cache
