"""Evaluation of runs: at the end of training, every K steps, and `--mode=eval` on a run dir."""

import json
import os

import pytest

from tfsmooth.app import evaluate
from tfsmooth.app import train
from tfsmooth.app.config import EvalConfig
from tfsmooth.app.config import TrainConfig
from tfsmooth.app.config import make
from tfsmooth.errors import UserError

from test_metrics import _save_stand_in_inception  # pylint: disable=g-bad-import-order


def _mog_run(run_dir, **overrides):
  settings = dict(run_dir=str(run_dir), dataset="mog_ring", steps=20, batch_size=64,
                  generator="mlp", noise_dim=8, g_hidden_units=(16,), discriminator="nk_mlp",
                  hidden_units=(16,), loss="minimax", penalty="none", n_disc=1, eta=0.5,
                  d_optimizer="adam", g_optimizer="adam", d_lr=1e-3, g_lr=1e-3,
                  sample_every=10, checkpoint_every=10, log_every=5, eval_repeats=3)
  settings.update(overrides)
  return make(TrainConfig, **settings)


def test_mog_run_is_evaluated_at_the_end_and_every_k_steps(tmp_path, tensorboard):
  manifest = train.train(_mog_run(tmp_path / "run", eval_every=10), verbose=0)
  result = manifest["metrics"]
  assert result["num_samples"] == 2000 and result["repeats"] == 3
  assert len(result["modes_covered"]) == 3 and result["num_modes"] == 8
  assert 0 <= result["modes_covered_min"] <= result["modes_covered_mean"] <= 8
  on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
  assert on_disk["modes_covered"] == result["modes_covered"]
  assert tensorboard(tmp_path / "run" / "train").steps("eval/modes_covered_mean") == [10, 20]


def test_eval_mode_reproduces_the_end_of_training_numbers(tmp_path, cli, tensorboard):
  manifest = train.train(_mog_run(tmp_path / "run"), verbose=0)
  os.remove(tmp_path / "run" / "metrics.json")
  result = cli("--mode=eval", f"--run_dir={tmp_path / 'run'}", "--eval_repeats=3")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "modes covered" in result.stdout
  on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
  assert on_disk["modes_covered"] == manifest["metrics"]["modes_covered"]
  assert on_disk["high_quality_fraction"] == manifest["metrics"]["high_quality_fraction"]
  assert "modes_covered_mean" in tensorboard(tmp_path / "run" / "eval").tags()


def test_image_run_reports_fid_and_kid_on_named_inception_features(tmp_path, cli):
  _save_stand_in_inception(str(tmp_path / "inception"))
  config = make(
      TrainConfig, run_dir=str(tmp_path / "run"), dataset="mnist", steps=4, batch_size=8,
      generator="particle", n_particles=32, discriminator="conv7", base_channels=2,
      loss="indicator", penalty="rkhs", n_disc=1, particle_batch=8, g_lr_ratio=1.0,
      sample_every=4, checkpoint_every=4, log_every=2, features="inception",
      inception_module=str(tmp_path / "inception"), eval_samples=64, eval_repeats=2)
  manifest = train.train(config, verbose=0)
  result = manifest["metrics"]
  assert result["features"] == f"inception:{tmp_path / 'inception'}"
  assert result["num_samples"] == 64 and len(result["fid"]) == 2 and len(result["kid"]) == 2
  assert result["fid_mean"] > 0
  command = cli("--mode=eval", f"--run_dir={tmp_path / 'run'}", "--features=inception",
                f"--inception_module={tmp_path / 'inception'}", "--eval_samples=64",
                "--eval_repeats=2")
  assert command.returncode == 0, command.stderr[-2000:]
  assert "FID" in command.stdout and "inception:" in command.stdout
  assert json.loads((tmp_path / "run" / "metrics.json").read_text())["fid"] == pytest.approx(
      result["fid"], rel=1e-6)


def test_missing_features_refuse_the_run_before_training(tmp_path, monkeypatch):
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty"))
  config = make(TrainConfig, run_dir=str(tmp_path / "run"), dataset="mnist", steps=2,
                features="inception")
  with pytest.raises(UserError, match="--inception_module=DIR"):
    train.train(config, verbose=0)
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_eval_of_an_unfinished_run_is_one_line(tmp_path, cli):
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "manifest.json").write_text(json.dumps({"status": "diverged",
                                                              "config": {}}))
  result = cli("--mode=eval", f"--run_dir={tmp_path / 'run'}")
  assert result.returncode == 2
  assert "no exported generator (run status 'diverged')" in result.stderr
  with pytest.raises(UserError, match="finish or --resume"):
    evaluate.evaluate_run(str(tmp_path / "run"), EvalConfig())
  result = cli("--mode=eval", f"--run_dir={tmp_path / 'nothing'}")
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      f"tfsmooth: error: --run_dir={tmp_path / 'nothing'}: no manifest.json; not a tfsmooth run "
      "directory"]
