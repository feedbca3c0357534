"""The TensorFlow environment and version shims: what must happen before TensorFlow loads, and
the lines tfsmooth writes to stderr (``progress``; TensorFlow's start-up lines filtered by
``start_tensorflow``).

TF-GAN 2.1.0 (the last release) touches ``tf.estimator`` at import time; TensorFlow 2.16 removed
the estimator package, so ``import tensorflow_gan`` fails on current TensorFlow. We keep current
TensorFlow/Keras 3 and give TF-GAN a stand-in ``estimator`` namespace instead of pinning the
whole stack to TF 2.15 (see docs/install.md for the reasoning). The stand-in classes are never
instantiated by the parts of TF-GAN tfsmooth uses (``tfgan.eval``); they only satisfy attribute
lookups in TF-GAN's estimator modules at import.
"""

import importlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
import types

# oneDNN kernels are switched on by TensorFlow only on newer CPUs; set it before the first
# TensorFlow import so every machine runs the same kernels (see docs/install.md).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TFSMOOTH_TF_LOGS=1 brings TensorFlow's own log lines back (start_tensorflow below filters its
# start-up lines otherwise); for debugging an installation.
TF_LOGS_ENV = "TFSMOOTH_TF_LOGS"
SHOW_TF_LOGS = os.environ.get(TF_LOGS_ENV, "") not in ("", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if SHOW_TF_LOGS else "2")

_tfgan = None
_started = False  # start_tensorflow ran

# A line of TensorFlow's C++ logging (absl format): "I1124 21:27:32.164105  2431 port.cc:153] ...".
# (Before absl logging is initialised the time reads 00:00:<seconds since the epoch>.)
_TF_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
# Text of a start-up message that is no news here: no GPU on a CPU-only machine (an E line).
_BENIGN_ERRORS = ("failed call to cuInit",)
# The second line of the CPU-feature message (its first is an I line).
_CONTINUATIONS = ("To enable the following instructions:",)


def progress(message: str) -> None:
  print(f"[tfsmooth] {message}", file=sys.stderr, flush=True)


def without_startup_noise(text: str) -> str:
  """``text`` (what TensorFlow wrote to stderr while starting) without its informational C++
  lines: absl's preamble, I and W lines and their continuations, and the E line of a CUDA that
  finds no GPU. Other E and F lines, and anything else, are kept."""
  kept, dropping = [], False
  for line in text.splitlines(keepends=True):
    match = _TF_LOG_LINE.match(line)
    if line.startswith(_ABSL_PREAMBLE):
      dropping = True
    elif match:
      dropping = match.group(1) in "IW" or any(benign in line for benign in _BENIGN_ERRORS)
    elif not (dropping and line.startswith(_CONTINUATIONS)):
      dropping = False
    if not dropping:
      kept.append(line)
  return "".join(kept)


def start_tensorflow() -> None:
  """Imports TensorFlow and starts its devices, with what TensorFlow's C++ code writes to stderr
  meanwhile filtered by ``without_startup_noise``.

  TensorFlow 2.21 writes about seven log lines there at start-up whatever TF_CPP_MIN_LOG_LEVEL
  says (they come before absl logging is initialised), one of them an error line about CUDA on a
  machine without a GPU; a tfsmooth command's one-line refusal would come under them. The file
  descriptor itself is redirected because the C++ code writes to it, not to ``sys.stderr``.
  ``TFSMOOTH_TF_LOGS=1`` shows everything. Only the first call does anything.
  """
  global _started
  if _started:
    return
  _started = True
  if SHOW_TF_LOGS:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.list_physical_devices()
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.list_physical_devices()  # CUDA's start (the cuInit line) comes here
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      sys.stderr.write(without_startup_noise(captured.read().decode("utf-8", "replace")))
      sys.stderr.flush()


class LazyModule:
  """A module imported on first attribute access: keeps modules the flag validators import
  (``tfsmooth.data``, ``tfsmooth.losses``) free of TensorFlow until they are used."""

  def __init__(self, name: str):
    self._name = name
    self._module = None

  def __getattr__(self, attr):
    if self._module is None:
      self._module = importlib.import_module(self._name)
    return getattr(self._module, attr)


def _estimator_stand_in():
  """A namespace with the estimator attributes TF-GAN reads at import."""

  class _Unavailable:
    """Stand-in for a removed tf.estimator class; instantiating it is an error."""

    def __init__(self, *args, **kwargs):
      del args, kwargs
      raise RuntimeError(
          "tf.estimator was removed in TensorFlow 2.16; TF-GAN's estimator API is not "
          "available in tfsmooth (use tensorflow_gan.eval only).")

  class _ModeKeys:
    TRAIN = "train"
    EVAL = "eval"
    PREDICT = "infer"

  estimator = types.SimpleNamespace(
      Estimator=_Unavailable, EstimatorSpec=_Unavailable, SessionRunHook=_Unavailable,
      RunConfig=_Unavailable, ModeKeys=_ModeKeys, export=types.SimpleNamespace())
  estimator.tpu = types.SimpleNamespace(
      TPUEstimator=_Unavailable, TPUEstimatorSpec=_Unavailable, RunConfig=_Unavailable)
  return estimator


def import_tfgan():
  """Returns the ``tensorflow_gan`` module, importable on TensorFlow >= 2.16."""
  global _tfgan
  if _tfgan is not None:
    return _tfgan
  # TF-GAN imports TFP; importing it first avoids a circular-import failure inside TF-GAN.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  # TF-GAN does `import tensorflow.compat.v1 as tf`, which rebinds tf.compat.v1; import it
  # before patching so the stand-in is set on the module TF-GAN will actually see.
  import tensorflow.compat.v1 as tf_v1  # pylint: disable=g-import-not-at-top
  import tensorflow_probability  # noqa: F401  # pylint: disable=g-import-not-at-top
  stand_in = _estimator_stand_in()
  for module in (tf, tf_v1):
    if not hasattr(module, "estimator"):
      module.estimator = stand_in
  import tensorflow_gan as tfgan  # pylint: disable=g-import-not-at-top
  _tfgan = tfgan
  return tfgan


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """The first ``import tensorflow`` of the process, by anyone (Keras, the user), goes through
  ``start_tensorflow``, so that it writes none of TensorFlow's start-up lines; installed by
  ``import tfsmooth``."""

  def find_spec(self, fullname, path=None, target=None):
    del path, target
    if fullname != "tensorflow" or _started:
      return None
    uninstall_quiet_import()
    start_tensorflow()  # imports tensorflow itself, with stderr filtered
    return importlib.util.spec_from_loader(fullname, self)

  def create_module(self, spec):
    return sys.modules[spec.name]  # imported by start_tensorflow

  def exec_module(self, module):
    del module


_QUIET_IMPORT = _QuietTensorFlowImport()


def install_quiet_import() -> None:
  """Makes the first ``import tensorflow`` quiet (``_QuietTensorFlowImport``); nothing if
  TensorFlow is already imported."""
  if "tensorflow" not in sys.modules and _QUIET_IMPORT not in sys.meta_path:
    sys.meta_path.insert(0, _QUIET_IMPORT)


def uninstall_quiet_import() -> None:
  if _QUIET_IMPORT in sys.meta_path:
    sys.meta_path.remove(_QUIET_IMPORT)
