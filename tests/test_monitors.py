"""The live stability monitors (tfsmooth.monitors): each measure against an independent
computation, the bounds above what they bound, and a run's weights the same with and without."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsmooth
from tfsmooth import layers as tfs_layers
from tfsmooth import monitors
from tfsmooth import networks
from tfsmooth import theory
from tfsmooth.app import config as tfs_config
from tfsmooth.app import train


def _chu_gan(learning_rate=0.05):
  """Chu et al.'s setting in 2-D: 32 particles against an SN-ELU MLP, the RKHS penalty."""
  keras.utils.set_random_seed(0)
  discriminator = networks.mlp_discriminator(2, hidden_units=(16, 16), activation="elu",
                                             alpha=1.5)
  generator = networks.ParticleGenerator(32, (2,))
  model = tfsmooth.SmoothGAN(generator, discriminator, loss="indicator",
                             penalty=tfsmooth.RKHSPenalty(penalty_lambda=0.5, kernel_sigma=2.0))
  model.compile(d_optimizer=keras.optimizers.Adam(1e-2),
                g_optimizer=keras.optimizers.SGD(learning_rate))
  real = np.random.default_rng(1).normal(size=(64, 2)).astype(np.float32)
  model.fit(real, batch_size=16, epochs=1, verbose=0)  # 2 steps: the norms are off 1 now
  return model, real


def _finite_difference_gradient_norms(discriminator, samples, h=1e-2):
  """|grad_x D(x)| by central differences along each input axis."""
  samples = np.asarray(samples, np.float64)
  columns = []
  for axis in range(samples.shape[1]):
    step = np.zeros_like(samples)
    step[:, axis] = h
    up = discriminator(tf.constant(samples + step, tf.float32), training=False).numpy()
    down = discriminator(tf.constant(samples - step, tf.float32), training=False).numpy()
    columns.append((up - down)[:, 0] / (2 * h))
  return np.linalg.norm(np.stack(columns, 1), axis=1)


def test_each_measure_equals_an_independent_computation():
  model, real = _chu_gan()
  measures = monitors.stability_measures(model, real, seed=3)
  discriminator = model.discriminator
  np.testing.assert_allclose(
      measures["lipschitz_real"], _finite_difference_gradient_norms(discriminator, real).max(),
      rtol=1e-3)
  fake = model.sample(64, 3).numpy()
  np.testing.assert_allclose(
      measures["lipschitz_fake"], _finite_difference_gradient_norms(discriminator, fake).max(),
      rtol=1e-3)
  # Each SN layer's operator norm: the largest singular value of W / sigma (numpy's SVD).
  dense = [layer for layer in discriminator.layers if isinstance(layer, tfs_layers.SNDense)]
  assert len(dense) == 3
  for layer in dense:
    normalized = layer.kernel.numpy() / float(layer.sigma())
    assert measures[f"operator_norm/{layer.name}"] == pytest.approx(
        np.linalg.svd(normalized, compute_uv=False)[0], rel=1e-5)
  assert any(abs(measures[f"operator_norm/{layer.name}"] - 1) > 1e-4 for layer in dense)
  # The bounds from the current weights, and gamma* as Theorem 1 composes it.
  constants = theory.stability_constants(discriminator, 0.5, 2.0, n_particles=32)
  assert measures["alpha_bound"] == pytest.approx(constants.alpha, rel=1e-9)
  assert measures["beta1_bound"] == pytest.approx(constants.beta1, rel=1e-9)
  assert measures["gamma_star"] == pytest.approx(constants.gamma_star, rel=1e-9)
  assert measures["gamma_ratio"] == pytest.approx(0.05 / constants.gamma_star, rel=1e-6)
  # D1 holds: the empirical constant never exceeds the bound.
  assert max(measures["lipschitz_real"], measures["lipschitz_fake"]) <= measures["alpha_bound"]


def test_a_convolutions_warm_started_norm_is_the_cold_one():
  """The monitors' repeated calls start Lanczos from the last top vector: the same norm."""
  layer = tfs_layers.SNConv2D(4, 3, strides=2)
  layer.build((None, 8, 8, 3))
  first = layer.bounds().lipschitz
  layer.kernel.assign(layer.kernel * 1.1 + 0.01)  # the weights move, sigma's estimate lags
  warm = layer.bounds().lipschitz
  cold = tfs_layers.conv2d_operator_norm(layer.kernel / layer.sigma(), (8, 8, 3), (2, 2))
  assert warm == pytest.approx(cold, rel=1e-6) and warm != pytest.approx(first, rel=1e-3)


def test_the_callback_writes_the_group_every_n_steps(tmp_path, tensorboard):
  model, real = _chu_gan()
  monitor = monitors.StabilityMonitor(real, str(tmp_path), every=2)
  model.fit(real, batch_size=16, epochs=4, verbose=0, callbacks=[monitor])  # steps 3 to 10
  assert [step for step, _ in monitor.history] == [4, 6, 8, 10]
  logs = tensorboard(tmp_path)
  assert logs.steps("stability/lipschitz_real") == [4, 6, 8, 10]
  assert logs.steps("stability/g_grad_norm") == [4, 6, 8, 10]
  assert {"stability/gamma_star", "stability/alpha_bound"} <= logs.tags()
  with pytest.raises(ValueError, match="every=0"):
    monitors.StabilityMonitor(real, str(tmp_path), every=0)


def _run(run_dir, stability_every):
  config = tfs_config.make(
      tfs_config.TrainConfig, run_dir=str(run_dir), dataset="mog_ring", steps=20, batch_size=32,
      generator="particle", n_particles=64, discriminator="mlp", hidden_units=(16,),
      activation="elu", loss="indicator", penalty="rkhs", n_disc=2, d_lr=1e-2, g_lr_ratio=2.0,
      log_every=5, sample_every=10, checkpoint_every=10, stability_every=stability_every,
      eval_at_end=False, seed=4)
  train.train(config, verbose=0)
  reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints"))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if "save_counter" not in name and name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_a_run_monitors_every_n_steps_and_trains_the_same_weights(tmp_path, tensorboard):
  monitored = _run(tmp_path / "monitored", stability_every=5)
  plain = _run(tmp_path / "plain", stability_every=0)
  assert monitored.keys() == plain.keys()
  for name, value in plain.items():
    np.testing.assert_array_equal(monitored[name], value, err_msg=name)
  logs = tensorboard(tmp_path / "monitored" / "train")
  stability = {tag for tag in logs.tags() if tag.startswith("stability/")}
  assert {"stability/lipschitz_real", "stability/lipschitz_fake", "stability/alpha_bound",
          "stability/beta1_bound", "stability/gamma_star", "stability/gamma_ratio",
          "stability/g_grad_norm"} <= stability
  assert len([tag for tag in stability if tag.startswith("stability/operator_norm/")]) == 2
  assert logs.steps("stability/gamma_ratio") == [5, 10, 15, 20]
  # gamma/gamma* starts at the run's --g_lr_ratio and moves with the weights.
  ratios = logs.scalars()["stability/gamma_ratio"]
  assert ratios[5] == pytest.approx(2.0, rel=0.5) and len(set(ratios.values())) == 4
  assert not any(t.startswith("stability/")
                 for t in tensorboard(tmp_path / "plain" / "train").tags())
