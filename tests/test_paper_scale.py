"""Paper-scale checks, excluded from the default suite (`make test-slow`; tens of minutes)."""

import pytest

from tfsmooth.app.rundir import RunDirectory


@pytest.fixture
def train_run(cli):
  """``fn(flagfile, run_dir, *extra_flags) -> manifest`` of a finished CLI run."""
  def run(flagfile, run_dir, *extra):
    result = cli(f"--flagfile={flagfile}", f"--run_dir={run_dir}", *extra, timeout=4 * 3600)
    assert result.returncode == 0, result.stderr[-3000:]
    return RunDirectory(str(run_dir)).read_manifest()
  return run


@pytest.mark.slow
def test_nk_mog_paper_settings_cover_all_modes(tmp_path, train_run):
  """Nagarajan-Kolter's MoG with their settings and eta = 0.5 (100,001 iterations, ~20 min):
  all 8 modes covered (>= 1% of 2,000 samples within 3 std of each centre)."""
  manifest = train_run("runs/nk_mog_eta0.5.flags", tmp_path / "run")
  assert manifest["mode_coverage"]["modes_covered"] == 8, manifest["mode_coverage"]


@pytest.mark.slow
def test_nk_mog_paper_settings_without_eta_covers_fewer_modes(tmp_path, train_run):
  """The same run with eta = 0 (the plain GAN; ~20 min): measured 0 of 8 modes at the end and at
  most 1 at any of the 21 snapshots (docs/nagarajan_kolter.md); the test above asserts 8."""
  manifest = train_run("runs/nk_mog_eta0.flags", tmp_path / "run")
  assert manifest["mode_coverage"]["modes_covered"] < 8, manifest["mode_coverage"]


@pytest.mark.slow
def test_stacked_mnist_small_run_covers_most_modes(tmp_path, train_run):
  """The CPU-sized stacked-MNIST run with eta = 0 (~5 min): measured 944 of 1,000 modes on
  26,000 samples, KL(q || uniform) 0.70 (docs/nagarajan_kolter.md)."""
  manifest = train_run("runs/nk_stacked_mnist_small.flags", tmp_path / "run", "--eta=0")
  modes = manifest["metrics"]["stacked_mnist"]
  assert modes["num_samples"] == 26000
  assert modes["modes_covered"] >= 900, modes
  assert modes["kl_generated_to_uniform"] < 1.0, modes
