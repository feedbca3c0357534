"""tfsmooth.metrics: TF-GAN FID/KID against references, feature extractors, mode metrics."""

import math

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from tfsmooth import data
from tfsmooth import metrics


def _scipy_fid(a, b):
  mu1, mu2 = a.mean(0), b.mean(0)
  c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  root = scipy.linalg.sqrtm(c1 @ c2).real
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * root))


def test_fid_equals_scipy_reference():
  rng = np.random.default_rng(0)
  a = rng.standard_normal((2000, 16)) @ rng.standard_normal((16, 16))
  b = rng.gamma(2.0, size=(1500, 16)) + 0.3
  assert metrics.frechet_distance(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-5)


def _pooled_pixels(images):
  """A cheap fixed feature map for tests: 4x4 average pooling of the pixels (49-d for MNIST)."""
  pooled = tf.nn.avg_pool2d(tf.constant(images), 4, 4, "VALID")
  return tf.reshape(pooled, (len(images), -1)).numpy()


@pytest.fixture(scope="module")
def mnist_test_images():
  return data.get_provider("mnist", split="test").sample(10000, seed=0)


def _unbiased_mmd2(x, y):
  """Binkowski et al. (2018), eq. 3: the unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3."""
  def kernel(a, b):
    return (a @ b.T / a.shape[1] + 1.0) ** 3
  n, m = len(x), len(y)
  same_x, same_y = kernel(x, x), kernel(y, y)
  return ((same_x.sum() - np.trace(same_x)) / (n * (n - 1)) +
          (same_y.sum() - np.trace(same_y)) / (m * (m - 1)) - 2 * kernel(x, y).mean())


def test_kid_is_tfgans_block_estimator():
  """docs/metrics.md: KID is the mean of the unbiased MMD^2 over consecutive blocks of at most
  1,024 samples, which is the full-sample unbiased estimate up to 1,024 samples."""
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(2000, 8)), rng.normal(0.3, 1.0, size=(2000, 8))
  assert metrics.kernel_distance(x[:1000], y[:1000]) == pytest.approx(
      _unbiased_mmd2(x[:1000], y[:1000]), rel=1e-12)
  blocks = np.mean([_unbiased_mmd2(x[:1000], y[:1000]), _unbiased_mmd2(x[1000:], y[1000:])])
  assert metrics.kernel_distance(x, y) == pytest.approx(blocks, rel=1e-12)
  assert metrics.kernel_distance(x, y) != pytest.approx(_unbiased_mmd2(x, y), rel=1e-4)


def test_fid_and_kid_of_dataset_halves_are_small_and_against_noise_large(mnist_test_images):
  extractor = metrics.FeatureExtractor("pooled_pixels", _pooled_pixels)
  first, second = extractor(mnist_test_images[:5000]), extractor(mnist_test_images[5000:])
  noise = extractor(np.random.default_rng(0).uniform(-1, 1, mnist_test_images[:5000].shape))
  fid_halves, fid_noise = metrics.frechet_distance(first, second), metrics.frechet_distance(
      first, noise)
  kid_halves, kid_noise = metrics.kernel_distance(first, second), metrics.kernel_distance(
      first, noise)
  assert fid_halves < 0.05 and fid_noise > 10.0, (fid_halves, fid_noise)
  assert fid_noise > 500 * fid_halves
  assert abs(kid_halves) < 1e-3 and kid_noise > 0.5, (kid_halves, kid_noise)


def _save_stand_in_inception(path):
  """A local module with the signature of TF-GAN's Inception module: images (N, 299, 299, 3) in
  [-1, 1] -> {"pool_3": (N, 1, 1, 8), "logits": (N, 1008)}."""
  kernel = tf.constant(np.random.default_rng(0).standard_normal((3, 8)), tf.float32)

  class StandIn(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
    def __call__(self, images):
      pooled = tf.reduce_mean(tf.square(images), axis=[1, 2])  # (N, 3)
      pool_3 = tf.reshape(tf.matmul(pooled, kernel), (-1, 1, 1, 8))
      return {"pool_3": pool_3, "logits": tf.zeros((tf.shape(images)[0], 1008))}

  tf.saved_model.save(StandIn(), path)
  return kernel.numpy()


def test_inception_path_runs_end_to_end_on_a_stand_in_module(tmp_path, mnist_test_images):
  kernel = _save_stand_in_inception(str(tmp_path / "inception"))
  extractor = metrics.inception_extractor(str(tmp_path / "inception"), batch_size=16)
  assert extractor.name == f"inception:{tmp_path / 'inception'}"
  images = mnist_test_images[:40]
  features = extractor(images)
  resized = tf.image.resize(tf.image.grayscale_to_rgb(tf.constant(images)), (299, 299)).numpy()
  expected = np.mean(resized**2, axis=(1, 2)) @ kernel
  np.testing.assert_allclose(features, expected, rtol=1e-5)
  result = metrics.sample_quality(lambda n, s: mnist_test_images[s * n:(s + 1) * n],
                                  lambda n, s: mnist_test_images[5000 + s * n:5000 + (s + 1) * n],
                                  extractor, num_samples=200, repeats=2)
  assert result["features"].startswith("inception:") and len(result["fid"]) == 2
  assert result["fid_mean"] == pytest.approx(np.mean(result["fid"]))


def test_missing_inception_module_is_one_clear_line_and_no_download(tmp_path, monkeypatch):
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty_cache"))
  with pytest.raises(metrics.FeaturesUnavailableError) as error:
    metrics.inception_extractor()
  message = str(error.value)
  assert "\n" not in message and "--inception_module=DIR" in message and "offline" in message
  with pytest.raises(metrics.FeaturesUnavailableError, match="no SavedModel there"):
    metrics.inception_extractor(str(tmp_path))


def test_mixture_mode_coverage_on_constructed_samples():
  provider = data.get_provider("mog_ring")
  centers, std = provider.centers, provider.std
  rng = np.random.default_rng(0)
  all_modes = centers[np.arange(2000) % 8] + rng.normal(0, std, (2000, 2))
  one_mode = centers[np.zeros(2000, int)] + rng.normal(0, std, (2000, 2))
  off_mode = rng.uniform(-0.5, 0.5, (2000, 2))  # the centre of the ring: far from every mode
  result = metrics.mixture_mode_coverage(all_modes, centers, std)
  assert result.modes_covered == 8 and result.high_quality_fraction > 0.98
  result = metrics.mixture_mode_coverage(one_mode, centers, std)
  assert result.modes_covered == 1 and result.counts[0] > 1950
  result = metrics.mixture_mode_coverage(off_mode, centers, std)
  assert result.modes_covered == 0 and result.high_quality_fraction == 0.0
  # 1% threshold: 19 of 2,000 samples do not cover a mode, 20 do.
  mixed = np.concatenate([one_mode[:1961], centers[[1] * 20], centers[[2] * 19]])
  assert metrics.mixture_mode_coverage(mixed, centers, std).modes_covered == 2


def test_stacked_mnist_mode_metrics_on_constructed_modes():
  uniform = np.arange(26000) % 1000
  result = metrics.stacked_mnist_mode_metrics(uniform)
  assert result["modes_covered"] == 1000 and result["num_samples"] == 26000
  assert result["kl_generated_to_uniform"] == pytest.approx(0.0, abs=1e-12)
  assert result["kl_uniform_to_generated"] == pytest.approx(0.0, abs=1e-12)
  collapsed = np.full(26000, 417)
  result = metrics.stacked_mnist_mode_metrics(collapsed)
  assert result["modes_covered"] == 1
  assert result["kl_generated_to_uniform"] == pytest.approx(math.log(1000))
  assert math.isinf(result["kl_uniform_to_generated"])
  half = np.arange(26000) % 500
  assert metrics.stacked_mnist_mode_metrics(half)["kl_generated_to_uniform"] == pytest.approx(
      math.log(2))
