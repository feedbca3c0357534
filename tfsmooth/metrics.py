"""Sample-quality metrics. Mode coverage for mixtures of Gaussians (this module); FID/KID through
TF-GAN are issue 5.

Mode coverage (the definition used throughout tfsmooth, after Metz et al.'s unrolled GAN and
Nagarajan and Kolter's MoG experiment): a sample is *high quality* if it lies within
``3 * std`` of its nearest centre; a mode is *covered* if at least 1% of all samples are
high-quality samples assigned to it.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ModeCoverage:
  modes_covered: int
  num_modes: int
  high_quality_fraction: float
  counts: tuple[int, ...]  # high-quality samples per mode


def mixture_mode_coverage(samples, centers, std, radius_in_std: float = 3.0,
                          min_fraction: float = 0.01) -> ModeCoverage:
  """Modes covered and fraction of high-quality samples (definition in the module docstring)."""
  samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
  centers = np.asarray(centers, np.float64)
  distances = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)
  nearest = np.argmin(distances, axis=1)
  high_quality = distances[np.arange(len(samples)), nearest] <= radius_in_std * std
  counts = np.bincount(nearest[high_quality], minlength=len(centers))
  covered = int(np.sum(counts >= min_fraction * len(samples)))
  return ModeCoverage(covered, len(centers), float(np.mean(high_quality)),
                      tuple(int(c) for c in counts))
