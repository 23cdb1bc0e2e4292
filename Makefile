# Two commands for people and CI alike (see README.md):
#
#   make report   set up .venv, audit the bundled sample offline
#   make test     set up .venv with the test extras, run the test suite
#
# The virtual environment is made once; it is brought up to date only when
# pyproject.toml changes (the stamp files below record the last install).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
KIT    := $(VENV)/.installed-kit
EXTRAS := $(VENV)/.installed-test-app

SAMPLE_ROWS := data/sample_domains.csv
SAMPLE_ZONE := data/sample.zone
SAMPLE_OUT  := reports/sample

.DEFAULT_GOAL := help
.PHONY: help report test lab app clean

help:
	@echo "make report   audit $(SAMPLE_ROWS) offline into $(SAMPLE_OUT)/"
	@echo "make test     run the whole test suite"
	@echo "make lab      open notebooks/explore.ipynb in JupyterLab"
	@echo "make app      serve the same tool with Voila, without the code"
	@echo "make clean    remove $(VENV) and $(SAMPLE_OUT)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(KIT): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(EXTRAS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,app]"
	@touch $@ $(KIT)

report: $(KIT)
	$(BIN)/cxone-audit audit $(SAMPLE_ROWS) --zone-file $(SAMPLE_ZONE) \
	    --out $(SAMPLE_OUT)

test: $(EXTRAS)
	$(BIN)/python -m pytest

# Targets for the notebook UI (JupyterLab, Voila) belong below.

# LAB_ARGS=--allow-root when running as root (containers).
lab: $(EXTRAS)
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/explore.ipynb

app: $(EXTRAS)
	$(BIN)/voila notebooks/explore.ipynb

clean:
	rm -rf $(VENV) $(SAMPLE_OUT)
