# geocontext: `make demo` and `make test` work as the first command on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNELS_OUT ?= build/kernels
export PYTHONPATH := $(CURDIR)/src

.PHONY: setup demo test bench clean help kernels push dataset submit layout

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

# As root, without chromium and chromedriver, the report test installs Debian's chromium and chromium-driver
# system-wide with apt-get (tests/pipeline/reports/browser.py); NO_APT=1 skips that install, and that test.
test: setup  ## run the test suite (as root, apt-get installs chromium + chromium-driver for the report test; NO_APT=1: not)
	@if [ -z "$(NO_APT)" ] && [ "$$(id -u)" = 0 ] && ! command -v chromedriver >/dev/null; then \
	  echo "note: the report test will apt-get install chromium and chromium-driver system-wide (make test NO_APT=1 skips it)"; fi
	GEOCONTEXT_NO_APT=$(NO_APT) $(PY) -m pytest

layout:  ## check the package layout: no import cycle, no module over 400 lines (tools/layout_check.py)
	$(PYTHON) tools/layout_check.py src/geocontext

# The Kaggle verbs need the kit's Python, not a fresh install: they set up .venv/ only when it is missing.
# Their arguments (KERNEL, FILE, MSG, DATA, FEATURES, KAGGLE_USERNAME) reach the recipes as environment
# variables, so quotes and spaces in a message are passed on intact.
$(PY):
	$(MAKE) setup

kernels: | $(PY)  ## render kernels/<name>/ into build/kernels/<name>/ (KAGGLE_USERNAME fills the kernel ids)
	$(PY) -m geocontext kernels render --out $(KERNELS_OUT)

push: | $(PY)  ## render one kernel and push it to Kaggle: make push KERNEL=train
	@test -n "$$KERNEL" || { echo "usage: make push KERNEL=<name>   (kernels: $$(ls kernels | grep -v README | tr '\n' ' '))"; exit 2; }
	$(PY) -m geocontext kernels push "$$KERNEL" --out $(KERNELS_OUT)

dataset: | $(PY)  ## lay out FEATURES (default work/features) with dataset-metadata.json in build/dataset/
	$(PY) -m geocontext dataset prepare --features "$${FEATURES:-work/features}" --out build/dataset

submit: | $(PY)  ## validate, then submit: make submit FILE=submissions/x.csv.zip MSG="..." [DATA=dir with test.csv]
	@test -n "$$FILE" -a -n "$$MSG" || { echo 'usage: make submit FILE=submissions/x.csv.zip MSG="what changed" [DATA=folder with test.csv]'; exit 2; }
	$(PY) -m geocontext submit --file "$$FILE" --message "$$MSG" $${DATA:+--data "$$DATA"}

bench: setup  ## all speed and decoding benchmarks at the real scale -> BENCHMARKS.md (about 40 min; cache in bench-cache/)
	$(PY) -m geocontext.bench --out BENCHMARKS.md

clean:  ## remove work/ and build/ outputs (keeps .venv/ and bench-cache/)
	rm -rf work build
