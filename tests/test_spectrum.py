"""tfsmooth.spectrum: the game Jacobian's products against finite differences of the field, the
N&K toy's closed-form eigenvalues through the generic path, Arnoldi against the dense solve, and
the state a forward pass changes left as it was."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import gan
from tfsmooth import networks
from tfsmooth import spectrum
from tfsmooth.app import nk_toy


def _mog_gan(eta=0.0, penalty="none", loss="minimax", batch_norm=False):
  """A small GAN of 2-D samples, smooth in its weights (a finite difference of the field needs
  that: ReLU kinks make it jump): a tanh generator and a spectrally normalised softplus
  discriminator, 129 parameters."""
  generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                                keras.layers.Dense(2)])
  discriminator = networks.mlp_discriminator(2, hidden_units=(8,), activation="softplus")
  if batch_norm:
    generator = networks.dcgan_generator(4, (4, 4, 1), base_channels=2)
    discriminator = networks.dcgan_discriminator((4, 4, 1), base_channels=2)
  model = gan.SmoothGAN(generator, discriminator, loss=loss, penalty=penalty, eta=eta,
                        update="simultaneous")
  shape = (16, *model.sample_shape)
  real = tf.constant(np.random.default_rng(0).uniform(-1, 1, shape), tf.float32)
  latent = model.sample_latent(16, tf.constant([1, 2], tf.int64))
  return model, real, latent


# The closed forms of docs/nagarajan_kolter.md (section 1), at the toy's midpoint grid.
@pytest.mark.parametrize("loss, eta, expected", [
    ("wgan", 0.5, -0.2222 + 0.6285j), ("wgan", 0.0, 0.6667j), ("wgan", 1.0, -0.4444 + 0.4969j),
    ("minimax", 0.0, -0.0500 + 0.3296j), ("minimax", 0.5, -0.1056 + 0.3162j)])
def test_toy_eigenvalues_are_the_closed_form(loss, eta, expected):
  system = nk_toy.ToySystem(loss, eta)
  jacobian = spectrum.GameJacobian(system.model, system.points, system.points)
  # Forward-over-reverse here, reverse-over-reverse in nk_toy: equal to the last bits.
  np.testing.assert_allclose(jacobian.dense(), system.jacobian().numpy(), rtol=1e-12, atol=1e-15)
  result = spectrum.eigenvalues(jacobian, k=2)
  assert result.method == "dense" and result.size == 2
  got = sorted(result.eigenvalues, key=lambda v: v.imag)
  np.testing.assert_allclose([got[0], got[1]], [np.conj(expected), expected], atol=1e-4)
  assert max(result.residuals) < 1e-12
  assert result.max_real == pytest.approx(expected.real, abs=1e-4)


@pytest.mark.parametrize("options", [dict(), dict(eta=0.5), dict(penalty="gp", loss="wgan")])
def test_jacobian_vector_products_are_derivatives_of_the_field(options):
  """J v against the central difference (F(theta + h v) - F(theta - h v)) / 2h, in float64
  arithmetic on the float32 model's field (h = 1e-3)."""
  model, real, latent = _mog_gan(**options)
  jacobian = spectrum.GameJacobian(model, real, latent)
  vector = np.random.default_rng(3).standard_normal(jacobian.size)
  vector /= np.linalg.norm(vector)
  weights = [v.numpy() for v in jacobian.variables]

  def field_at(step):
    offset = 0
    for variable, value in zip(jacobian.variables, weights):
      size = value.size
      variable.assign(value + step * vector[offset:offset + size].reshape(value.shape))
      offset += size
    return jacobian.field()

  h = 1e-3
  difference = (field_at(h) - field_at(-h)) / (2 * h)
  field_at(0.0)
  product = jacobian.matvec(vector)
  assert np.linalg.norm(product) > 1e-3
  np.testing.assert_allclose(product, difference, atol=2e-3 * np.abs(difference).max())


@pytest.mark.parametrize("which", ["real", "modulus"])
def test_arnoldi_gives_the_dense_eigenvalues(which):
  model, real, latent = _mog_gan()
  jacobian = spectrum.GameJacobian(model, real, latent)
  dense = spectrum.eigenvalues(jacobian, k=4, which=which, method="dense")
  arnoldi = spectrum.eigenvalues(jacobian, k=4, which=which, method="arnoldi", tol=1e-12)
  assert arnoldi.method == "arnoldi" and jacobian.size > 50, jacobian.size
  np.testing.assert_allclose(arnoldi.eigenvalues, dense.eigenvalues, atol=1e-6)
  assert max(arnoldi.residuals) < 1e-5 and max(dense.residuals) < 1e-5
  key = dense.eigenvalues.real if which == "real" else np.abs(dense.eigenvalues)
  assert np.all(np.diff(key) <= 1e-12)  # largest first
  full = np.linalg.eigvals(jacobian.dense())
  top = np.max(full.real) if which == "real" else np.max(np.abs(full))
  assert key[0] == pytest.approx(top, abs=1e-9)


def test_batch_norm_statistics_are_left_as_they_were():
  model, real, latent = _mog_gan(batch_norm=True, loss="non_saturating")
  before = [v.numpy().copy() for v in model.generator.non_trainable_variables]
  assert before  # the generator has batch norm
  jacobian = spectrum.GameJacobian(model, real, latent)
  first = jacobian.matvec(np.ones(jacobian.size))
  second = jacobian.matvec(np.ones(jacobian.size))
  np.testing.assert_array_equal(first, second)
  for old, variable in zip(before, model.generator.non_trainable_variables):
    np.testing.assert_array_equal(old, variable.numpy())


def test_bad_arguments_are_one_clear_error():
  system = nk_toy.ToySystem("wgan", 0.5)
  jacobian = spectrum.GameJacobian(system.model, system.points, system.points)
  with pytest.raises(ValueError, match="which='largest'"):
    spectrum.eigenvalues(jacobian, which="largest")
  with pytest.raises(ValueError, match="Arnoldi needs k < 1"):
    spectrum.eigenvalues(jacobian, k=1, method="arnoldi")
