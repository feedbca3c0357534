# Two commands for a fresh clone (README): `make demo` and `make test`.
# Both create .venv with the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-slow clean

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# The default job: the constants report of Chu et al.'s discriminator, with numerical checks.
demo: $(STAMP)
	$(PY) -m tfsmooth.main --flagfile=runs/constants_default.flags

# The default test suite (a few minutes on 2 cores); slow paper-scale checks are separate.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

clean:
	rm -rf $(VENV) build *.egg-info
