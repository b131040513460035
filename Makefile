# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# A second environment with pandas 2.x: the package supports pandas 2 and 3.
COMPAT_VENV  := build/venv-pandas2
COMPAT_STAMP := $(COMPAT_VENV)/.installed
# The parts of the suite whose behaviour depends on the pandas version.
COMPAT_TESTS := tests/test_fingerprint.py tests/test_tracking.py tests/test_magics.py \
                tests/test_drift_engine.py tests/test_drift_profile.py tests/test_drift_stattests.py \
                tests/test_drift_timeline.py tests/test_notebooks.py

# Airflow 3 in its own environment: tests/test_airflow_dag.py runs the exported DAG with `airflow dags test`.
AIRFLOW_VENV  := build/venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

.PHONY: demo test test-main test-pandas2 bench install clean postgres-binaries lab check-imports airflow-venv ab-binary

# No import circles, every arrow pointing down the layers of ARCHITECTURE.md.
check-imports:
	python3 tools/check_imports.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The sidebar is built by pip's install hook (npm install + build): a change to its sources installs again.
SIDEBAR_SOURCES := labextension/package.json labextension/package-lock.json $(wildcard labextension/src/*.ts labextension/style/*)

$(STAMP): $(BIN)/python pyproject.toml $(SIDEBAR_SOURCES)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@rm -rf build/demo && mkdir -p build/demo
	cd build/demo && MLOPS_NB_HOME=$(CURDIR)/build/demo/.mlops $(CURDIR)/$(BIN)/python $(CURDIR)/tools/demo.py

test: test-main test-pandas2

test-main: $(STAMP) postgres-binaries $(AIRFLOW_STAMP)
	$(BIN)/python tools/check_imports.py
	MLOPS_NB_REQUIRE_AIRFLOW=1 $(BIN)/python -m pytest

# The store, registry and jobs suites start a real PostgreSQL server (initdb/pg_ctl in a
# temporary folder): install Debian's binaries when missing, as .ci/run does.
postgres-binaries:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
	  { echo "make test needs PostgreSQL's server binaries: sudo apt-get install -y postgresql" >&2; exit 1; }

$(COMPAT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install -q --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install -q -e ".[dev]" "pandas>=2,<3"
	touch $(COMPAT_STAMP)

# Created once (a few minutes) and kept: the stamp changes only with this Makefile's pins.
$(AIRFLOW_STAMP):
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install -q --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install -q "apache-airflow==3.3.2" apache-airflow-providers-papermill
	touch $(AIRFLOW_STAMP)

airflow-venv: $(AIRFLOW_STAMP)

test-pandas2: $(COMPAT_STAMP)
	$(COMPAT_VENV)/bin/python -m pytest -p no:cacheprovider $(COMPAT_TESTS)

# JupyterLab with the MLOps sidebar on the registry `make demo` filled (build/demo/.mlops), rooted at the
# checkout so that the demo's notebooks (notebooks/*.ipynb) open with their runs and inferred pipeline.
lab: $(STAMP)
	@test -f build/demo/.mlops/registry.db || $(MAKE) demo
	MLOPS_NB_HOME=$(CURDIR)/build/demo/.mlops $(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) notebooks/charts.ipynb

bench: $(STAMP) ab-binary
	$(BIN)/python benchmarks/run_all.py

# benchmarks/bench_serve.py loads both servers with Apache's `ab` (Debian: apache2-utils).
ab-binary:
	@command -v ab >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null; } || \
	  { echo "make bench needs ab: sudo apt-get install -y apache2-utils" >&2; exit 1; }

clean:
	rm -rf build .venv
