"""Shared test setup: quiet TensorFlow, fixed seeds, and the ``cli`` fixture that runs tfsmooth's
commands as a user does."""

import os
import subprocess
import sys
import tempfile

# One intra-op thread per test process (unless set): the suite runs one pytest worker per core,
# and the weights a test compares bit for bit are those of one fixed thread count (the arithmetic
# of a batch-norm or convolution gradient depends on it; docs/training.md, "Reproducible").
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
# Classifiers trained by tests go to a throw-away cache, never the user's ~/.cache.
os.environ.setdefault("TFSMOOTH_CACHE", tempfile.mkdtemp(prefix="tfsmooth_test_cache_"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Make `import tfsmooth` work from a plain checkout too (pytest, Bazel py_test).
sys.path.insert(0, ROOT)

from tfsmooth import compat  # noqa: E402  (sets the TF environment before TF loads)

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
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

  def __call__(self, *args, module: str = "tfsmooth.main", timeout: float = 600,
               env: dict | None = None):
    return self._python("-m", module, *[str(a) for a in args], timeout=timeout, env=env)

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
    # A user's environment: what the commands print is what a user sees.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TF_CPP_") and k != compat.TF_LOGS_ENV}
    return dict(env, PYTHONPATH=ROOT)

  def _python(self, *argv, timeout, env=None):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env={**self._env(), **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def cli() -> Cli:
  return Cli()


class TensorBoardLogs:
  """A TensorBoard log directory read as TensorBoard reads it (its event accumulator)."""

  def __init__(self, logdir):
    from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
    # 0: keep every event (the default keeps a sample of 10 per tag).
    self.events = event_accumulator.EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    self.events.Reload()

  def tags(self) -> set[str]:
    return set(self.events.Tags()["tensors"])

  def scalars(self) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` of every scalar summary."""
    return {tag: {event.step: float(tf.make_ndarray(event.tensor_proto))
                  for event in self.events.Tensors(tag)}
            for tag in self.tags()
            if self.events.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"}

  def steps(self, tag: str) -> list[int]:
    return [event.step for event in self.events.Tensors(tag)]

  def images(self, tag: str) -> list:
    """The images of ``tag``, decoded (H, W, channels), in step order."""
    decoded = []
    for event in self.events.Tensors(tag):
      width, height, *pngs = tf.make_ndarray(event.tensor_proto)  # an image summary's tensor
      image = tf.io.decode_png(pngs[0]).numpy()
      assert image.shape[:2] == (int(height), int(width))
      decoded.append(image)
    return decoded

  @staticmethod
  def png_file(path) -> np.ndarray:
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()

  def text(self, tag: str) -> str:
    """The first text of ``tag``."""
    return tf.make_ndarray(self.events.Tensors(tag)[0].tensor_proto).item().decode()


@pytest.fixture
def tensorboard() -> type[TensorBoardLogs]:
  """``tensorboard(logdir)`` reads a log directory; ``tensorboard.png_file(path)`` decodes a PNG
  file to compare with its images."""
  return TensorBoardLogs
