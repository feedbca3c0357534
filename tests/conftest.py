"""Shared test setup: quiet TensorFlow, fixed seeds, and the ``cli`` fixture that runs tfsmooth's
commands as a user does."""

import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Classifiers trained by tests go to a throw-away cache, never the user's ~/.cache.
os.environ.setdefault("TFSMOOTH_CACHE", tempfile.mkdtemp(prefix="tfsmooth_test_cache_"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Make `import tfsmooth` work from a plain checkout too (pytest, Bazel py_test).
sys.path.insert(0, ROOT)

from tfsmooth import compat  # noqa: E402,F401  (sets the TF environment before TF loads)

# isort: split
import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, set before TensorFlow starts its devices: a real 2-replica
# MirroredStrategy for tests/test_distribute.py. One-device code runs on the first, as before.
CPU_REPLICAS = 2
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration() for _ in range(CPU_REPLICAS)])


@pytest.fixture(autouse=True)
def _seed():
  keras.utils.set_random_seed(1234)


class Cli:
  """Runs ``python -m MODULE ARGS`` (or ``python -c SCRIPT``) in a subprocess from the checkout,
  as a user runs tfsmooth's commands; returns the ``subprocess.CompletedProcess`` (text)."""

  def __call__(self, *args, module: str = "tfsmooth.main", timeout: float = 600):
    return self._python("-m", module, *[str(a) for a in args], timeout=timeout)

  def script(self, code: str, *args, timeout: float = 600):
    return self._python("-c", code, *[str(a) for a in args], timeout=timeout)

  def file(self, path: str, *args, timeout: float = 600):
    """``python PATH ARGS`` (a script of the checkout, e.g. a benchmark)."""
    return self._python(path, *[str(a) for a in args], timeout=timeout)

  def start(self, code: str, *args, log: str, env: dict | None = None) -> subprocess.Popen:
    """``python -c CODE ARGS`` started in the background, stdout and stderr to the file ``log``
    (the caller waits for it, and kills it if it must)."""
    with open(log, "w", encoding="utf-8") as output:
      return subprocess.Popen([sys.executable, "-c", code, *[str(a) for a in args]], cwd=ROOT,
                              env={**self._env(), **(env or {})}, stdout=output,
                              stderr=subprocess.STDOUT)

  @staticmethod
  def _env() -> dict:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)

  def _python(self, *argv, timeout):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=self._env(), capture_output=True,
                          text=True, timeout=timeout, check=False)

  @staticmethod
  def user_lines(stderr: str) -> list[str]:
    """stderr without TensorFlow's start-up noise (see docs/install.md)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(
        ("WARNING: All log messages", "I0000", "W0000", "E0000"))]


@pytest.fixture
def cli() -> Cli:
  return Cli()
