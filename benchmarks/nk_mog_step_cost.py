"""Cost of one train step for the three mixture-of-Gaussians methods, as ratios to the plain GAN.

    python benchmarks/nk_mog_step_cost.py [--steps_per_block=200] [--rounds=5]

The networks, batch and optimisers of runs/nk_mog_*.flags (alternating updates). The methods run
side by side in one process, in interleaved blocks of steps (plain, eta, unrolled, plain, ...),
so a busy machine slows all of them alike; the median block gives ms per step, and the ratio to
the plain GAN is the number to compare across machines.
"""

import statistics
import time

from absl import app
from absl import flags

flags.DEFINE_integer("steps_per_block", 200, "Train steps per timed block.")
flags.DEFINE_integer("rounds", 5, "Timed blocks per method (after one warm-up block).")
FLAGS = flags.FLAGS

METHODS = {"plain GAN (eta = 0)": {}, "eta = 0.5": {"eta": 0.5},
           "unrolled, 15 steps": {"unroll_steps": 15}}


def build(options):
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from tfsmooth import data  # pylint: disable=g-import-not-at-top
  from tfsmooth import gan  # pylint: disable=g-import-not-at-top
  from tfsmooth import networks  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  model = gan.SmoothGAN(networks.mlp_generator(256, 2, (128, 128)),
                        networks.nk_mlp_discriminator(2, (128,)),
                        loss="minimax", penalty="none", n_disc=1, **options,
                        noise_dim=256)
  model.compile(d_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5))
  provider = data.get_provider("mog_ring", seed=0)
  batches = iter(provider.dataset(512, start_step=0, batches_per_step=1).map(gan.batch_major))
  step = tf.function(model.train_step)

  def run(count):
    for _ in range(count):
      step(next(batches))
  return run


def main(argv):
  del argv
  from tfsmooth import compat  # noqa: F401  (sets the TF environment before TensorFlow loads)
  runners = {name: build(options) for name, options in METHODS.items()}
  for run in runners.values():
    run(FLAGS.steps_per_block)  # warm-up: tracing
  times = {name: [] for name in runners}
  for _ in range(FLAGS.rounds):
    for name, run in runners.items():
      start = time.perf_counter()
      run(FLAGS.steps_per_block)
      times[name].append((time.perf_counter() - start) / FLAGS.steps_per_block * 1000)
  base = statistics.median(times["plain GAN (eta = 0)"])
  print(f"| method | ms per step (median of {FLAGS.rounds} blocks of {FLAGS.steps_per_block}) "
        "| ratio to the plain GAN |\n|---|---|---|")
  for name, values in times.items():
    median = statistics.median(values)
    print(f"| {name} | {median:.2f} | {median / base:.2f} |")


if __name__ == "__main__":
  app.run(main)
