"""KID as tfsmooth reports it (TF-GAN's block estimator) against the full-sample unbiased MMD^2,
on the MNIST classifier's features (docs/metrics.md, "Which KID").

    python benchmarks/kid_estimators.py [--samples=2000,10000] [--draws=5]

For each sample count n it draws ``--draws`` independent real sets (MNIST test) and two kinds of
"generated" sets (MNIST train images, and the same with Gaussian pixel noise of std 0.3), and
prints both estimates (means over the draws), their mean absolute difference, and the spread of
each over the draws (the sampling noise the difference is to be compared with). The full-sample
estimator here is a reference for this comparison only; tfsmooth reports TF-GAN's.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
from absl import logging

from tfsmooth import compat  # noqa: F401  (the TF environment, before TF loads)

# isort: split
import numpy as np

from tfsmooth import classifier
from tfsmooth import data
from tfsmooth import metrics

flags.DEFINE_list("samples", ["2000", "10000"], "Sample counts n (real and generated each).")
flags.register_validator(
    "samples", lambda values: all(v.isdigit() and 2 <= int(v) <= 10_000 for v in values),
    message="must be a comma-separated list of integers from 2 to 10000 (the MNIST test set)")
flags.DEFINE_integer("draws", 5, "Independent draws per n.", lower_bound=1)
FLAGS = flags.FLAGS


def unbiased_mmd2(x, y, chunk: int = 1000) -> float:
  """The full-sample unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018,
  eq. 3), in float64 and in row chunks (no n x n matrix)."""
  d = x.shape[1]

  def mean_kernel(a, b, same):
    total = 0.0
    for start in range(0, len(a), chunk):
      block = (a[start:start + chunk] @ b.T / d + 1.0) ** 3
      if same:  # drop k(a_i, a_i)
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = 0.0
      total += block.sum()
    pairs = len(a) * (len(b) - 1) if same else len(a) * len(b)
    return total / pairs

  return mean_kernel(x, x, True) + mean_kernel(y, y, True) - 2 * mean_kernel(x, y, False)


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)  # TF-GAN's deprecation warnings
  features = classifier.load_classifier("mnist", seed=0, train_if_missing=True).features
  test, _ = data.load_mnist("test")
  train, _ = data.load_mnist("train")
  rng = np.random.default_rng(0)
  real_all = features(data.to_float_image(test).numpy())
  print("| generated | n | TF-GAN block KID | full unbiased MMD^2 | mean abs. difference | "
        "std over draws: block | std over draws: full |")
  print("|---|---|---|---|---|---|---|")
  for name, noise in (("MNIST train", 0.0), ("MNIST train + noise 0.3", 0.3)):
    for n in (int(v) for v in FLAGS.samples):
      blocks, fulls = [], []
      for _ in range(FLAGS.draws):
        real = real_all[rng.choice(len(real_all), n, replace=False)]
        images = data.to_float_image(train[rng.choice(len(train), n, replace=False)]).numpy()
        images = np.clip(images + noise * rng.standard_normal(images.shape), -1, 1)
        fake = features(images.astype(np.float32))
        blocks.append(metrics.kernel_distance(real, fake))
        fulls.append(unbiased_mmd2(np.float64(real), np.float64(fake)))
      difference = np.mean(np.abs(np.subtract(blocks, fulls)))
      print(f"| {name} | {n:,} | {np.mean(blocks):.4g} | {np.mean(fulls):.4g} | "
            f"{difference:.2g} | {np.std(blocks):.2g} | {np.std(fulls):.2g} |", flush=True)


if __name__ == "__main__":
  app.run(main)
