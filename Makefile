# `make run`: set up .venv and reproduce every table and figure (dvc repro, the active params.yaml).
# `make test`: set up .venv and run the tests (`make test-slow`: the long checks it leaves out). `make lint`: ruff.  `make demo`: a quick ICL-SAM demo.
# `make real-dev`: `iclsam evaluate` on REAL_DATA (and, with REAL_DATA_3D, the 2-D sets cut from its volumes) into benchmarks/real_dev/.
# `make example`: execute notebooks/ICL-SAM_example.py into ICL-SAM_example.ipynb (commit it with its outputs).
PYTHON ?= python3.11
# a prepared folder of real images for `make demo` / `make example` (empty: synthetic only)
REAL_DATA ?= $(wildcard ../shared/data/real-dev)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-slow lint setup demo example real-dev real-dev-all
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
	ICLSAM_REAL_DATA="$(REAL_DATA)" $(BIN)/python -c "from iclsam.pipeline.notebook import run_notebook; run_notebook('notebooks/ICL-SAM_example.py', 'ICL-SAM_example.ipynb')"

test: setup
	$(BIN)/python -m pytest

# ruff: the lint rules and the format of pyproject.toml ([tool.ruff])
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# the long checks `make test` leaves out (marked slow)
test-slow: setup
	$(BIN)/python -m pytest -m slow tests

REAL_DEV_OUT := benchmarks/real_dev
# the 2-D sets cut from real volumes (iclsam slice-volumes), beside REAL_DATA's: the ten-set bench
REAL_DATA_3D ?= $(wildcard ../shared/data/real-dev-3d)
REAL_DEV_ALL := .cache/real-dev-all
real-dev-all: setup
	test -n "$(REAL_DATA)" -a -n "$(REAL_DATA_3D)" || { echo "make real-dev-all: set REAL_DATA and REAL_DATA_3D"; exit 2; }
	rm -rf $(REAL_DEV_ALL) && mkdir -p $(REAL_DEV_ALL)
	$(BIN)/iclsam slice-volumes --data "$(REAL_DATA_3D)" --out $(REAL_DEV_ALL)
	for task in "$(REAL_DATA)"/*/; do ln -s "$$(cd "$$task" && pwd)" $(REAL_DEV_ALL)/; done

real-dev: setup $(if $(REAL_DATA_3D),real-dev-all)
	test -n "$(REAL_DATA)" || { echo "make real-dev: set REAL_DATA=<a prepared folder>"; exit 2; }
	$(eval REAL_DATA := $(if $(REAL_DATA_3D),$(REAL_DEV_ALL),$(REAL_DATA)))
	mkdir -p $(REAL_DEV_OUT)
	$(BIN)/iclsam evaluate --data "$(REAL_DATA)" --m 1 4 8 --draws 3 --queries 16 --icl features universeg \
		--cache-dir .cache/embeddings --out $(REAL_DEV_OUT)/summary.csv --scores $(REAL_DEV_OUT)/scores.csv \
		> $(REAL_DEV_OUT)/.summary.md && mv $(REAL_DEV_OUT)/.summary.md $(REAL_DEV_OUT)/summary.md
	$(BIN)/iclsam evaluate --data "$(REAL_DATA)" --m 1 4 8 --draws 3 --queries 16 --icl features --box-confidence none \
		--cache-dir .cache/embeddings --out $(REAL_DEV_OUT)/paper_boxes.csv > $(REAL_DEV_OUT)/.paper_boxes.md && mv $(REAL_DEV_OUT)/.paper_boxes.md $(REAL_DEV_OUT)/paper_boxes.md
	$(BIN)/iclsam evaluate --data "$(REAL_DATA)" --m 1 4 8 --draws 3 --queries 16 --icl features --fusion auto \
		--cache-dir .cache/embeddings --out $(REAL_DEV_OUT)/fusion_auto.csv > $(REAL_DEV_OUT)/.fusion_auto.md && mv $(REAL_DEV_OUT)/.fusion_auto.md $(REAL_DEV_OUT)/fusion_auto.md
	$(BIN)/iclsam evaluate --data "$(REAL_DATA)" --m 4 --draws 3 --queries 16 --icl features --annotation mask box point \
		--cache-dir .cache/embeddings --out $(REAL_DEV_OUT)/weak_context.csv --scores $(REAL_DEV_OUT)/weak_context_scores.csv \
		> $(REAL_DEV_OUT)/.weak_context.md && mv $(REAL_DEV_OUT)/.weak_context.md $(REAL_DEV_OUT)/weak_context.md
