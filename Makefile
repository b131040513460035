# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@rm -rf build/demo && mkdir -p build/demo
	MLOPS_NB_HOME=$(CURDIR)/build/demo/.mlops $(BIN)/papermill --cwd build/demo \
		notebooks/quickstart.ipynb build/demo/quickstart.ipynb
	MLOPS_NB_HOME=$(CURDIR)/build/demo/.mlops $(BIN)/mlops-nb summary

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build .venv
