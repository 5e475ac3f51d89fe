# Two commands do everything on a fresh machine with Python 3.11+ (and make):
#   make experiments   every experiment of the chapter, into runs/experiments (ignored by git),
#                      compared with the recorded results/ (make results regenerates those)
#   make test          lint, format check, type check, the docs build and the test suite
# Each creates the virtual environment .venv and installs the project into it when needed
# (again whenever pyproject.toml changes). PyTorch is pinned to its CPU build.
# make test-floor runs the suite at the lowest versions pyproject.toml allows (.ci/floor.txt).
# make docs builds the documentation site into site/.

PYTHON ?= python3
VENV ?= .venv
FLOOR_VENV ?= .venv-floor
PIP_INSTALL = pip install --quiet torch==2.13.0 -e ".[test,torch,experiments,bench,xarray,docs]"

.PHONY: experiments results test test-floor docs clean

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	. $(VENV)/bin/activate && $(PIP_INSTALL)
	$(VENV)/bin/python -c "import torch; assert '+cu' not in torch.__version__, torch.__version__"
	touch $@

experiments: $(VENV)/installed
	$(VENV)/bin/python -m experiments --out runs/experiments --compare results

results: $(VENV)/installed
	$(VENV)/bin/python -m experiments --out results

test: $(VENV)/installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir "$$(mktemp -d)"
	$(VENV)/bin/python -m pytest

docs: $(VENV)/installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

$(FLOOR_VENV)/installed: pyproject.toml .ci/floor.txt
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --upgrade pip
	. $(FLOOR_VENV)/bin/activate && $(PIP_INSTALL) -c .ci/floor.txt
	touch $@

test-floor: $(FLOOR_VENV)/installed
	$(FLOOR_VENV)/bin/python -m pytest -p no:cacheprovider

clean:
	rm -rf $(VENV) $(FLOOR_VENV)
