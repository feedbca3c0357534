"""Shared test setup: quiet TensorFlow, fixed seeds."""

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Classifiers trained by tests go to a throw-away cache, never the user's ~/.cache.
os.environ.setdefault("TFSMOOTH_CACHE", tempfile.mkdtemp(prefix="tfsmooth_test_cache_"))
# Make `import tfsmooth` work from a plain checkout too (pytest, Bazel py_test).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfsmooth import compat  # noqa: E402,F401  (sets the TF environment before TF loads)

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
  keras.utils.set_random_seed(1234)
