"""Paper-scale checks, excluded from the default suite (`make test-slow`; tens of minutes)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(flagfile, run_dir, *extra):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
  result = subprocess.run([sys.executable, "-m", "tfsmooth.main", f"--flagfile={flagfile}",
                           f"--run_dir={run_dir}", *extra], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=4 * 3600)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(os.path.join(run_dir, "manifest.json"), encoding="utf-8") as f:
    return json.load(f)


@pytest.mark.slow
def test_nk_mog_paper_settings_cover_all_modes(tmp_path):
  """Nagarajan-Kolter's MoG with their settings and eta = 0.5 (100,001 iterations, ~20 min):
  all 8 modes covered (>= 1% of 2,000 samples within 3 std of each centre)."""
  manifest = _train("runs/nk_mog_eta0.5.flags", tmp_path / "run")
  assert manifest["mode_coverage"]["modes_covered"] == 8, manifest["mode_coverage"]


@pytest.mark.slow
def test_nk_mog_paper_settings_without_eta_covers_fewer_modes(tmp_path):
  """The same run with eta = 0 (the plain GAN; ~20 min): measured 0 of 8 modes at the end and at
  most 1 at any of the 21 snapshots (docs/nagarajan_kolter.md); the test above asserts 8."""
  manifest = _train("runs/nk_mog_eta0.flags", tmp_path / "run")
  assert manifest["mode_coverage"]["modes_covered"] < 8, manifest["mode_coverage"]


@pytest.mark.slow
def test_stacked_mnist_small_run_covers_most_modes(tmp_path):
  """The CPU-sized stacked-MNIST run with eta = 0 (~5 min): measured 944 of 1,000 modes on
  26,000 samples, KL(q || uniform) 0.70 (docs/nagarajan_kolter.md)."""
  manifest = _train("runs/nk_stacked_mnist_small.flags", tmp_path / "run", "--eta=0")
  modes = manifest["metrics"]["stacked_mnist"]
  assert modes["num_samples"] == 26000
  assert modes["modes_covered"] >= 900, modes
  assert modes["kl_generated_to_uniform"] < 1.0, modes
