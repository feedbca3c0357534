"""What a multi-replica strategy costs: the same train step, same global batch, on one device and
on N replicas of a split CPU, timed in alternating blocks in one process (ratios only).

    python benchmarks/distribute_cost.py [--replicas=2] [--blocks=5]

On a CPU the replicas share the same cores, so this measures the price of splitting the batch and
all-reducing (gradients, the N&K regulariser's gradient, metrics), not a speed-up; on GPUs each
replica has its own device. Results: docs/distributed.md.
"""

import argparse
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/benchmarks/", 1)[0])

from tfsmooth import compat  # noqa: F401  (sets the TF environment before TensorFlow loads)

# isort: split
import keras

from tfsmooth import data
from tfsmooth import distribute
from tfsmooth.app import config as tfs_config

WORKLOADS = {  # name -> (settings, steps per timed block: about 5 s on one device here)
    "N&K MoG step (batch 512, eta 0.5, simultaneous)": (1500, dict(
        dataset="mog_ring", generator="mlp", noise_dim=256, discriminator="nk_mlp",
        hidden_units=(128,), loss="minimax", penalty="none", n_disc=1, eta=0.5,
        update="simultaneous", batch_size=512)),
    "Chu step (SN-ELU conv7 16..128 ch, MNIST, RKHS, 2 D steps, 64 of 1,024 particles)": (25, dict(
        dataset="mnist", generator="particle", n_particles=1024, particle_batch=64,
        discriminator="conv7", base_channels=16, loss="indicator", penalty="rkhs", n_disc=2,
        batch_size=64)),
}


def build(settings: dict, strategy):
  """The model of ``settings`` in ``strategy``'s scope and its (infinite) dataset."""
  config = tfs_config.make(tfs_config.TrainConfig, run_dir="unused", **settings)
  provider = data.get_provider(config.dataset, seed=0)
  keras.utils.set_random_seed(0)
  with strategy.scope():
    discriminator = build.build_discriminator(config.discriminator, provider.shape)
    generator = build.build_generator(config.generator, provider.shape,
                                      strategy.num_replicas_in_sync)
    model = build.smooth_gan(generator, discriminator, config.gan, config.generator.noise_dim)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5),
                  g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.5))
  return model, model.step_batches(provider.batches(config.batch_size))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--replicas", type=int, default=2)
  parser.add_argument("--blocks", type=int, default=5)
  args = parser.parse_args()
  # The split first: it must happen before TensorFlow starts its devices.
  replicas = distribute.make_strategy("mirrored", cpu_replicas=args.replicas)
  strategies = {"1 device": distribute.make_strategy("default"),
                f"{args.replicas} CPU replicas": replicas}
  for workload, (steps, settings) in WORKLOADS.items():
    runs = {name: build(settings, strategy) for name, strategy in strategies.items()}
    for model, dataset in runs.values():  # trace and warm up
      model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)
    rates = {name: [] for name in runs}
    for _ in range(args.blocks):
      for name, (model, dataset) in runs.items():
        started = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        rates[name].append(steps / (time.perf_counter() - started))
    one, many = (statistics.median(rates[name]) for name in runs)
    ratios = [b / a for a, b in zip(*rates.values())]
    print(f"{workload}: {one:.1f} it/s on 1 device, {many:.1f} it/s on "
          f"{args.replicas} CPU replicas; ratio {statistics.median(ratios):.3f} (blocks: "
          f"{min(ratios):.3f}..{max(ratios):.3f}), {args.blocks} blocks of {steps} steps")


if __name__ == "__main__":
  main()
