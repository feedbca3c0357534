"""Cost of the live stability monitors (tfsmooth.monitors) against the training they watch.

    python benchmarks/stability_monitor_cost.py --flagfile=runs/chu_default --run_dir=unused \
        [--period=100] [--rounds=5]

Builds the run of the flagfile as ``--mode=train`` would, then alternates blocks of ``--period``
train steps with one measurement (``stability_measures`` on the run's monitor batch), so a busy
machine slows both alike. Reports the median ms per step, the median seconds per measurement and
the overhead of monitoring every ``--period`` steps (``--stability_every``): measurement time over
the block's training time.
"""

import statistics
import sys
import time

from absl import app
from absl import flags

from tfsmooth.app import console
from tfsmooth.app import flags as tfs_flags

flags.DEFINE_integer("period", 100, "Train steps between measurements (--stability_every).")
flags.DEFINE_integer("rounds", 5, "Timed blocks (after one warm-up block).")
FLAGS = flags.FLAGS


def main(argv):
  del argv
  # pylint: disable=g-import-not-at-top  (TensorFlow after the flags)
  from tfsmooth import data
  from tfsmooth import monitors
  from tfsmooth.app import build
  from tfsmooth.app import train
  config = tfs_flags.train_config()
  provider = data.get_provider(config.dataset, seed=config.seed,
                               **train.dataset_options(config))
  model, _, _ = build.build_gan(config, tuple(provider.shape))
  batch = provider.sample(min(config.batch_size, train.STABILITY_BATCH), seed=config.seed + 2)
  batches = provider.batches(config.batch_size)
  model.steps_per_execution = train.execution_steps(config, 0)
  step_ms, measure_s = [], []
  for round_ in range(FLAGS.rounds + 1):
    started = time.perf_counter()
    model.fit(batches.take(FLAGS.period * model.n_disc), epochs=1, verbose=0)
    block = time.perf_counter() - started
    started = time.perf_counter()
    measures = monitors.stability_measures(model, batch, config.seed + 2)
    measured = time.perf_counter() - started
    if round_:  # the first block traces the step
      step_ms.append(1000 * block / FLAGS.period)
      measure_s.append(measured)
  step, measure = statistics.median(step_ms), statistics.median(measure_s)
  print(f"{' '.join(sys.argv[1:])}: {len(measures)} measures; step {step:.1f} ms (median of "
        f"{FLAGS.rounds} blocks of {FLAGS.period}), measurement {measure:.3f} s = "
        f"{1000 * measure / step:.1f} steps: {100 * measure / (FLAGS.period * step / 1000):.1f}% "
        f"overhead at --stability_every={FLAGS.period}")


if __name__ == "__main__":
  app.run(main, flags_parser=console.one_line_flags_parser("stability_monitor_cost"))
