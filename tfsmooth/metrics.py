"""Sample-quality metrics: FID and KID through TF-GAN on named features, mode coverage for
mixtures of Gaussians and stacked MNIST.

Mode coverage (the definition used throughout tfsmooth, after Metz et al.'s unrolled GAN and
Nagarajan and Kolter's MoG experiment): a sample is *high quality* if it lies within
``3 * std`` of its nearest centre; a mode is *covered* if at least 1% of all samples are
high-quality samples assigned to it.
"""

from collections.abc import Callable
import dataclasses
import hashlib
import math
import os
import tempfile

import numpy as np

from tfsmooth import compat
from tfsmooth.errors import UserError


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


# ---------------------------------------------------------------------------------------------
# Frechet and kernel distances (TF-GAN's functions; no Frechet math of our own)

INCEPTION_SIZE = 299


class FeaturesUnavailableError(UserError, ValueError):
  """A feature extractor that cannot be loaded here (the message is one line)."""


@dataclasses.dataclass(frozen=True)
class FeatureExtractor:
  """``fn(images in [-1, 1], NHWC) -> (N, d)`` features, and the name every number carries.

  Calling it returns the features as a float64 array.

  Attributes:
    name: the features' name, reported with every FID and KID (e.g. ``"inception:<handle>"``).
    fn: ``(N, H, W, C)`` float32 images in [-1, 1] -> ``(N, d)`` features.
  """

  name: str
  fn: Callable[[np.ndarray], np.ndarray]

  def __call__(self, images) -> np.ndarray:
    return np.asarray(self.fn(np.asarray(images, np.float32)), np.float64)


def frechet_distance(real_features, fake_features) -> float:
  """FID on given features: ``tfgan.eval.frechet_classifier_distance_from_activations``
  (computed in float64).

  Args:
    real_features: ``(N, d)`` features of real samples.
    fake_features: ``(M, d)`` features of generated samples, from the same extractor.

  Returns:
    The Frechet distance between Gaussians fitted to the two sets of features.
  """
  tfgan = compat.import_tfgan()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return float(tfgan.eval.frechet_classifier_distance_from_activations(
      tf.constant(real_features, tf.float64), tf.constant(fake_features, tf.float64)))


def kernel_distance(real_features, fake_features) -> float:
  """KID (MMD^2 with the cubic polynomial kernel, Binkowski et al. 2018):
  ``tfgan.eval.kernel_classifier_distance_from_activations`` (float64), TF-GAN's block
  estimator: the mean of the unbiased estimates over consecutive blocks of at most 1,024
  samples (docs/metrics.md, "Which KID").

  Args:
    real_features: ``(N, d)`` features of real samples.
    fake_features: ``(M, d)`` features of generated samples, from the same extractor.

  Returns:
    The KID estimate (unbiased, so it can be slightly negative).
  """
  tfgan = compat.import_tfgan()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return float(tfgan.eval.kernel_classifier_distance_from_activations(
      tf.constant(real_features, tf.float64), tf.constant(fake_features, tf.float64),
      dtype=tf.float64))


def _hub_cache_path(handle: str) -> str:
  """Where tensorflow_hub keeps ``handle`` once downloaded (its compressed-module resolver)."""
  from tensorflow_hub import resolver  # pylint: disable=g-import-not-at-top
  cache = resolver.tfhub_cache_dir(default_cache_dir=os.path.join(tempfile.gettempdir(),
                                                                  "tfhub_modules"))
  return os.path.join(cache, hashlib.sha1(handle.encode("utf8")).hexdigest())


def inception_extractor(module: str = "", batch_size: int = 50) -> FeatureExtractor:
  """TF-GAN's Inception pool_3 features (2048-d) from ``module``: a local SavedModel directory
  of TF-GAN's Inception module, or a TF-Hub handle already in the TF-Hub cache. Nothing is
  downloaded: a missing module raises ``FeaturesUnavailableError`` saying how to provide it.

  Images in [-1, 1] are resized to 299x299 (bilinear) and grayscale is repeated to RGB, which is
  the input TF-GAN's module expects.

  Args:
    module: the SavedModel directory or TF-Hub handle; empty: TF-GAN's own Inception handle
      (``tfgan.eval.INCEPTION_TFHUB``), which must be in the TF-Hub cache.
    batch_size: images per call of the Inception module.

  Returns:
    A ``FeatureExtractor`` named ``inception:<module>``.

  Raises:
    FeaturesUnavailableError: the handle is not in the TF-Hub cache, or the directory holds no
      ``saved_model.pb``.
  """
  tfgan = compat.import_tfgan()
  handle = module or tfgan.eval.INCEPTION_TFHUB
  if handle.startswith(("http://", "https://")):
    if not os.path.isdir(_hub_cache_path(handle)):
      raise FeaturesUnavailableError(
          f"--features=inception: the Inception module {handle} is not in the TF-Hub cache and "
          f"this machine is offline; download it elsewhere and pass its directory with "
          f"--inception_module=DIR (or set TFHUB_CACHE_DIR), or use --features=classifier")
  elif not os.path.isfile(os.path.join(handle, "saved_model.pb")):
    raise FeaturesUnavailableError(
        f"--inception_module={handle}: no SavedModel there (expected {handle}/saved_model.pb)")
  # TF-GAN's own classifier_fn_from_tfhub flattens with tf.compat.v1.layers.flatten, which
  # Keras 3 removed; this is the same load-select-flatten with tf.reshape.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  module_fn = hub.load(handle)

  def classifier_fn(images):
    pool = module_fn(images)[tfgan.eval.INCEPTION_FINAL_POOL]
    return tf.reshape(pool, (tf.shape(pool)[0], -1))

  def features(images):
    outputs = []
    for start in range(0, len(images), batch_size):
      batch = tf.constant(images[start:start + batch_size])
      if batch.shape[-1] == 1:
        batch = tf.image.grayscale_to_rgb(batch)
      batch = tf.image.resize(batch, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
      outputs.append(classifier_fn(batch).numpy())
    return np.concatenate(outputs)

  return FeatureExtractor(f"inception:{handle}", features)


def sample_quality(real_sample_fn, fake_sample_fn, extractor: FeatureExtractor,
                   num_samples: int = 10000, repeats: int = 1) -> dict:
  """FID and KID between ``num_samples`` real and generated samples, over ``repeats`` draws
  (``*_sample_fn(num, seed)``, seed = repeat index): mean, std and every value, with the
  features and sample count named.

  Args:
    real_sample_fn: ``(num, seed) -> (num, H, W, C)`` real images in [-1, 1].
    fake_sample_fn: ``(num, seed) -> (num, H, W, C)`` generated images in [-1, 1].
    extractor: the features both distances are computed on.
    num_samples: real and generated samples per draw.
    repeats: draws, with seeds ``0 .. repeats - 1``.

  Returns:
    ``{"features", "num_samples", "repeats", "fid_mean", "fid_std", "fid", "kid_mean",
    "kid_std", "kid"}``: ``fid`` and ``kid`` list every draw's value; the std is the population
    std over draws (0 for one draw).
  """
  fids, kids = [], []
  for repeat in range(repeats):
    real = extractor(real_sample_fn(num_samples, repeat))
    fake = extractor(fake_sample_fn(num_samples, repeat))
    fids.append(frechet_distance(real, fake))
    kids.append(kernel_distance(real, fake))
  return {"features": extractor.name, "num_samples": num_samples, "repeats": repeats,
          "fid_mean": float(np.mean(fids)), "fid_std": float(np.std(fids)), "fid": fids,
          "kid_mean": float(np.mean(kids)), "kid_std": float(np.std(kids)), "kid": kids}


def stacked_mnist_mode_metrics(mode_ids, num_modes: int = 1000) -> dict:
  """Modes covered (of 1,000: a mode is covered if at least one sample falls in it, the protocol
  of Metz et al. 2017 on 26,000 samples) and the KL divergences between the generated mode
  distribution q and the uniform p: ``KL(q || p)`` (finite) and ``KL(p || q)`` (infinite as soon
  as a mode is missing)."""
  counts = np.bincount(np.asarray(mode_ids, np.int64), minlength=num_modes)[:num_modes]
  q = counts / max(counts.sum(), 1)
  p = 1.0 / num_modes
  present = q > 0
  kl_q_p = float(np.sum(q[present] * np.log(q[present] / p)))
  kl_p_q = float(np.sum(p * np.log(p / q[present]))) if present.all() else math.inf
  return {"modes_covered": int(present.sum()), "num_modes": num_modes,
          "num_samples": int(counts.sum()), "kl_generated_to_uniform": kl_q_p,
          "kl_uniform_to_generated": kl_p_q}
