# The two entry points of the README. Each creates .venv on first use and
# reinstalls when the dependency lists change.
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: dashboard test

dashboard: $(VENV)/.runtime-installed
	$(VENV)/bin/opml dashboard

test: $(VENV)/.test-installed
	$(PYTHON) -m pytest

$(VENV)/.runtime-installed: pyproject.toml requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.runtime-installed requirements-test.txt
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $@
