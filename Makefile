# geocontext: `make demo` and `make test` work as the first command on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/src

.PHONY: setup demo test bench clean help

help:  ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv/ and install requirements.txt (quick when already done)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade-strategy only-if-needed -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: setup  ## build the synthetic demo competition, run the kit on it, print its score
	$(PY) -m geocontext demo --work work/demo

test: setup  ## run the test suite
	$(PY) -m pytest

clean:  ## remove work/ and build/ outputs (keeps .venv/)
	rm -rf work build
