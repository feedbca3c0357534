"""What produced a result: versions and the git commit, written into run manifests and
classifier caches."""

import contextlib
import importlib.metadata
import os
import platform
import subprocess
import sys


def versions() -> dict:
  """Python, TensorFlow, Keras, NumPy, the platform, tfsmooth's version and git commit."""
  import keras  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  commit = "unknown"
  with contextlib.suppress(OSError, subprocess.CalledProcessError):  # not a git checkout
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.abspath(__file__)),
                            check=True).stdout.strip()
  try:
    version = importlib.metadata.version("tfsmooth")
  except importlib.metadata.PackageNotFoundError:
    version = "unknown"
  return {"python": sys.version.split()[0], "tensorflow": tf.__version__,
          "keras": keras.__version__, "numpy": np.__version__, "platform": platform.platform(),
          "tfsmooth_version": version, "tfsmooth_commit": commit}
