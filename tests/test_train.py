"""Training runs end to end: run directory, determinism, exact resume, SavedModel round trip,
divergence guard, and mode coverage on the mixture of Gaussians."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth.app import config as tfs_config
from tfsmooth.app import train
from tfsmooth.errors import RunError
from tfsmooth.errors import UserError


def _mog_config(run_dir, **overrides):
  """Nagarajan-Kolter's MoG setting, scaled down (smaller networks and batch)."""
  base = dict(run_dir=str(run_dir), dataset="mog_ring", steps=30, batch_size=64,
              generator="mlp", noise_dim=16, g_hidden_units=(32, 32), discriminator="nk_mlp",
              hidden_units=(32,), loss="minimax", penalty="none", n_disc=1,
              update="simultaneous", eta=0.5, d_optimizer="adam", g_optimizer="adam", d_lr=1e-3,
              g_lr=1e-3, log_every=5, sample_every=10, checkpoint_every=10, seed=3)
  base.update(overrides)
  return tfs_config.make(tfs_config.TrainConfig, **base)


def _final_weights(run_dir):
  reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints"))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if "save_counter" not in name and name != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def test_run_directory_is_complete(tmp_path, tensorboard):
  config = _mog_config(tmp_path / "run")
  manifest = train.train(config, verbose=0)
  assert manifest["status"] == "completed" and manifest["final_step"] == 30
  on_disk = json.loads((tmp_path / "run" / "manifest.json").read_text())
  assert on_disk["config"]["gan"]["eta"] == 0.5
  assert on_disk["versions"]["tensorflow"] == tf.__version__
  samples = tmp_path / "run" / "samples"
  assert sorted(os.listdir(samples)) == [
      "mode_coverage.jsonl", "over_iterations.png", "step_000010.npy", "step_000010.png",
      "step_000020.npy", "step_000020.png", "step_000030.npy", "step_000030.png"]
  history = [json.loads(line)
             for line in (samples / "mode_coverage.jsonl").read_text().splitlines()]
  assert [record["step"] for record in history] == [10, 20, 30]
  assert history[-1]["modes_covered"] == manifest["mode_coverage"]["modes_covered"]
  assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-30")
  logs = tensorboard(tmp_path / "run" / "train")
  assert {"d_loss", "g_loss", "nk_regulariser", "d_grad_norm", "g_grad_norm",
          "modes_covered", "high_quality_fraction"} <= logs.tags()
  assert logs.steps("g_loss") == [5, 10, 15, 20, 25, 30]
  assert "mode_coverage" in manifest
  # Every figure of the run is in TensorBoard too, as the picture its PNG file holds.
  assert logs.steps("samples") == [10, 20, 30]
  assert logs.steps("samples_over_training") == [30]
  for image, name in zip(logs.images("samples") + logs.images("samples_over_training"),
                         ["step_000010.png", "step_000020.png", "step_000030.png",
                          "over_iterations.png"]):
    np.testing.assert_array_equal(image, tensorboard.png_file(samples / name))
  # The configuration as text.
  config_text = logs.text("config")
  assert "| eta | `0.5` |" in config_text and "| dataset | `mog_ring` |" in config_text
  run_text = logs.text("run")
  assert "| g_lr | `0.001` |" in run_text and f"| versions/tensorflow | `{tf.__version__}` |" \
      in run_text


def test_each_logged_scalar_is_the_mean_over_its_log_period(tmp_path, tensorboard):
  """With --log_every=5 a TensorBoard scalar is the mean of the 5 steps' values that a run
  logging every step writes (the model's Keras metrics start again after each log step), and
  the manifest's final metrics are the last period's."""
  train.train(_mog_config(tmp_path / "one", steps=10, log_every=1), verbose=0)
  manifest = train.train(_mog_config(tmp_path / "five", steps=10, log_every=5), verbose=0)
  single = tensorboard(tmp_path / "one" / "train").scalars()
  by_period = tensorboard(tmp_path / "five" / "train").scalars()
  one, five = _final_weights(tmp_path / "one"), _final_weights(tmp_path / "five")
  for name in one:  # the same training: logging does not change it
    np.testing.assert_array_equal(one[name], five[name])
  for name in ("d_loss", "g_loss", "g_grad_norm", "nk_regulariser", "d_real"):
    assert sorted(by_period[name]) == [5, 10]
    for end in (5, 10):
      steps = range(end - 4, end + 1)
      assert by_period[name][end] == pytest.approx(np.mean([single[name][s] for s in steps]),
                                                   rel=1e-6), (name, end)
    assert manifest["final_metrics"][name] == pytest.approx(by_period[name][10], rel=1e-7)


def test_progress_bar_shows_the_metrics_of_the_configuration(tmp_path, capsys):
  train.train(_mog_config(tmp_path / "eta0", steps=4, eta=0.0), verbose=1)
  shown = capsys.readouterr().out
  assert "d_loss:" in shown and "g_loss:" in shown and "g_grad_norm:" in shown
  for hidden in ("nk_regulariser", "penalty", "d_real", "d_grad_norm", "value"):
    assert hidden not in shown, shown
  train.train(_mog_config(tmp_path / "eta", steps=4, eta=0.5, penalty="gp"), verbose=1)
  shown = capsys.readouterr().out
  assert "nk_regulariser:" in shown and "penalty:" in shown and "d_real" not in shown


def test_same_flags_and_seed_give_bit_identical_weights(tmp_path):
  train.train(_mog_config(tmp_path / "a"), verbose=0)
  train.train(_mog_config(tmp_path / "b"), verbose=0)
  first, second = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
  assert first.keys() == second.keys() and len(first) > 10
  for name in first:
    np.testing.assert_array_equal(first[name], second[name], err_msg=name)
  train.train(_mog_config(tmp_path / "c", seed=4), verbose=0)
  third = _final_weights(tmp_path / "c")
  assert any(not np.array_equal(first[n], third[n]) for n in first)


@pytest.mark.parametrize("overrides", [
    {},  # N&K MoG: simultaneous updates, Adam, eta
    dict(generator="particle", n_particles=50, discriminator="mlp", hidden_units=(16,),
         loss="indicator", penalty="rkhs", n_disc=2, update="alternating", eta=0.0,
         g_optimizer="sgd",
         g_lr_ratio=1.0),  # Chu: particles, SN discriminator, RKHS penalty, lr = gamma*
    # Batch norm: its moving statistics must resume too. Without a penalty: a DCGAN with WGAN-GP
    # is not bit-reproducible on this CPU even run after run without a resume (2 to 7 of 8
    # 200-step runs differ, by up to 1e-2; without the penalty 16 of 16 equal; docs/training.md,
    # "Reproducible"), so it cannot test the resume.
    dict(dataset="stacked_mnist", generator="dcgan", g_base_channels=4, discriminator="dcgan",
         base_channels=4, batch_size=8, noise_dim=8, eval_at_end=False,
         loss="non_saturating", penalty="none", n_disc=1, update="alternating", eta=0.0),
])
def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path, overrides):
  """Stopped at step 10 and resumed to 20 = 20 steps in one go, bit for bit (optimiser slots,
  spectral-norm vectors and batch-norm statistics included)."""
  train.train(_mog_config(tmp_path / "whole", steps=20, **overrides), verbose=0)
  train.train(_mog_config(tmp_path / "split", steps=10, **overrides), verbose=0)
  manifest = train.train(_mog_config(tmp_path / "split", steps=20, resume=True, **overrides),
                         verbose=0)
  assert manifest["resumed"] == [10]
  whole, split = _final_weights(tmp_path / "whole"), _final_weights(tmp_path / "split")
  assert whole.keys() == split.keys()
  for name in whole:
    np.testing.assert_array_equal(whole[name], split[name], err_msg=name)


def test_interrupted_run_saves_a_checkpoint_and_resumes_exactly(tmp_path, monkeypatch):
  original = train.RunMonitor.on_train_batch_end

  def interrupt_at_step_7(self, batch, logs=None):
    original(self, batch, logs)
    if self._step() == 7:  # pylint: disable=protected-access
      raise KeyboardInterrupt

  monkeypatch.setattr(train.RunMonitor, "on_train_batch_end", interrupt_at_step_7)
  with pytest.raises(RunError, match=r"interrupted at step 7 \(checkpoint saved"):
    # One step per execution: an interrupt lands between executions, here after step 7.
    train.train(_mog_config(tmp_path / "split", steps=20, steps_per_execution=1), verbose=0)
  assert json.loads((tmp_path / "split" / "manifest.json").read_text())["status"] == "interrupted"
  monkeypatch.undo()
  manifest = train.train(_mog_config(tmp_path / "split", steps=20, resume=True), verbose=0)
  assert manifest["status"] == "completed" and manifest["resumed"] == [7]
  train.train(_mog_config(tmp_path / "whole", steps=20), verbose=0)
  whole, split = _final_weights(tmp_path / "whole"), _final_weights(tmp_path / "split")
  for name in whole:
    np.testing.assert_array_equal(whole[name], split[name], err_msg=name)


def _diverging_config(run_dir):
  # WGAN without a penalty on an unconstrained discriminator with a huge learning rate.
  return _mog_config(run_dir, steps=200, checkpoint_every=1, d_optimizer="sgd", d_lr=1e20,
                     loss="wgan", penalty="none", n_disc=1, update="alternating", eta=0.0)


def test_divergence_stops_with_step_and_metric_and_keeps_last_good_checkpoint(tmp_path):
  config = _diverging_config(tmp_path / "run")
  with pytest.raises(train.TrainingDiverged, match=r"diverged at step (\d+): (\w+) = (nan|inf)"):
    train.train(config, verbose=0)
  manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
  assert manifest["status"] == "diverged"
  step = manifest["diverged"]["step"]
  assert manifest["last_checkpoint_step"] == step - 1
  weights = _final_weights(tmp_path / "run")
  assert all(np.all(np.isfinite(v)) for v in weights.values() if v.dtype.kind == "f")
  assert not os.path.exists(tmp_path / "run" / "export")


def test_divergence_inside_a_multi_step_execution_names_the_exact_step(tmp_path):
  """The guard lives in the graph: with 5 steps per execution it reports the step a
  one-step-per-execution run reports, and the last checkpoint before it is kept."""
  found = {}
  for per_execution in (1, 5):
    run_dir = tmp_path / f"run{per_execution}"
    config = dataclasses.replace(_diverging_config(run_dir), checkpoint_every=10, log_every=5,
                                 steps_per_execution=per_execution)
    assert train.execution_steps(config, 0) == per_execution
    with pytest.raises(train.TrainingDiverged):
      train.train(config, verbose=0)
    found[per_execution] = json.loads((run_dir / "manifest.json").read_text())
  assert found[1]["diverged"] == found[5]["diverged"]
  step = found[5]["diverged"]["step"]
  assert found[5]["last_checkpoint_step"] == (step - 1) // 10 * 10
  assert all(np.all(np.isfinite(v)) for v in _final_weights(tmp_path / "run5").values()
             if v.dtype.kind == "f")


@pytest.mark.parametrize("periods, start, expected", [
    ((10, 200, 200, 0), 0, 10), ((20, 250, 500, 0), 0, 10), ((100, 5000, 10000, 0), 0, 50),
    ((100, 5000, 10000, 0), 7, 1), ((100, 5000, 10000, 300), 600, 50), ((3, 9, 9, 0), 0, 3)])
def test_an_execution_ends_at_every_step_where_something_is_due(tmp_path, periods, start,
                                                                 expected):
  log, sample, checkpoint, evaluate = periods
  config = _mog_config(tmp_path, log_every=log, sample_every=sample,
                       checkpoint_every=checkpoint, eval_every=evaluate)
  size = train.execution_steps(config, start)
  assert size == expected
  for period in (log, sample, checkpoint, evaluate, start):
    assert period % size == 0


def test_cli_divergence_is_one_line_and_nonzero(tmp_path, cli):
  result = cli("--mode=train", f"--run_dir={tmp_path / 'run'}", "--dataset=mog_ring",
                "--generator=mlp", "--discriminator=nk_mlp", "--loss=wgan", "--penalty=none",
                "--n_disc=1", "--d_optimizer=sgd", "--d_lr=1e20", "--steps=200",
                "--checkpoint_every=1", "--noise_dim=8")
  assert result.returncode == 1
  errors = [line for line in result.stderr.splitlines() if line.startswith("tfsmooth: error")]
  assert len(errors) == 1 and "diverged at step" in errors[0], result.stderr[-2000:]


@pytest.mark.parametrize("args,fragment", [
    (["--dataset=nope"], "unknown dataset 'nope'"),
    (["--dataset=tfds:cifar10", "--data_dir=/nonexistent"], "cifar10"),
])
def test_cli_refuses_bad_dataset_before_building(tmp_path, cli, args, fragment):
  result = cli("--mode=train", f"--run_dir={tmp_path / 'run'}", *args)
  assert result.returncode == 2
  lines = result.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith("tfsmooth: error:") and fragment in lines[0], \
      result.stderr
  assert not os.path.exists(tmp_path / "run")


def test_existing_run_directory_is_not_overwritten(tmp_path):
  train.train(_mog_config(tmp_path / "run", steps=10), verbose=0)
  with pytest.raises(UserError, match="already holds a run; pass --resume"):
    train.train(_mog_config(tmp_path / "run", steps=10), verbose=0)


def test_resume_refuses_only_settings_that_change_the_weights_and_names_them(tmp_path):
  train.train(_mog_config(tmp_path / "run", steps=10), verbose=0)
  with pytest.raises(UserError, match=r"would change its training: --batch_size: 64 -> 32; "
                     r"--d_lr: 0.001 -> 0.002$"):
    train.train(_mog_config(tmp_path / "run", steps=20, batch_size=32, d_lr=2e-3, resume=True),
                verbose=0)
  # Steps, logging, checkpointing and evaluation may change: same weights as one go.
  manifest = train.train(_mog_config(tmp_path / "run", steps=20, resume=True, log_every=2,
                                     sample_every=5, checkpoint_every=5, keep_checkpoints=5,
                                     eval_at_end=False, eval_repeats=2), verbose=0)
  assert manifest["settings"]["log_every"] == 2 and manifest["resumed"] == [10]
  train.train(_mog_config(tmp_path / "whole", steps=20), verbose=0)
  whole, split = _final_weights(tmp_path / "whole"), _final_weights(tmp_path / "run")
  for name in whole:
    np.testing.assert_array_equal(whole[name], split[name], err_msg=name)


def test_a_run_directory_of_an_older_tfsmooth_resumes(tmp_path):
  """A manifest without ``settings``, its config flat (as tfsmooth wrote it before configs were
  nested) and without a setting added since (``particle_batch``, compared with its default)."""
  train.train(_mog_config(tmp_path / "run", steps=10), verbose=0)
  path = tmp_path / "run" / "manifest.json"
  manifest = json.loads(path.read_text())
  old_config = {name: value for name, value in manifest.pop("settings").items()
                if name not in ("particle_batch", "loss", "eta")}
  old_config["gan"] = {"loss": "minimax", "eta": 0.5, "seed": 0}  # nested, with a removed field
  manifest["config"] = old_config
  path.write_text(json.dumps(manifest))
  assert train.train(_mog_config(tmp_path / "run", steps=12, resume=True),
                     verbose=0)["final_step"] == 12
  with pytest.raises(UserError, match=r"--particle_batch: 0 -> 4$"):
    train.train(_mog_config(tmp_path / "run", steps=14, resume=True, particle_batch=4),
                verbose=0)


@pytest.mark.slow  # two 8,000-step runs (2.4 min on 2 cores): a reproduction, `make test-slow`
def test_mog_eta_covers_more_modes_than_the_plain_gan_in_a_short_run(tmp_path):
  """Nagarajan-Kolter's MoG networks and batch, simultaneous updates, Adam at lr 1e-3 instead of
  1e-4 and 8,000 steps instead of 100,001 (about a minute each): with the same seed, eta = 0.5
  covers more modes than eta = 0. Measured over seeds 0, 1, 2 in docs/nagarajan_kolter.md
  (python -m tfsmooth.app.compare_mog --schedule=short)."""
  coverage = {}
  for eta in (0.5, 0.0):
    config = _mog_config(tmp_path / f"eta{eta}", steps=8000, batch_size=512, noise_dim=256,
                         g_hidden_units=(128, 128), hidden_units=(128,), sample_every=8000,
                         checkpoint_every=8000, log_every=500, seed=0, eta=eta)
    coverage[eta] = train.train(config, verbose=0)["mode_coverage"]
  # The counts depend on the CPU's floating point (docs/nagarajan_kolter.md: eta = 0.5 covered
  # 8 modes at seed 0 on a Zen 4, 5 on a Zen 3); the plain GAN's collapse and the order do not.
  assert coverage[0.0]["modes_covered"] <= 1, coverage  # the plain GAN collapses
  assert coverage[0.5]["modes_covered"] >= 4, coverage  # eta covers at least half the modes


def test_g_ema_trains_the_same_weights_and_delivers_the_average(tmp_path):
  """--g_ema: the run's weights are those of a run without it (sample grids and evaluations
  swap the average in and out bit for bit); the checkpoint keeps the average and the exported
  generator is it."""
  from tfsmooth.app import build  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import export  # pylint: disable=g-import-not-at-top
  plain_dir, ema_dir = tmp_path / "plain", tmp_path / "ema"
  train.train(_mog_config(plain_dir, eval_at_end=True), verbose=0)
  config = _mog_config(ema_dir, g_ema=0.9, eval_at_end=True)
  manifest = train.train(config, verbose=0)
  plain, ema = _final_weights(plain_dir), _final_weights(ema_dir)
  for name, value in plain.items():
    if not name.startswith("g_optimizer"):  # its variables are numbered, the averages among them
      np.testing.assert_array_equal(ema[name], value, err_msg=name)
  assert len(ema) - len(plain) == 6  # an average of each of the generator's kernels and biases
  model, _, _ = build.build_gan(config, (2,))
  checkpoint = tf.train.Checkpoint(generator=model.generator, discriminator=model.discriminator,
                                   d_optimizer=model.d_optimizer, g_optimizer=model.g_optimizer,
                                   step=model.step)
  checkpoint.restore(tf.train.latest_checkpoint(ema_dir / "checkpoints")).assert_consumed()
  exported = export.load_generator(str(ema_dir / "export" / "generator"))
  np.testing.assert_allclose(exported(64, 3), model.sample(64, 3).numpy(), rtol=1e-6)
  assert not np.allclose(exported(64, 3), model.generator(model.sample_latent(
      64, tf.constant([3, -1], tf.int64))).numpy(), atol=1e-4)
  assert "modes_covered_mean" in manifest["metrics"]
