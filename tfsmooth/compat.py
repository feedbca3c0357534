"""The TensorFlow environment and version shims: what must happen before TensorFlow loads.

TF-GAN 2.1.0 (the last release) touches ``tf.estimator`` at import time; TensorFlow 2.16 removed
the estimator package, so ``import tensorflow_gan`` fails on current TensorFlow. We keep current
TensorFlow/Keras 3 and give TF-GAN a stand-in ``estimator`` namespace instead of pinning the
whole stack to TF 2.15 (see docs/install.md for the reasoning). The stand-in classes are never
instantiated by the parts of TF-GAN tfsmooth uses (``tfgan.eval``); they only satisfy attribute
lookups in TF-GAN's estimator modules at import.
"""

import importlib
import os
import types

# oneDNN kernels are switched on by TensorFlow only on newer CPUs; set it before the first
# TensorFlow import so every machine runs the same kernels (see docs/install.md).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# TFSMOOTH_TF_LOGS=1 brings TensorFlow's own log lines back (tfsmooth.console.start_tensorflow
# filters its start-up lines otherwise); for debugging an installation.
TF_LOGS_ENV = "TFSMOOTH_TF_LOGS"
SHOW_TF_LOGS = os.environ.get(TF_LOGS_ENV, "") not in ("", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if SHOW_TF_LOGS else "2")

_tfgan = None


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
