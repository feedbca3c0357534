"""The command line, run as a user runs it: `python -m tfsmooth.main ...` in a subprocess."""

import json
import os

import numpy as np
import pytest
import scipy.linalg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_constants_mode_prints_table_and_writes_json(tmp_path, cli):
  out = tmp_path / "constants.json"
  result = cli("--mode=constants", "--discriminator=mlp", "--input_shape=3",
                "--hidden_units=8,8", "--activation=tanh", "--alpha=2", "--penalty_lambda=0.5",
                "--kernel_sigma=0.5", "--n_particles=100", "--verify", "--verify_starts=4",
                "--verify_steps=4", f"--output_json={out}")
  assert result.returncode == 0, result.stderr
  assert "gamma_star" in result.stdout and "numerical estimate" in result.stdout
  assert "Every estimate is at or below its bound." in result.stdout
  report = json.loads(out.read_text())
  # alpha = 2, beta1 = 2 * 2 * 4/(3 sqrt 3), beta2 = 0.5/0.25 = 2, A^2 = 1/100.
  beta1 = 2 * 2 * 4 / (3 * np.sqrt(3))
  assert report["beta1"] == pytest.approx(beta1, rel=1e-4)
  assert report["gamma_star"] == pytest.approx(100 / (beta1 + 2), rel=1e-4)
  assert report["verification"]["holds"] is True


def test_flagfile_is_read(tmp_path, cli):
  flagfile = tmp_path / "x.flags"
  flagfile.write_text("--mode=constants\n--discriminator=conv7\n--input_shape=8,8,1\n"
                      "--base_channels=2\n--activation=softplus\n--alpha=3\n--n_particles=4\n")
  result = cli(f"--flagfile={flagfile}")
  assert result.returncode == 0, result.stderr
  rows = [line.split() for line in result.stdout.splitlines()]
  values = {row[0]: row[1] for row in rows if len(row) >= 2}
  assert float(values["alpha"]) == pytest.approx(3.0, rel=1e-4)
  assert float(values["beta1"]) == pytest.approx(3 * 7 * 0.25, rel=1e-4)


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "runs"))))
def test_shipped_flagfiles_parse(name):
  from tfsmooth import flags as tfs_flags  # pylint: disable=g-import-not-at-top
  try:
    tfs_flags.FLAGS(["tfsmooth", f"--flagfile={os.path.join(ROOT, 'runs', name)}",
                     "--run_dir=/tmp/unused", "--sweep_dir=/tmp/unused"])
    if tfs_flags.FLAGS.mode == "constants":
      assert tfs_flags.constants_config().verify is True
    else:
      assert tfs_flags.train_config().steps >= 1000
  finally:
    tfs_flags.FLAGS.unparse_flags()


def test_helpshort_lists_tfsmooth_flags(cli):
  result = cli("--helpshort")
  assert "--kernel_sigma" in result.stdout and "--activation" in result.stdout


def test_helpfull_lists_the_flags(cli):
  result = cli("--helpfull")  # absl exits 1 after printing help
  for flag in ("--mode", "--activation", "--alpha", "--kernel_sigma", "--n_particles",
               "--verify", "--sn_norm"):
    assert flag in result.stdout


@pytest.mark.parametrize("flag,fragment", [
    ("--activation=swish", "--activation=swish: value should be one of"),
    ("--alpha=0", "--alpha=0.0: must be > 0"),
    ("--alpha=-1", "--alpha=-1.0: must be > 0"),
    ("--n_particles=0", "--n_particles=0: must be >= 1"),
    ("--kernel_sigma=0", "--kernel_sigma=0.0: must be > 0"),
    ("--penalty_lambda=-2", "--penalty_lambda=-2.0: must be > 0"),
    ("--input_shape=32,32", "--input_shape must be H,W,C for --discriminator=conv7"),
    ("--generator_a=1", "--generator_a and --generator_b must be given together"),
    ("--output_json=/no/such/dir/x.json", "--output_json=/no/such/dir/x.json: its directory"),
    ("--loss=hinge", "--loss=hinge: must be one of indicator, minimax, non_saturating, wgan, mmd"),
    ("--penalty=r1", "--penalty=r1: must be one of rkhs, gp, none"),
    ("--n_disc=0", "--n_disc=0: 0 is not a positive integer"),
    ("--eta=-0.5", "--eta=-0.5: must be >= 0"),
    ("--mode=train", "--mode=train, eval and nk_toy need --run_dir"),
    ("--mode=nk_toy --loss=wgan", "--mode=train, eval and nk_toy need --run_dir"),
    ("--mode=nk_toy --run_dir=/tmp/x", "--mode=nk_toy needs --loss=minimax or --loss=wgan"),
    ("--mode=sweep --g_lr_ratio=1", "--mode=sweep needs --sweep_dir"),
    ("--mode=sweep --sweep_dir=/tmp/x", "--experiment=chu_fig1 needs --g_lr_ratio"),
    ("--mode=sweep --experiment=fig9", "--experiment=fig9: value should be one of"),
    ("--mode=sweep --experiment=nk_mog --sweep_dir=/tmp/x --nk_methods=nk_mog_eta0,nope",
     "nk_methods=['nk_mog_eta0', 'nope']: --nk_methods: no runs/nope.flags"),
    ("--sweep_seeds=0,1.5", "--sweep_seeds=['0', '1.5']: must be a comma-separated list of"),
    ("--nk_etas=0,-1", "--nk_etas=['0', '-1']: must be a comma-separated list of numbers >= 0"),
    ("--unroll_steps=-1", "--unroll_steps=-1:"),
    ("--unroll_steps=15 --eta=0.5 --penalty=none", "--unroll_steps needs --eta=0"),
    ("--unroll_steps=15 --penalty=rkhs", "and --penalty=none"),
    ("--discriminator=nk_mlp", "--mode=constants needs --discriminator=conv7 or mlp"),
])
def test_bad_flag_is_one_clear_line(flag, fragment, cli):
  result = cli(*flag.split())
  assert result.returncode == 2
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("tfsmooth: error:") and fragment in lines[0], lines[0]
  assert result.stdout == ""


def test_tfgan_imports_and_fid_matches_scipy_reference():
  from tfsmooth import compat  # pylint: disable=g-import-not-at-top
  tfgan = compat.import_tfgan()
  rng = np.random.default_rng(0)
  real = rng.standard_normal((400, 6))
  fake = rng.standard_normal((400, 6)) * 1.3 + 0.4
  fid = float(tfgan.eval.frechet_classifier_distance_from_activations(real, fake))
  mu1, mu2 = real.mean(0), fake.mean(0)
  c1, c2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
  reference = np.sum((mu1 - mu2)**2) + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
  assert fid == pytest.approx(reference, rel=1e-6)
