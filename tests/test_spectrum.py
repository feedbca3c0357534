"""tfsmooth.spectrum: the game Jacobian's products against finite differences of the field, the
N&K toy's closed-form eigenvalues through the generic path, Arnoldi against the dense solve, and
the state a forward pass changes left as it was."""

import dataclasses
import functools
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import data
from tfsmooth import gan
from tfsmooth import networks
from tfsmooth import spectrum
from tfsmooth.app import build
from tfsmooth.app import config as tfs_config
from tfsmooth.app import nk_toy
from tfsmooth.app import spectrum_mode
from tfsmooth.app import train
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.errors import UserError
from tfsmooth.experiments import nk_mog
from tfsmooth.experiments import nk_spectrum


def _mog_gan(eta=0.0, penalty="none", loss="minimax", batch_norm=False, spectral_norm=True):
  """A small GAN of 2-D samples, smooth in its weights (a finite difference of the field needs
  that: ReLU kinks make it jump): a tanh generator and a softplus discriminator, spectrally
  normalised or not, 91 parameters."""
  generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                                keras.layers.Dense(2)])
  discriminator = networks.mlp_discriminator(2, hidden_units=(8,), activation="softplus")
  if not spectral_norm:  # its third derivative (eta, gp) traces in a quarter of the time
    discriminator = keras.Sequential([keras.Input((2,)),
                                      keras.layers.Dense(8, activation="softplus"),
                                      keras.layers.Dense(1)])
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
  jacobian = spectrum.GameJacobian(system.model, system.real, system.latent)
  # Forward-over-reverse here, reverse-over-reverse in nk_toy: equal to the last bits.
  np.testing.assert_allclose(jacobian.dense(), system.jacobian().numpy(), rtol=1e-12, atol=1e-15)
  result = spectrum.eigenvalues(jacobian, k=2)
  assert result.method == "dense" and result.size == 2
  got = sorted(result.eigenvalues, key=lambda v: v.imag)
  np.testing.assert_allclose([got[0], got[1]], [np.conj(expected), expected], atol=1e-4)
  assert max(result.residuals) < 1e-12
  assert result.max_real == pytest.approx(expected.real, abs=1e-4)


@pytest.mark.parametrize("options", [
    dict(), dict(eta=0.5, spectral_norm=False),
    dict(penalty="gp", loss="wgan", spectral_norm=False)])
def test_jacobian_vector_products_are_derivatives_of_the_field(options):
  """J v against the central difference (F(theta + h v) - F(theta - h v)) / 2h, in float64
  arithmetic on the float32 model's field (h = 1e-3): through spectral norms (their second
  derivative, tfsmooth.layers.differentiable_sigma), the N&K regulariser and WGAN-GP (third
  derivatives)."""
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
  model, real, latent = _mog_gan(spectral_norm=False)
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


def test_a_players_block_is_its_diagonal_block_of_the_jacobian():
  model, real, latent = _mog_gan(eta=0.5, spectral_norm=False)
  full = spectrum.GameJacobian(model, real, latent).dense()
  discriminator = spectrum.GameJacobian(model, real, latent, player="discriminator")
  generator = spectrum.GameJacobian(model, real, latent, player="generator")
  split = discriminator.size
  assert split + generator.size == full.shape[0] and split == 33
  np.testing.assert_allclose(discriminator.dense(), full[:split, :split], rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(generator.dense(), full[split:, split:], rtol=1e-6, atol=1e-7)
  with pytest.raises(ValueError, match="player='critic'"):
    spectrum.GameJacobian(model, real, latent, player="critic")


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
  jacobian = spectrum.GameJacobian(system.model, system.real, system.latent)
  with pytest.raises(ValueError, match="which='largest'"):
    spectrum.eigenvalues(jacobian, which="largest")
  with pytest.raises(ValueError, match="Arnoldi needs k < 1"):
    spectrum.eigenvalues(jacobian, k=1, method="arnoldi")


# --mode=spectrum on run directories (tfsmooth.app.spectrum).


def test_spectrum_mode_on_the_toy_run_gives_the_closed_form(tmp_path, cli):
  run_dir = tmp_path / "toy"
  nk_toy.run(str(run_dir), "wgan", 0.5, grid_size=3)
  result = cli("--mode=spectrum", f"--run_dir={run_dir}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "-0.2222+0.6285i, -0.2222-0.6285i" in result.stdout, result.stdout
  with open(run_dir / "spectrum.json", encoding="utf-8") as f:
    written = json.load(f)
  got = sorted((complex(*v) for v in written["eigenvalues"]), key=lambda v: v.imag)
  np.testing.assert_allclose(got, [-0.2222 - 0.6285j, -0.2222 + 0.6285j], atol=1e-4)
  assert written["step"] == 0 and max(written["residuals"]) < 1e-12
  assert os.path.getsize(run_dir / "spectrum.png") > 1000


def _tiny_run(tmp_path, name="run", eta=0.5):
  config = tfs_config.make(
      tfs_config.TrainConfig, run_dir=str(tmp_path / name), dataset="mog_ring", steps=20,
      batch_size=32, generator="mlp", noise_dim=4, g_hidden_units=(8,), discriminator="nk_mlp",
      hidden_units=(8,), loss="minimax", penalty="none", n_disc=1, update="simultaneous",
      eta=eta, d_optimizer="adam", g_optimizer="adam", d_lr=1e-2, g_lr=1e-2, log_every=10,
      sample_every=10, checkpoint_every=10, eval_at_end=False, seed=5)
  train.train(config, verbose=0)
  return config


def test_spectrum_mode_on_a_training_run(tmp_path, tensorboard):
  config = _tiny_run(tmp_path)
  run = spectrum_mode.run
  make = functools.partial(tfs_config.make, tfs_config.SpectrumConfig, run_dir=config.run_dir)
  last = run(make(spectrum_k=4, spectrum_method="dense"))
  assert last["step"] == 20 and last["parameters"] == 91 and last["batch_size"] == 32
  assert len(last["eigenvalues"]) == 4 and max(last["residuals"]) < 1e-6
  arnoldi = run(make(spectrum_k=4, spectrum_method="arnoldi"))
  assert arnoldi["method"] == "arnoldi"
  np.testing.assert_allclose(arnoldi["eigenvalues"], last["eigenvalues"], atol=1e-6)
  # At step 0 the checkpoint holds the initial weights, which the run's seed rebuilds.
  first = run(make(spectrum_k=4, spectrum_method="dense", spectrum_step=0))
  assert first["step"] == 0
  model, _, _ = build.build_gan(config, (2,))
  real = tf.constant(data.get_provider("mog_ring", seed=5).sample(32, seed=0))
  expected = spectrum.game_spectrum(model, real, k=4, seed=0, method="dense")
  np.testing.assert_allclose([complex(*v) for v in first["eigenvalues"]],
                             expected["real"].eigenvalues, rtol=1e-6, atol=1e-7)
  assert not np.allclose(first["eigenvalues"], last["eigenvalues"], atol=1e-3)
  logs = tensorboard(os.path.join(config.run_dir, "spectrum"))
  assert set(logs.steps("spectrum/max_real_part")) == {0, 20}
  assert logs.scalars()["spectrum/max_real_part"][0] == pytest.approx(first["max_real_part"])
  assert len(logs.images("spectrum/eigenvalues")) == 3
  with pytest.raises(UserError, match=r"--spectrum_step=15: .* keeps steps 0, 10, 20"):
    run(make(spectrum_step=15))


def test_spectrum_mode_refuses_what_is_not_a_run_in_one_line(tmp_path, cli):
  result = cli("--mode=spectrum", f"--run_dir={tmp_path}")
  assert result.returncode != 0
  assert result.stderr.strip().splitlines() == [
      f"tfsmooth: error: --run_dir={tmp_path}: no manifest.json; not a tfsmooth run directory"]


def test_nk_spectrum_takes_the_spectrum_at_every_checkpoint_once(tmp_path, monkeypatch):
  """The nk_spectrum experiment's spectra (here of two tiny runs named as its members): every
  kept checkpoint, each computed once; the table, Markdown and figure from them."""
  names = {"nk_mog_eta0_seed0": 0.0, "nk_mog_eta0.5_seed0": 0.5}
  runs = {}
  for name, eta in names.items():
    _tiny_run(tmp_path / "members", name, eta)
    runs[name] = RunDirectory(str(tmp_path / "members" / name))
  rows = [nk_mog.row(name, run) for name, run in runs.items()]
  settings = tfs_config.SpectrumConfig(k=3, method="dense")
  spectra = nk_spectrum.compute_spectra(str(tmp_path), rows, runs, settings)
  assert {name: sorted(map(int, by_step)) for name, by_step in spectra.items()} == {
      name: [0, 10, 20] for name in names}
  # The entry of a step is the spectrum of that checkpoint.
  direct = spectrum_mode.run(dataclasses.replace(settings, run_dir=runs["nk_mog_eta0_seed0"].path,
                                                 step=10))
  assert spectra["nk_mog_eta0_seed0"]["10"]["eigenvalues"] == direct["eigenvalues"]
  # Same weights at step 0 (the same seed), different from step 20 on: eta changes the game.
  at = {name: spectra[name] for name in names}
  assert at["nk_mog_eta0_seed0"]["0"]["eigenvalues"] != at["nk_mog_eta0.5_seed0"]["0"][
      "eigenvalues"]  # the regulariser's term is in the generator's block at step 0 already
  monkeypatch.setattr(spectrum_mode, "run", lambda config: pytest.fail("computed again"))
  assert nk_spectrum.compute_spectra(str(tmp_path), rows, runs, settings) == spectra
  table = nk_spectrum.table(spectra)
  assert [(r["method"], r["step"]) for r in table] == [
      (method, step) for method in ("nk_mog_eta0", "nk_mog_eta0.5") for step in (0, 10, 20)]
  assert all(r["max_residual"] < 1e-6 and r["parameters"] == 91 for r in table)
  assert all(r["field_norm_generator"] > 0 and r["discriminator_block_max_real"] is not None
             for r in table)
  assert nk_spectrum.markdown(table).count("\n") == 2 + 6
  assert os.path.getsize(nk_spectrum.plot(str(tmp_path), table)) > 1000
