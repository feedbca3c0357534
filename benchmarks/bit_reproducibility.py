"""Are a configuration's weights bit-identical run after run? The same flags, trained again.

    python benchmarks/bit_reproducibility.py --repeats=4 \
        --flagfile=nk_stacked_mnist_small.flags --steps=200 --eval_at_end=false

Takes tfsmooth's training flags (a shipped flagfile by name, as ``tfsmooth`` does) and trains
``--repeats`` runs in this process, each into its own temporary run directory, then hashes every
variable of each run's last checkpoint (weights, optimiser slots, batch-norm statistics). One line
per run: its hash, and the largest difference of any tensor from the first run. With
``--resume_at=S`` each run stops at step S and is resumed to ``--steps`` (a resumed run must equal
an uninterrupted one). docs/training.md ("Reproducible") quotes what it measured.
"""

import dataclasses
import hashlib
import os
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfsmooth.app import console
from tfsmooth.app import flags as tfs_flags

flags.DEFINE_integer("repeats", 4, "Runs of the same flags, one after another in this process.")
flags.DEFINE_integer("cpu_devices", 1, "Logical CPU devices to split the CPU into (the test "
                     "suite's tests/conftest.py makes 2).")
flags.DEFINE_integer("resume_at", 0, "If > 0: stop each run at this step and resume it to --steps.")


def _checkpoint_tensors(run_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints"))
  return {name: reader.get_tensor(name) for name in sorted(reader.get_variable_to_shape_map())
          if "save_counter" not in name and name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # not the SavedModel export's INFO lines
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from tfsmooth.app import train  # pylint: disable=g-import-not-at-top
  if flags.FLAGS.cpu_devices > 1:
    tf.config.set_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0],
        [tf.config.LogicalDeviceConfiguration() for _ in range(flags.FLAGS.cpu_devices)])
  config = tfs_flags.train_config()
  if flags.FLAGS.resume_at and not 0 < flags.FLAGS.resume_at < config.steps:
    raise app.UsageError(f"--resume_at={flags.FLAGS.resume_at}: must be in (0, --steps)")
  first, identical = None, 0
  with tempfile.TemporaryDirectory(prefix="tfsmooth_reproducibility_") as root:
    for repeat in range(flags.FLAGS.repeats):
      run = dataclasses.replace(config, run_dir=os.path.join(root, str(repeat)))
      if flags.FLAGS.resume_at:
        train.train(dataclasses.replace(run, steps=flags.FLAGS.resume_at), verbose=0)
        run = dataclasses.replace(run, resume=True)
      train.train(run, verbose=0)
      tensors = _checkpoint_tensors(run.run_dir)
      digest = hashlib.sha256(b"".join(t.tobytes() for t in tensors.values())).hexdigest()[:12]
      first = first or tensors
      worst = max(float(np.max(np.abs(first[n].astype(np.float64) - t))) if t.size else 0.0
                  for n, t in tensors.items())
      identical += worst == 0.0
      print(f"run {repeat}: {digest}  max |difference| from run 0: {worst:.3g}", flush=True)
  print(f"{identical} of {flags.FLAGS.repeats} runs bit-identical to run 0 "
        f"(TF_NUM_INTRAOP_THREADS={os.environ.get('TF_NUM_INTRAOP_THREADS', 'unset')}, "
        f"TF_NUM_INTEROP_THREADS={os.environ.get('TF_NUM_INTEROP_THREADS', 'unset')})")


if __name__ == "__main__":
  flags.FLAGS.set_default("run_dir", "unused")  # each run gets a temporary one
  app.run(main, flags_parser=console.one_line_flags_parser("bit_reproducibility"))
