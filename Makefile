# `make run`: set up .venv and run the main job.  `make test`: set up .venv and run the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[pipeline,test]"
	touch $@

run: setup
	$(BIN)/iclsam demo

test: setup
	$(BIN)/python -m pytest
