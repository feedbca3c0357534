"""SmoothGAN as a Keras user meets it (keras-io's WGAN-GP example is the bar): built from two
networks and plain arguments, compile with two optimisers, fit on plain batches of samples; the
losses and penalties as objects; the learning rate from gamma* for one's own networks."""

import dataclasses
import json
import pathlib
from typing import ClassVar

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsmooth
from tfsmooth import gan
from tfsmooth import losses
from tfsmooth import networks


def _image_gan(n_disc=2, seed=0, **kwargs):
  """A small DCGAN-style generator (a user's own) against an SN-ELU discriminator built from
  tfsmooth's layers."""
  keras.utils.set_random_seed(seed)
  generator = keras.Sequential([
      keras.Input((8,)), keras.layers.Dense(7 * 7 * 4), keras.layers.Reshape((7, 7, 4)),
      keras.layers.Conv2DTranspose(1, 4, strides=4, padding="same", activation="tanh")])
  discriminator = keras.Sequential([
      keras.Input((28, 28, 1)), tfsmooth.SNConv2D(4, 3, strides=2),
      tfsmooth.SmoothActivation("elu"), keras.layers.Flatten(), tfsmooth.SNDense(1),
      tfsmooth.AlphaScale(1.0)])
  model = tfsmooth.SmoothGAN(generator, discriminator, n_disc=n_disc, seed=seed, **kwargs)
  model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
  return model


def _images(count, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (count, 28, 28, 1)).astype(np.float32)


def _weights(model):
  return [v.numpy().copy() for v in model.generator.weights + model.discriminator.weights]


def test_fit_trains_on_a_dataset_of_plain_image_batches():
  model = _image_gan(loss="indicator", penalty=tfsmooth.RKHSPenalty(penalty_lambda=1.0))
  before = _weights(model)
  dataset = tf.data.Dataset.from_tensor_slices(_images(96)).batch(16, drop_remainder=True)
  history = model.fit(dataset, epochs=1, verbose=0)
  assert int(model.step.numpy()) == 3
  assert all(not np.array_equal(a, b) for a, b in zip(before, _weights(model)))
  for name in ("d_loss", "g_loss", "g_grad_norm", "penalty"):
    assert np.isfinite(history.history[name][-1])


def test_fit_groups_n_disc_consecutive_batches_into_one_step():
  """fit(plain batches) trains exactly as train_step on the step's n_disc batches does."""
  images = _images(64)
  by_fit = _image_gan(loss="wgan", penalty="gp")
  by_fit.fit(tf.data.Dataset.from_tensor_slices(images).batch(8, drop_remainder=True), epochs=1,
             verbose=0)
  by_hand = _image_gan(loss="wgan", penalty="gp")
  step = tf.function(by_hand.train_step)
  for s in range(4):  # step s gets batches 2s and 2s + 1
    step(gan.batch_major(tf.reshape(images[16 * s:16 * (s + 1)], (2, 8, 28, 28, 1))))
  for a, b in zip(_weights(by_fit), _weights(by_hand)):
    np.testing.assert_array_equal(a, b)


def test_fit_on_an_array_and_on_images_with_labels():
  images = _images(80)
  model = _image_gan(n_disc=1)
  model.fit(images, batch_size=16, epochs=2, verbose=0)  # 5 steps per epoch
  assert int(model.step.numpy()) == 10
  labelled = tf.data.Dataset.from_tensor_slices((images, np.zeros(80, np.int64))).batch(
      16, drop_remainder=True)
  model.fit(labelled, epochs=1, verbose=0)
  assert int(model.step.numpy()) == 15


def test_the_last_batch_of_a_dataset_without_drop_remainder_is_left_out():
  model = _image_gan(n_disc=2)
  model.fit(tf.data.Dataset.from_tensor_slices(_images(70)).batch(16), verbose=0)  # 16*4 + 6
  assert int(model.step.numpy()) == 2
  model.fit(tf.data.Dataset.from_tensor_slices(_images(80)).batch(16), verbose=0)  # 16*5
  assert int(model.step.numpy()) == 4  # 4 of the 5 batches: the length is known, not the last
  infinite = tf.data.Dataset.from_tensor_slices(_images(40)).batch(16).repeat()  # 16, 16, 8, ..
  model.fit(infinite, steps_per_epoch=3, verbose=0)
  assert int(model.step.numpy()) == 7


def test_a_wrong_shape_is_one_line_before_tracing_and_the_model_still_trains():
  model = _image_gan()
  wrong = tf.data.Dataset.from_tensor_slices(np.zeros((32, 32, 32, 3), np.float32)).batch(8)
  with pytest.raises(ValueError) as error:
    model.fit(wrong, verbose=0)
  message = str(error.value)
  assert "\n" not in message
  assert "(batch, 32, 32, 3)" in message and "(28, 28, 1)" in message
  with pytest.raises(ValueError, match=r"x have shape \(batch, 28, 28\)"):
    model.fit(np.zeros((10, 28, 28), np.float32), verbose=0)
  model.fit(tf.data.Dataset.from_tensor_slices(_images(32)).batch(8, drop_remainder=True),
            verbose=0)
  assert int(model.step.numpy()) == 2


def test_fit_twice_traces_without_creating_variables():
  """compile builds the optimisers: a second fit (a new trace) creates no variables."""
  model = _image_gan(n_disc=1)
  dataset = tf.data.Dataset.from_tensor_slices(_images(32)).batch(8, drop_remainder=True)
  model.fit(dataset, verbose=0)
  model.fit(dataset, epochs=2, verbose=0)
  assert int(model.step.numpy()) == 12


def test_the_step_values_are_keras_metrics_averaged_over_the_epoch():
  """fit's logs are the means since the epoch began of each step's values, as any Keras model's
  metrics are: an epoch of 4 steps logs the mean of what 4 epochs of one step log each."""
  images = _images(64)
  dataset = tf.data.Dataset.from_tensor_slices(images).batch(8, drop_remainder=True)
  by_epoch = _image_gan(penalty="rkhs")
  assert by_epoch.metrics_names == list(by_epoch.metric_names) == [
      "d_loss", "value", "d_real", "d_fake", "d_grad_norm", "penalty", "penalty_output",
      "penalty_gradient", "g_loss", "nk_regulariser", "g_grad_norm"]
  mean = by_epoch.fit(dataset, epochs=1, verbose=0).history
  by_step = _image_gan(penalty="rkhs")
  single = by_step.fit(dataset.repeat(), epochs=4, steps_per_epoch=1, verbose=0).history
  for a, b in zip(_weights(by_epoch), _weights(by_step)):  # the same training
    np.testing.assert_array_equal(a, b)
  for name in by_epoch.metric_names:
    assert len(set(single[name])) == 4 or name == "nk_regulariser", name  # values of 4 steps
    assert mean[name][0] == pytest.approx(np.mean(single[name]), rel=1e-6, abs=1e-7), name
  by_epoch.reset_metrics()
  assert all(float(m.count.numpy()) == 0 for m in by_epoch.metrics)


def test_a_penalty_must_list_the_metrics_it_returns(monkeypatch):
  class Unlisted(DriftPenalty):
    def __call__(self, discriminator, real, fake, seed, mean=tf.reduce_mean):
      penalty, _ = super().__call__(discriminator, real, fake, seed, mean)
      return penalty, {"drift_mean": penalty}
  model = tfsmooth.SmoothGAN(networks.mlp_generator(2, 2, (4,)),
                             networks.nk_mlp_discriminator(2, (4,)), penalty=Unlisted(), n_disc=1)
  model.compile(d_optimizer=keras.optimizers.Adam(), g_optimizer=keras.optimizers.Adam())
  with pytest.raises(ValueError, match=r"reports \['drift_mean'\], not in metric_names"):
    model.fit(np.zeros((8, 2), np.float32), batch_size=4, verbose=0)
  listed = type("Listed", (Unlisted,), {"metrics": ("drift_mean",)})()
  model = tfsmooth.SmoothGAN(model.generator, model.discriminator, penalty=listed, n_disc=1)
  model.compile(d_optimizer=keras.optimizers.Adam(), g_optimizer=keras.optimizers.Adam())
  history = model.fit(np.zeros((8, 2), np.float32), batch_size=4, verbose=0).history
  assert np.isfinite(history["drift_mean"][0])


def test_bad_arguments_are_one_line_each():
  generator, discriminator = networks.mlp_generator(2, 2, (4,)), networks.nk_mlp_discriminator(2)
  for kwargs, fragment in (({"update": "both"}, "update must be one of"),
                           ({"n_disc": 0}, "n_disc must be an integer >= 1"),
                           ({"eta": -1.0}, "eta must be >= 0"),
                           ({"loss": "hinge2"}, "unknown loss 'hinge2'"),
                           ({"penalty": "r3"}, "unknown penalty 'r3'")):
    with pytest.raises(ValueError, match=fragment):
      tfsmooth.SmoothGAN(generator, discriminator, **kwargs)
  model = tfsmooth.SmoothGAN(generator, discriminator, penalty=None)
  with pytest.raises(ValueError, match="needs d_optimizer= and g_optimizer="):
    model.compile(d_optimizer=keras.optimizers.Adam())


def test_losses_and_penalties_carry_their_hyperparameters():
  penalty = losses.get_penalty("rkhs", penalty_lambda=0.5, kernel_sigma=2.0, gp_weight=3.0,
                               eta=0.1)  # the ones it does not have are ignored
  assert penalty == losses.RKHSPenalty(penalty_lambda=0.5, kernel_sigma=2.0)
  assert losses.get_penalty("gp", gp_weight=3.0) == losses.GradientPenalty(gp_weight=3.0)
  assert losses.get_penalty("none") is None
  assert losses.get_loss("mmd", kernel_sigma=0.3).kernel_sigma == 0.3
  assert losses.get_loss("wgan", kernel_sigma=0.3) is losses.LOSSES["wgan"]


@dataclasses.dataclass(frozen=True)
class DriftPenalty(losses.Penalty):
  """Karras et al.'s drift term, ``drift_weight * E D(x)^2`` on real samples: a new penalty
  with its own weight, as docs/architecture.md shows it."""

  drift_weight: float = 1e-3
  name: ClassVar[str] = "drift"
  description: ClassVar[str] = "drift_weight * E D(x)^2"

  def __call__(self, discriminator, real, fake, seed, mean=tf.reduce_mean):
    del fake, seed
    return self.drift_weight * mean(tf.square(discriminator(real, training=False))), {}


def test_a_new_penalty_with_its_own_weight_trains(monkeypatch):
  monkeypatch.setitem(losses.PENALTIES, "drift", DriftPenalty())
  penalty = losses.get_penalty("drift", drift_weight=0.25)
  keras.utils.set_random_seed(1)
  generator = networks.mlp_generator(2, 2, (4,))
  discriminator = networks.nk_mlp_discriminator(2, (4,))
  model = tfsmooth.SmoothGAN(generator, discriminator, loss="wgan", penalty=penalty, n_disc=1)
  real = tf.constant(np.random.default_rng(0).normal(size=(6, 2)), tf.float32)
  latent = model.sample_latent(6, tf.constant([3, 4], tf.int64))
  _, terms = model.discriminator_gradients(real, latent, tf.constant([5, 6], tf.int64))
  d_real = discriminator(real).numpy()
  d_fake = discriminator(generator(latent)).numpy()
  expected = -(d_real.mean() - d_fake.mean()) + 0.25 * np.mean(d_real**2)
  assert float(terms["penalty"]) == pytest.approx(0.25 * np.mean(d_real**2), rel=1e-5)
  assert float(terms["d_loss"]) == pytest.approx(expected, rel=1e-5)


def test_learning_rate_from_gamma_star_for_ones_own_networks():
  """Chu et al.'s conv7 with ELU and alpha = 1: beta1 = 7 (seven 1-smooth ELUs after norm-1
  layers, docs/theory.md), beta2 = lambda/sigma^2 = 0.5, particle A^2 = 1/n: gamma* =
  n / (beta1 + beta2), written from the architecture, not from the code."""
  discriminator = networks.conv7_discriminator((16, 16, 1), base_channels=4)
  tfsmooth.converge_spectral_norms(discriminator)
  penalty = tfsmooth.RKHSPenalty(penalty_lambda=1.0, kernel_sigma=np.sqrt(2.0))
  generator = tfsmooth.ParticleGenerator(1024, (16, 16, 1))
  lr, constants = tfsmooth.generator_learning_rate(discriminator, 10.0, penalty,
                                                   generator=generator)
  assert constants.beta1 == pytest.approx(7.0, rel=1e-3)
  assert constants.gamma_star == pytest.approx(1024 / 7.5, rel=1e-3)
  assert lr == pytest.approx(10 * 1024 / 7.5, rel=1e-3)
  lr_ab, ab = tfsmooth.generator_learning_rate(discriminator, 1.0, penalty, generator_a=0.5,
                                               generator_b=0.0)
  assert ab.gamma_star == pytest.approx(1 / (0.25 * 7.5), rel=1e-3) == lr_ab
  with pytest.raises(ValueError, match="bounds A, B of Sequential are not known"):
    tfsmooth.generator_learning_rate(discriminator, 1.0, penalty,
                                     generator=keras.Sequential([keras.Input((2,))]))
  with pytest.raises(ValueError, match="GradientPenalty has no penalty_lambda"):
    tfsmooth.generator_learning_rate(discriminator, 1.0, tfsmooth.GradientPenalty(),
                                     generator=generator)


def test_a_registered_penalty_gets_its_flag_and_manifest_entry_without_a_config_edit(tmp_path,
                                                                                    cli):
  """DriftPenalty registered before the command line loads: --penalty=drift and
  --drift_weight work, and the run's manifest records the weight."""
  script = (
      "import sys; sys.path.insert(0, sys.argv[1])\n"
      "from tfsmooth import losses\n"
      "from test_keras_api import DriftPenalty\n"
      "losses.register_penalty(DriftPenalty())\n"
      "from tfsmooth.app import main\n"
      "sys.argv = ['tfsmooth', *sys.argv[2:]]; main.run()\n")
  run_dir = tmp_path / "run"
  result = cli.script(script, str(pathlib.Path(__file__).parent), "--flagfile=runs/nk_mog_eta0",
                      "--loss=wgan", "--penalty=drift", "--drift_weight=0.25", "--steps=3",
                      "--eval_at_end=false", f"--run_dir={run_dir}")
  assert result.returncode == 0, result.stderr
  manifest = json.loads((run_dir / "manifest.json").read_text())
  assert manifest["settings"]["drift_weight"] == 0.25
  assert manifest["settings"]["penalty"] == "drift"
  assert "penalty" in manifest["final_metrics"]


@pytest.mark.parametrize("loss, penalty", [
    ("hinge", tfsmooth.R1Penalty(r_gamma=1.0)), ("least_squares", tfsmooth.R2Penalty()),
    ("non_saturating", tfsmooth.R1R2Penalty(r_gamma=0.1))])
def test_the_baselines_train_from_python(loss, penalty):
  """Mescheder et al.'s R1/R2, the hinge and least-squares losses, as a user passes them."""
  model = _image_gan(n_disc=1, loss=loss, penalty=penalty)
  before = _weights(model)
  history = model.fit(_images(48), batch_size=16, epochs=1, verbose=0)
  assert int(model.step.numpy()) == 3
  moved = [not np.array_equal(a, b) for a, b in zip(before, _weights(model))]
  if loss == "hinge":
    # While every output is within (-1, 1), the hinge's gradient for the output bias is
    # -1 (real) + 1 (fake) = 0: that bias stays, the rest moves.
    assert moved[-2:] == [False, True], moved
    moved = moved[:-2] + moved[-1:]
  assert all(moved), moved
  for name in ("d_loss", "g_loss", "penalty", *penalty.metrics):
    assert np.isfinite(history.history[name][-1]) and history.history["penalty"][-1] > 0, name


@pytest.mark.parametrize("loss, penalty", [("hinge", "r1r2"), ("least_squares", "r1")])
def test_the_baselines_train_from_the_flags(tmp_path, cli, loss, penalty):
  run_dir = tmp_path / "run"
  result = cli("--flagfile=runs/nk_mog_eta0", f"--loss={loss}", f"--penalty={penalty}",
               "--r_gamma=0.5", "--steps=3", "--eval_at_end=false", f"--run_dir={run_dir}")
  assert result.returncode == 0, result.stderr
  manifest = json.loads((run_dir / "manifest.json").read_text())
  assert manifest["settings"]["r_gamma"] == 0.5 and manifest["settings"]["loss"] == loss
  assert manifest["final_metrics"]["penalty"] > 0
  assert ("penalty_r1" in manifest["final_metrics"]) == (penalty == "r1r2")


def test_the_generator_average_is_sampled_and_training_never_sees_it():
  """An optimiser with use_ema keeps the average (Keras: the first step's weights, then
  ``m * average + (1 - m) * weights`` after each step); SmoothGAN samples with it and gives the
  weights back bit for bit."""
  model = _image_gan(n_disc=1, loss="wgan", penalty="none")
  model.compile(d_optimizer=keras.optimizers.Adam(1e-3),
                g_optimizer=keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.5))
  after_each_step = []
  record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: (
      after_each_step.append([v.numpy().copy() for v in model.generator.trainable_variables])))
  model.fit(_images(48), batch_size=16, epochs=1, verbose=0, callbacks=[record])
  assert len(after_each_step) == 3
  expected = after_each_step[0]
  for weights in after_each_step[1:]:
    expected = [0.5 * a + 0.5 * w for a, w in zip(expected, weights)]
  trained = [v.numpy().copy() for v in model.generator.trainable_variables]
  with model.generator_ema() as generator:
    for average, value in zip(expected, generator.trainable_variables):
      np.testing.assert_allclose(value.numpy(), average, rtol=1e-6, atol=1e-7)
    latent = model.sample_latent(4, tf.constant([9, -1], tf.int64))
    averaged = generator(latent, training=False).numpy()
  for before, variable in zip(trained, model.generator.trainable_variables):
    np.testing.assert_array_equal(variable.numpy(), before)
  np.testing.assert_array_equal(model.sample(4, 9).numpy(), averaged)
  assert not np.allclose(model.generator(latent, training=False).numpy(), averaged, atol=1e-4)
