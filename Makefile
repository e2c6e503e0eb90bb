# `make run`: set up .venv and reproduce every table and figure (dvc repro, the active params.yaml).
# `make test`: set up .venv and run the tests.  `make demo`: a quick ICL-SAM demo.
# `make example`: execute notebooks/ICL-SAM_example.py into ICL-SAM_example.ipynb (commit it with its outputs).
PYTHON ?= python3.11
# a prepared folder of real images for `make demo` / `make example` (empty: synthetic only)
REAL_DATA ?= $(wildcard ../shared/data/real-dev)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup demo example
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[pipeline,test]"
	touch $@

run: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

demo: setup
	ICLSAM_REAL_DATA="$(REAL_DATA)" $(BIN)/iclsam demo

example: setup
	ICLSAM_REAL_DATA="$(REAL_DATA)" $(BIN)/python -c "from iclsam.dvc_stages import run_notebook; run_notebook('notebooks/ICL-SAM_example.py', 'ICL-SAM_example.ipynb')"

test: setup
	$(BIN)/python -m pytest
