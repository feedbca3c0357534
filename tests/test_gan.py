"""The losses, penalties and train step against independent computations (NumPy, analytic
gradients, finite differences)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import gan
from tfsmooth import layers as tfs_layers
from tfsmooth import losses
from tfsmooth import networks
from tfsmooth.app import nk_toy


def _sgd(lr):
  return keras.optimizers.SGD(learning_rate=lr)


def _tanh_discriminator(w1, b1, w2):
  model = keras.Sequential([keras.Input((w1.shape[0],)),
                            keras.layers.Dense(w1.shape[1], activation="tanh"),
                            keras.layers.Dense(1, use_bias=False)])
  model.layers[0].kernel.assign(w1)
  model.layers[0].bias.assign(b1)
  model.layers[1].kernel.assign(w2)
  return model


@pytest.mark.parametrize("output_weight,gradient_weight", [(1.0, 1.0), (0.0, 1.0), (2.0, 0.0)])
def test_rkhs_penalty_equals_numpy(output_weight, gradient_weight):
  rng = np.random.default_rng(0)
  w1 = rng.standard_normal((3, 4)).astype(np.float32)
  b1 = rng.standard_normal(4).astype(np.float32)
  w2 = rng.standard_normal((4, 1)).astype(np.float32)
  real = rng.standard_normal((6, 3)).astype(np.float32)
  particles = rng.standard_normal((5, 3)).astype(np.float32)
  generator = networks.ParticleGenerator(5, (3,))
  generator.particles.assign(particles)
  penalty = losses.RKHSPenalty(penalty_lambda=0.7, kernel_sigma=1.3,
                               output_penalty_weight=output_weight,
                               gradient_penalty_weight=gradient_weight)
  model = gan.SmoothGAN(generator, _tanh_discriminator(w1, b1, w2), loss="indicator",
                        penalty=penalty)
  latent = tf.constant([4, 0, 2, 2, 1, 3])
  seed = tf.constant([7, 11], tf.int64)
  _, terms = model.discriminator_gradients(tf.constant(real), latent, seed)

  fake = particles[latent.numpy()]
  t = tf.random.stateless_uniform((6, 1), seed=seed).numpy()  # TF's RNG, drawn as the code does
  x_hat = (t * real + (1 - t) * fake).astype(np.float64)
  hidden = np.tanh(x_hat @ w1 + b1)
  phi = hidden @ w2
  grad = ((1 - hidden**2) * w2[:, 0]) @ w1.T
  scale = 1 / (2 * 0.7)
  expected_output = scale * output_weight * np.mean(phi**2)
  expected_gradient = scale * gradient_weight * 1.3**2 / 2 * np.mean(np.sum(grad**2, axis=1))
  assert float(terms["penalty_output"]) == pytest.approx(expected_output, rel=1e-5, abs=1e-7)
  assert float(terms["penalty_gradient"]) == pytest.approx(expected_gradient, rel=1e-5, abs=1e-7)
  d_real = np.tanh(real @ w1 + b1) @ w2
  d_fake = np.tanh(fake @ w1 + b1) @ w2
  expected_loss = -(d_fake.mean() - d_real.mean()) + expected_output + expected_gradient
  assert float(terms["d_loss"]) == pytest.approx(expected_loss, rel=1e-5)


def test_wgan_gp_penalty_equals_numpy():
  grads = np.array([[3.0, 4.0], [0.0, 0.5], [1.0, 0.0]], np.float32)
  expected = 10.0 * np.mean((np.linalg.norm(grads, axis=1) - 1) ** 2)
  assert float(losses.gradient_penalty(tf.constant(grads), 10.0)) == pytest.approx(expected,
                                                                                   rel=1e-5)


def _tanh_game(loss, penalty, rng):
  """A tanh discriminator against 5 particles, its weights and the numpy D and grad_x D."""
  w1 = rng.standard_normal((3, 4)).astype(np.float32)
  b1 = rng.standard_normal(4).astype(np.float32)
  w2 = rng.standard_normal((4, 1)).astype(np.float32)
  generator = networks.ParticleGenerator(5, (3,))
  generator.particles.assign(rng.standard_normal((5, 3)).astype(np.float32))
  model = gan.SmoothGAN(generator, _tanh_discriminator(w1, b1, w2), loss=loss, penalty=penalty)

  def d(x):
    return (np.tanh(x @ w1 + b1) @ w2)[:, 0]

  def grad_d(x):
    return ((1 - np.tanh(x @ w1 + b1) ** 2) * w2[:, 0]) @ w1.T

  return model, generator.particles.numpy(), d, grad_d


# V and the generator's loss as numpy computes them from D's outputs (docs/training.md's table).
NUMPY_LOSSES = {
    "hinge": (lambda r, f: -np.mean(np.maximum(0, 1 - r)) - np.mean(np.maximum(0, 1 + f)),
              lambda f: -np.mean(f)),
    "least_squares": (lambda r, f: -0.5 * np.mean((r - 1) ** 2) - 0.5 * np.mean(f**2),
                      lambda f: 0.5 * np.mean((f - 1) ** 2)),
}


@pytest.mark.parametrize("loss", sorted(NUMPY_LOSSES))
def test_hinge_and_least_squares_losses_equal_numpy(loss):
  rng = np.random.default_rng(4)
  model, particles, d, _ = _tanh_game(loss, "none", rng)
  real = rng.standard_normal((6, 3)).astype(np.float32)
  latent = tf.constant([4, 0, 2, 2, 1, 3])
  fake = particles[latent.numpy()]
  value, generator_loss = NUMPY_LOSSES[loss]
  _, terms = model.discriminator_gradients(tf.constant(real), latent, tf.constant([1, 2], tf.int64))
  assert float(terms["d_loss"]) == pytest.approx(-value(d(real), d(fake)), rel=1e-5)
  # The batch takes both branches of each hinge (outputs on both sides of 1 and of -1).
  assert np.ptp(np.sign(d(real) - 1)) == 2 and np.ptp(np.sign(d(fake) + 1)) == 2
  _, g_terms = model.generator_gradients(tf.constant(real), latent)
  assert float(g_terms["g_loss"]) == pytest.approx(generator_loss(d(fake)), rel=1e-5)


@pytest.mark.parametrize("penalty", ["r1", "r2", "r1r2"])
def test_zero_centred_gradient_penalties_equal_numpy(penalty):
  """R1 / R2 (Mescheder et al. 2018, Eqs. 9-10): gamma/2 E |grad_x D|^2 on real / fake."""
  rng = np.random.default_rng(5)
  model, particles, d, grad_d = _tanh_game("wgan", losses.get_penalty(penalty, r_gamma=3.0), rng)
  real = rng.standard_normal((6, 3)).astype(np.float32)
  latent = tf.constant([4, 0, 2, 2, 1, 3])
  fake = particles[latent.numpy()]
  _, terms = model.discriminator_gradients(tf.constant(real), latent, tf.constant([1, 2], tf.int64))
  r1 = 1.5 * np.mean(np.sum(grad_d(real.astype(np.float64)) ** 2, axis=1))
  r2 = 1.5 * np.mean(np.sum(grad_d(fake.astype(np.float64)) ** 2, axis=1))
  expected = {"r1": r1, "r2": r2, "r1r2": r1 + r2}[penalty]
  assert float(terms["penalty"]) == pytest.approx(expected, rel=1e-5)
  assert float(terms["d_loss"]) == pytest.approx(-(d(real).mean() - d(fake).mean()) + expected,
                                                 rel=1e-5)
  if penalty == "r1r2":
    assert float(terms["penalty_r1"]) == pytest.approx(r1, rel=1e-5)
    assert float(terms["penalty_r2"]) == pytest.approx(r2, rel=1e-5)


def test_mmd_matches_numpy():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((7, 2))
  y = rng.standard_normal((5, 2)) + 1.0
  sigma = 0.8

  def k(a, b):
    return np.exp(-np.sum((a[:, None] - b[None]) ** 2, -1) / (2 * sigma**2))

  expected = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
  ours = float(losses.mmd_squared(tf.constant(x, tf.float32), tf.constant(y, tf.float32), sigma))
  assert ours == pytest.approx(expected, rel=1e-5)
  assert float(losses.mmd_loss(tf.constant(x, tf.float32), tf.constant(y, tf.float32), sigma,
                               3.0)) == pytest.approx(1.5 * expected, rel=1e-5)


def _toy_models(w, a):
  """Nagarajan-Kolter toy in float32: D_w(x) = w x^2, G_a(z) = a z (docs/theory.md section 2)."""
  return nk_toy.toy_models(w, a, dtype="float32")


def _toy_generator_objective(loss, a, w, x, z, eta):
  """NumPy float64: generator loss + eta * (dV/dw)^2 for the toy, dV/dw written analytically."""
  def sigmoid(u):
    return 1 / (1 + np.exp(-u))

  fake_sq = (a * z) ** 2
  if loss == "wgan":
    g_loss = -np.mean(w * fake_sq)
    dv_dw = np.mean(x**2) - np.mean(fake_sq)
  else:  # minimax: V = -E softplus(-w x^2) - E softplus(w a^2 z^2)
    g_loss = -np.mean(np.log1p(np.exp(w * fake_sq)))
    dv_dw = np.mean(sigmoid(-w * x**2) * x**2) - np.mean(sigmoid(w * fake_sq) * fake_sq)
  return g_loss + eta * dv_dw**2


@pytest.mark.parametrize("loss", ["wgan", "minimax"])
@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_generator_gradient_with_eta_equals_independent_derivative(loss, eta):
  rng = np.random.default_rng(2)
  x = rng.uniform(-1, 1, (16, 1))
  z = rng.uniform(-1, 1, (16, 1))
  a, w = 0.7, 0.3
  generator, discriminator = _toy_models(w, a)
  model = gan.SmoothGAN(generator, discriminator,
                        loss=loss, penalty="none", eta=eta, noise_dim=1)
  real, latent = tf.constant(x, tf.float32), tf.constant(z, tf.float32)
  gradients, terms = model.generator_gradients(real, latent)
  h = 1e-6

  def derivative(eta_):
    return (_toy_generator_objective(loss, a + h, w, x, z, eta_) -
            _toy_generator_objective(loss, a - h, w, x, z, eta_)) / (2 * h)
  assert float(gradients[0][0, 0]) == pytest.approx(derivative(eta), rel=1e-4, abs=1e-6)
  assert float(terms["g_grad_norm"]) == pytest.approx(abs(derivative(0.0)), rel=1e-4, abs=1e-6)
  assert ("nk_grad_norm" in terms) == (eta > 0) == ("nk_grad_norm" in model.metric_names)
  if eta > 0:  # the regulariser's own gradient, in the alternating and the simultaneous step
    regulariser = abs(derivative(eta) - derivative(0.0))
    assert float(terms["nk_grad_norm"]) == pytest.approx(regulariser, rel=1e-4, abs=1e-6)
    _, _, joint = model.joint_gradients(real, latent, None)
    assert float(joint["nk_grad_norm"]) == pytest.approx(regulariser, rel=1e-4, abs=1e-6)
    # one parameter: the cosine is the sign of the two derivatives' product
    sign = np.sign(derivative(0.0) * (derivative(eta) - derivative(0.0)))
    assert float(terms["nk_cosine"]) == pytest.approx(sign, abs=1e-6)
    assert float(joint["nk_cosine"]) == pytest.approx(sign, abs=1e-6)


def test_nk_grad_norm_and_cosine_are_those_of_independently_taken_gradients():
  """The regulariser's gradient norm and its cosine with the generator loss's gradient, on MLPs
  with the non-saturating loss (the stacked-MNIST setting), against gradients taken here."""
  keras.utils.set_random_seed(3)
  generator = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5, activation="tanh"),
                                keras.layers.Dense(2)])
  discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(6, activation="tanh"),
                                    keras.layers.Dense(1)])
  eta = 0.5
  model = gan.SmoothGAN(generator, discriminator, loss="non_saturating", penalty="none",
                        eta=eta, noise_dim=3)
  real, latent = tf.random.normal((16, 2)), tf.random.normal((16, 3))
  _, terms = model.generator_gradients(real, latent)
  with tf.GradientTape(persistent=True) as tape:
    fake = generator(latent)
    with tf.GradientTape() as inner:
      d_real, d_fake = discriminator(real), discriminator(fake)
      value = -tf.reduce_mean(tf.nn.softplus(-d_real)) - tf.reduce_mean(tf.nn.softplus(d_fake))
    regulariser = eta * tf.add_n([tf.reduce_sum(g**2) for g in inner.gradient(
        value, discriminator.trainable_variables)])
    g_loss = tf.reduce_mean(tf.nn.softplus(-d_fake))
  flat = lambda target: np.concatenate([  # noqa: E731
      g.numpy().ravel() for g in tape.gradient(target, generator.trainable_variables)])
  loss_gradient, regulariser_gradient = flat(g_loss), flat(regulariser)
  cosine = loss_gradient @ regulariser_gradient / (
      np.linalg.norm(loss_gradient) * np.linalg.norm(regulariser_gradient))
  assert float(terms["nk_grad_norm"]) == pytest.approx(np.linalg.norm(regulariser_gradient),
                                                       rel=1e-4)
  assert float(terms["nk_cosine"]) == pytest.approx(cosine, rel=1e-4, abs=1e-6)
  assert abs(cosine) < 0.99  # a real angle, not the one-parameter toy's +-1


def test_particle_sgd_step_moves_each_particle_by_lr_over_n_times_grad_phi():
  n, lr = 6, 0.9
  discriminator = networks.mlp_discriminator(2, (8,), "softplus", alpha=1.0)
  tfs_layers.converge_spectral_norms(discriminator)
  generator = networks.ParticleGenerator(n, (2,))
  before = generator.particles.numpy().copy()
  model = gan.SmoothGAN(generator, discriminator,
                        loss="indicator", penalty="rkhs", n_disc=1, particle_batch=0)
  model.compile(d_optimizer=_sgd(0.0), g_optimizer=_sgd(lr))
  real = tf.random.normal((1, 4, 2))
  x = tf.constant(before)
  with tf.GradientTape() as tape:
    tape.watch(x)
    phi = discriminator(x, training=False)
  grad_phi = tape.gradient(phi, x).numpy()  # per-particle grad phi(theta_i)
  model.train_step(gan.batch_major(real))
  np.testing.assert_allclose(generator.particles.numpy(), before - lr / n * grad_phi,
                             rtol=1e-5, atol=1e-6)


def _tiny_gan(update, n_disc=1, eta=0.0):
  keras.utils.set_random_seed(5)
  generator, discriminator = _toy_models(0.3, 0.7)
  model = gan.SmoothGAN(generator, discriminator,
                        loss="wgan", penalty="none", n_disc=n_disc, update=update, eta=eta,
                        noise_dim=1)
  model.compile(d_optimizer=_sgd(0.1), g_optimizer=_sgd(0.1))
  return model


def test_simultaneous_update_uses_gradients_at_the_same_point():
  model = _tiny_gan("simultaneous")
  x = tf.constant([[[0.5], [-0.8], [0.9]]])
  # One forward pass per player: both gradients at the same samples G(z).
  z = model.sample_latent(3, model._seed(model.n_disc * 2 - 2))  # pylint: disable=protected-access
  w, a = 0.3, 0.7
  ex2 = float(np.mean(x.numpy() ** 2))
  # WGAN toy: dV/dw = E x^2 - a^2 E z^2 (D ascends), dV/da = -2 a w E z^2 (G descends).
  w_new = w + 0.1 * (ex2 - a**2 * float(tf.reduce_mean(z**2)))
  a_new = a - 0.1 * (-2 * a * w * float(tf.reduce_mean(z**2)))
  model.train_step(gan.batch_major(x))
  assert float(model.discriminator.layers[-1].kernel[0, 0]) == pytest.approx(w_new, rel=1e-5)
  assert float(model.generator.layers[-1].kernel[0, 0]) == pytest.approx(a_new, rel=1e-5)


def test_alternating_update_lets_the_generator_see_the_new_discriminator():
  model = _tiny_gan("alternating")
  x = tf.constant([[[0.5], [-0.8], [0.9]]])
  z = model.sample_latent(3, model._seed(0))  # pylint: disable=protected-access
  zg = model._generator_latent(3)  # pylint: disable=protected-access
  w, a = 0.3, 0.7
  w_new = w + 0.1 * (float(np.mean(x.numpy() ** 2)) - a**2 * float(tf.reduce_mean(z**2)))
  a_new = a - 0.1 * (-2 * a * w_new * float(tf.reduce_mean(zg**2)))
  model.train_step(gan.batch_major(x))
  assert float(model.generator.layers[-1].kernel[0, 0]) == pytest.approx(a_new, rel=1e-5)


def test_n_disc_discriminator_steps_per_generator_step():
  model = _tiny_gan("alternating", n_disc=3)
  x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (3, 4, 1)), tf.float32)
  model.train_step(gan.batch_major(x))
  assert int(model.d_optimizer.iterations) == 3
  assert int(model.g_optimizer.iterations) == 1
  assert int(model.step) == 1


def test_mmd_loss_trains_no_discriminator():
  keras.utils.set_random_seed(0)
  generator = networks.ParticleGenerator(4, (2,))
  discriminator = networks.mlp_discriminator(2, (4,), "elu")
  model = gan.SmoothGAN(generator, discriminator, loss="mmd", penalty="none")
  model.compile(d_optimizer=_sgd(0.1), g_optimizer=_sgd(0.1))
  before = [v.numpy().copy() for v in discriminator.trainable_variables]
  metrics = model.train_step(gan.batch_major(tf.random.normal((2, 8, 2))))
  for old, new in zip(before, discriminator.trainable_variables):
    np.testing.assert_array_equal(old, new.numpy())
  assert float(metrics["g_loss"]) > 0
  assert int(model.d_optimizer.iterations) == 0


# ---------------------------------------------------------------------------------------------
# Unrolled GAN (Metz et al. 2017), the Nagarajan-Kolter baseline


@pytest.mark.parametrize("make_optimizer", [
    lambda: keras.optimizers.Adam(learning_rate=0.01, beta_1=0.5),
    lambda: keras.optimizers.SGD(learning_rate=0.05)])
def test_differentiable_optimizer_rule_matches_keras_apply(make_optimizer):
  keras.utils.set_random_seed(1)
  model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
  variables = model.trainable_variables
  optimizer = make_optimizer()
  rng = np.random.default_rng(0)

  def draw():
    return [tf.constant(rng.normal(size=v.shape), tf.float32) for v in variables]
  for _ in range(3):  # a state with non-zero moments and step count
    optimizer.apply(draw(), variables)
  rule = gan.DifferentiableOptimizerRule(optimizer, variables)
  params, state = [tf.identity(v) for v in variables], rule.initial_state
  for k in range(2):
    gradients = draw()
    params, state = rule.step(params, gradients, state, k)
    optimizer.apply(gradients, variables)
    for expected, got in zip(variables, params):
      np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)


def test_unrolled_generator_gradient_equals_analytic_toy_gradient():
  """WGAN toy with SGD(h) unrolled K steps: dV/dw = E x^2 - a^2 E z^2 does not depend on w, so
  w_K = w + K h (E x^2 - a^2 E z^2), the generator loss is -w_K a^2 E z^2 and
  d/da = -2 a E z^2 w_K + 2 a^3 K h (E z^2)^2."""
  rng = np.random.default_rng(3)
  x, z = rng.uniform(-1, 1, (16, 1)), rng.uniform(-1, 1, (16, 1))
  w, a, h, k = 0.3, 0.7, 0.2, 5
  generator, discriminator = _toy_models(w, a)
  model = gan.SmoothGAN(generator, discriminator,
                        loss="wgan", penalty="none", unroll_steps=k, noise_dim=1)
  model.compile(d_optimizer=_sgd(h), g_optimizer=_sgd(0.1))
  gradients, _ = model.generator_gradients(tf.constant(x, tf.float32), tf.constant(z, tf.float32))
  ex2, ez2 = np.mean(x**2), np.mean(z**2)
  w_k = w + k * h * (ex2 - a**2 * ez2)
  expected = -2 * a * ez2 * w_k + 2 * a**3 * k * h * ez2**2
  assert float(gradients[0][0, 0]) == pytest.approx(expected, rel=1e-5)
  assert float(discriminator.layers[-1].kernel[0, 0]) == pytest.approx(w)  # D itself untouched


def test_unrolled_adam_gradient_equals_finite_difference():
  """Minimax toy in float64 with Adam unrolled 4 steps: autodiff through the unroll equals a
  central difference of the unrolled generator loss in a."""
  rng = np.random.default_rng(4)
  x = tf.constant(rng.uniform(-1, 1, (32, 1)))
  z = tf.constant(rng.uniform(-1, 1, (32, 1)))
  generator, discriminator = nk_toy.toy_models(0.3, 0.7)
  model = gan.SmoothGAN(generator, discriminator,
                        loss="minimax", penalty="none", unroll_steps=4, noise_dim=1)
  model.compile(d_optimizer=keras.optimizers.Adam(0.05, beta_1=0.5), g_optimizer=_sgd(0.1))
  model.d_optimizer.apply([tf.constant([[0.2]], tf.float64)], discriminator.trainable_variables)
  gradients, metrics = model.generator_gradients(x, z)
  kernel = generator.layers[-1].kernel

  def unrolled_loss(a):
    kernel.assign([[a]])
    fake = generator(z)
    outputs = model.unrolled_discriminator_outputs(x, fake)
    return float(losses.get_loss("minimax").generator_loss(outputs))
  a0, step = float(kernel[0, 0]), 1e-6
  difference = (unrolled_loss(a0 + step) - unrolled_loss(a0 - step)) / (2 * step)
  assert float(gradients[0][0, 0]) == pytest.approx(difference, rel=1e-6)
  assert float(metrics["g_loss"]) == pytest.approx(unrolled_loss(a0), rel=1e-12)


def test_unrolling_changes_the_generator_step_only():
  """Alternating step with and without unrolling from the same state and seed: the
  discriminator and its optimiser end identical (the unroll is a side-effect-free lookahead),
  the generator does not."""
  def one_step(unroll_steps):
    keras.utils.set_random_seed(7)
    generator = networks.mlp_generator(4, 2, (8,))
    discriminator = networks.nk_mlp_discriminator(2, (8,))
    model = gan.SmoothGAN(generator, discriminator,
                          loss="minimax", penalty="none", n_disc=1,
                          unroll_steps=unroll_steps, noise_dim=4)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5),
                  g_optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5))
    model.train_step(gan.batch_major(tf.random.stateless_normal((1, 16, 2), seed=[1, 2])))
    return ([v.numpy() for v in discriminator.trainable_variables + model.d_optimizer.variables],
            [v.numpy() for v in generator.trainable_variables])
  d_plain, g_plain = one_step(0)
  d_unrolled, g_unrolled = one_step(3)
  for plain, unrolled in zip(d_plain, d_unrolled):
    np.testing.assert_array_equal(plain, unrolled)
  assert any(not np.array_equal(p, u) for p, u in zip(g_plain, g_unrolled))


def test_a_loss_added_through_the_registry_trains(monkeypatch):
  """The hinge loss (Lim and Ye 2017) in one registry entry: a discriminator step descends
  ``E relu(1 - D(x)) + E relu(1 + D(G(z)))`` and the generator ``-E D(G(z))``."""
  monkeypatch.setitem(losses.LOSSES, "hinge", losses.Loss(
      "hinge", "hinge loss",
      value=lambda d_real, d_fake, mean: -mean(tf.nn.relu(1 - d_real)) - mean(
          tf.nn.relu(1 + d_fake)),
      generator_loss=lambda d_fake, mean: -mean(d_fake)))
  model = gan.SmoothGAN(*_toy_models(0.3, 0.7), loss="hinge", penalty="none", n_disc=1,
                        noise_dim=1)
  model.compile(d_optimizer=_sgd(0.1), g_optimizer=_sgd(0.1))
  x = tf.constant([[[0.5], [-0.8], [0.9]]])
  z = model.sample_latent(3, model._seed(0)).numpy()  # pylint: disable=protected-access
  zg = model._generator_latent(3).numpy()  # pylint: disable=protected-access
  metrics = model.train_step(gan.batch_major(x))
  # D_w(x) = w x^2 with w = 0.3, G_a(z) = a z with a = 0.7: all hinges active (|D| < 1).
  x2, fake2 = x.numpy()[0, :, 0] ** 2, (0.7 * z[:, 0]) ** 2
  w_new = 0.3 - 0.1 * (-np.mean(x2) + np.mean(fake2))
  a_new = 0.7 - 0.1 * (-np.mean(2 * w_new * 0.7 * zg[:, 0] ** 2))
  assert float(metrics["value"]) == pytest.approx(-np.mean(1 - 0.3 * x2) - np.mean(
      1 + 0.3 * fake2), rel=1e-6)
  assert float(model.discriminator.layers[-1].kernel[0, 0]) == pytest.approx(w_new, rel=1e-6)
  assert float(model.generator.layers[-1].kernel[0, 0]) == pytest.approx(a_new, rel=1e-6)


def test_a_loss_spec_is_either_a_game_or_closed_form():
  with pytest.raises(ValueError, match="give value and generator_loss"):
    losses.Loss("half", "value without a generator loss", value=lambda r, f, mean: mean(r))
  with pytest.raises(ValueError, match="unknown loss 'hinge2'; known: indicator"):
    losses.get_loss("hinge2")


@pytest.mark.parametrize("n_disc", [1, 2, 31, 32, 40, 100])
def test_random_draws_never_collide(n_disc):
  """Every draw of a step (2 per discriminator step, 1 for the generator) has its own seed, on
  every step, whatever n_disc; below 32 the seeds are those of earlier tfsmooth versions (64
  draws per step), so documented runs reproduce bit for bit."""
  model = gan.SmoothGAN(*_toy_models(0.3, 0.7), loss="wgan", penalty="none", n_disc=n_disc,
                        noise_dim=1)
  draws = [*range(2 * n_disc), model.draws_per_step - 1]  # what train_step draws
  assert len(set(draws)) == 2 * n_disc + 1
  seeds = []
  for step in range(3):
    model.step.assign(step)
    seeds += [tuple(model._seed(d).numpy()) for d in draws]  # pylint: disable=protected-access
  assert len(set(seeds)) == len(seeds)
  if n_disc < 32:
    model.step.assign(5)
    assert tuple(model._seed(63).numpy()) == (0, (5 * 64 + 63) * 4096)  # pylint: disable=protected-access


def test_metz_networks_have_the_stacked_mnist_shapes_of_metz_et_al():
  """Metz et al.'s Table 2 networks (as PacGAN's code builds them): the generator 256 -> 4x4x64
  -> 7x7x32 -> 14x14x16 -> 28x28x8 -> 28x28x3; the discriminators 2-4-8 (quarter) and 4-8-16
  (half) channels at 14, 7 and 4 pixels."""
  generator = networks.metz_generator(256, (28, 28, 3))
  shapes = [tuple(layer.output.shape[1:]) for layer in generator.layers
            if "conv" in layer.name or "reshape" in layer.name]
  assert shapes == [(4, 4, 64), (7, 7, 32), (14, 14, 16), (28, 28, 8), (28, 28, 3)]
  for base, channels in ((2, (2, 4, 8)), (4, (4, 8, 16))):
    discriminator = networks.metz_discriminator((28, 28, 3), base)
    convs = [layer for layer in discriminator.layers if "conv" in layer.name]
    assert [tuple(c.output.shape[1:]) for c in convs] == [
        (14, 14, channels[0]), (7, 7, channels[1]), (4, 4, channels[2])]
    assert discriminator.output_shape == (None, 1)
  with pytest.raises(ValueError, match="28x28 images"):
    networks.metz_generator(8, (32, 32, 3))


def test_the_metz_discriminator_on_batch_statistics_cannot_see_a_batchs_contrast():
  """Batch norm after every convolution, on each batch's own statistics (as it trains): scaling
  a whole batch by 0.3 leaves D's outputs unchanged up to the batch norm's epsilon, so D gives
  the generator no push towards the data's contrast (docs/nagarajan_kolter.md). An offset is
  seen, through the zero-padded borders."""
  keras.utils.set_random_seed(0)
  discriminator = networks.metz_discriminator((28, 28, 3), 2)
  x = tf.random.uniform((16, 28, 28, 3), -1, 1)
  outputs = discriminator(x, training=True).numpy()
  assert outputs.std() > 1e-2  # D separates the samples of a batch
  scale = np.abs(outputs).max()

  def change(y):
    return np.abs(y.numpy() - outputs).max() / scale
  # Epsilon (1e-5) against the first layer's batch variance (2.4e-4 for the scaled batch at this
  # initialisation) changes that layer's normalisation by 2%: the tolerance (measured: 0.13%).
  assert change(discriminator(0.3 * x, training=True)) < 0.02
  assert change(discriminator(x + 0.5, training=True)) > 0.1


def test_a_batch_norm_discriminator_sees_real_and_generated_batches_separately():
  """DCGAN practice (and Metz et al.'s code): each batch is normalised by its own statistics,
  in both players' steps; in one call on both, the statistics would mix real and generated."""
  keras.utils.set_random_seed(0)
  generator = networks.metz_generator(8, (28, 28, 3))
  discriminator = networks.metz_discriminator((28, 28, 3), 2)
  model = gan.SmoothGAN(generator, discriminator, loss="non_saturating", penalty=None, n_disc=1)
  assert model.batch_statistics
  assert not gan.SmoothGAN(generator, networks.metz_discriminator((28, 28, 3), 2, batch_norm=False),
                       penalty=None).batch_statistics
  rng = np.random.default_rng(0)
  real = tf.constant(rng.uniform(-1, 1, (6, 28, 28, 3)), tf.float32)
  fake = tf.constant(rng.uniform(-0.2, 0.2, (6, 28, 28, 3)), tf.float32)
  d_real, d_fake = model._discriminate(real, fake)  # pylint: disable=protected-access
  np.testing.assert_array_equal(d_real, discriminator(real, training=True))
  np.testing.assert_array_equal(d_fake, discriminator(fake, training=True))
  mixed = discriminator(tf.concat([real, fake], 0), training=True)
  assert np.max(np.abs(mixed[:6] - d_real)) > 1e-3  # the one-call statistics differ
  latent = model.sample_latent(6, tf.constant([1, 2], tf.int64))
  _, metrics = model.generator_gradients(real, latent)
  expected = np.mean(np.logaddexp(0.0, -discriminator(generator(latent, training=True),
                                                      training=True).numpy()))
  assert float(metrics["g_loss"]) == pytest.approx(expected, rel=1e-5)
