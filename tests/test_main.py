"""The command line, run as a user runs it: `python -m tfsmooth.main ...` in a subprocess."""

import json
import os

import numpy as np
import pytest
import scipy.linalg

from tfsmooth import compat

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


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "tfsmooth", "runs"))))
def test_shipped_flagfiles_parse(name):
  from tfsmooth.app import console  # pylint: disable=g-import-not-at-top
  from tfsmooth.app import flags as tfs_flags  # pylint: disable=g-import-not-at-top
  try:
    # As the command reads them: a flagfile may include a shipped one by name.
    argv, _ = console.expand_flagfiles([
        "tfsmooth", f"--flagfile={os.path.join(ROOT, 'tfsmooth', 'runs', name)}",
        "--run_dir=/tmp/unused", "--sweep_dir=/tmp/unused"])
    tfs_flags.FLAGS(argv)
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
    ("--loss=bce", "--loss=bce: must be one of indicator, minimax, non_saturating, wgan, hinge, "
     "least_squares, mmd"),
    ("--penalty=r3", "--penalty=r3: must be one of rkhs, gp, r1, r2, r1r2, none"),
    ("--n_disc=0", "--n_disc=0: 0 is not a positive integer"),
    ("--eta=-0.5", "--eta=-0.5: must be >= 0"),
    ("--mode=train", "--mode=train, eval, nk_toy and spectrum need --run_dir"),
    ("--mode=nk_toy --loss=wgan", "--mode=train, eval, nk_toy and spectrum need --run_dir"),
    ("--mode=nk_toy --run_dir=/tmp/x", "--mode=nk_toy needs --loss=minimax or --loss=wgan"),
    ("--mode=sweep --g_lr_ratio=1", "--mode=sweep needs --sweep_dir"),
    ("--mode=sweep --sweep_dir=/tmp/x", "--experiment=chu_fig1 needs --g_lr_ratio"),
    ("--mode=sweep --experiment=fig9", "--experiment=fig9: value should be one of"),
    ("--mode=sweep --experiment=nk_mog --sweep_dir=/tmp/x --nk_methods=nk_mog_eta0,nope",
     "nk_methods=['nk_mog_eta0', 'nope']: --nk_methods: no flagfile tfsmooth/runs/nope.flags"),
    ("--sweep_seeds=0,1.5", "--sweep_seeds=['0', '1.5']: must be a comma-separated list of"),
    ("--nk_etas=0,-1", "--nk_etas=['0', '-1']: must be a comma-separated list of numbers >= 0"),
    ("--sweep_g_lr_ratios=10,0", "--sweep_g_lr_ratios=['10', '0']: must be a comma-separated "
     "list of distinct numbers > 0"),
    ("--sweep_g_lr_ratios=1,1.0", "--sweep_g_lr_ratios=['1', '1.0']: must be a comma-separated "
     "list of distinct numbers > 0"),
    ("--unroll_steps=-1", "--unroll_steps=-1:"),
    ("--unroll_steps=15 --eta=0.5 --penalty=none", "--unroll_steps needs --eta=0"),
    ("--unroll_steps=15 --penalty=rkhs", "and --penalty=none"),
    ("--discriminator=nk_mlp", "--mode=constants needs --discriminator=conv7/mlp/resnet"),
])
def test_bad_flag_is_one_clear_line(flag, fragment, cli):
  result = cli(*flag.split())
  assert result.returncode == 2
  lines = result.stderr.splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("tfsmooth: error:") and fragment in lines[0], lines[0]
  assert result.stdout == ""


def test_bad_run_directory_is_exactly_one_line_after_tensorflow_started(tmp_path, cli):
  # The refusal comes after TensorFlow has loaded: its C++ start-up lines are filtered out.
  (tmp_path / "run").mkdir()
  result = cli("--mode=eval", f"--run_dir={tmp_path / 'run'}")
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      f"tfsmooth: error: --run_dir={tmp_path / 'run'}: no manifest.json; not a tfsmooth run "
      "directory"]
  assert result.stdout == ""


def test_tfsmooth_tf_logs_brings_tensorflows_lines_back(tmp_path, cli):
  result = cli("--mode=eval", f"--run_dir={tmp_path}", env={compat.TF_LOGS_ENV: "1"})
  lines = result.stderr.splitlines()
  assert result.returncode == 2 and lines[-1].startswith("tfsmooth: error: --run_dir=")
  # tfsmooth.compat turns oneDNN on, and TensorFlow always says so at start-up.
  assert any("oneDNN custom operations are on" in line for line in lines[:-1]), result.stderr


# What TensorFlow 2.21 wrote at start-up on a CPU-only machine, with TF_CPP_MIN_LOG_LEVEL=0.
_STARTUP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795555909.923868   27465 port.cc:153] oneDNN custom operations are on. You may see \
slightly different numerical results.
I0000 00:00:1795555909.924213   27465 cudart_stub.cc:31] Could not find cuda drivers on your \
machine, GPU will not be used.
I0000 00:00:1795555909.973154   27465 cpu_feature_guard.cc:227] This TensorFlow binary is \
optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow.
E0000 00:00:1795555910.764210   27465 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA \
error: Failed call to cuInit: UNKNOWN ERROR (303)
W1124 21:27:32.164105   27465 local_rendezvous.cc:404] Local rendezvous is aborting
"""


def test_startup_filter_drops_informational_lines_and_keeps_errors():
  assert compat.without_startup_noise(_STARTUP) == ""
  error = ("E1124 21:27:32.164105   27465 bfc_allocator.cc:1] Allocator ran out of memory\n"
           "To enable the following instructions: (an E line's continuation is kept)\n")
  python = "Traceback (most recent call last):\nImportError: no module\n"
  assert compat.without_startup_noise(_STARTUP + error + python) == error + python
  assert compat.without_startup_noise(python + _STARTUP) == python


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


_MOG = ("--flagfile=runs/nk_mog_eta0.flags", "--eval_at_end=false", "--log_every=10",
        "--sample_every=20", "--checkpoint_every=20")


def test_a_shipped_flagfile_is_found_by_name_from_any_directory(tmp_path, cli):
  from tfsmooth.app import console  # pylint: disable=g-import-not-at-top
  assert console.find_flagfile("runs/chu_default.flags") == console.find_flagfile("chu_default")
  assert console.find_flagfile("runs/chu_default.flags").startswith(console.RUNS_DIR)
  assert console.find_flagfile("/elsewhere/chu_default.flags") == "/elsewhere/chu_default.flags"
  result = cli.script("import os, sys; os.chdir(sys.argv[1]); from tfsmooth.app import main; "
                      "sys.argv = ['tfsmooth', '--flagfile=runs/nope.flags']; main.run()",
                      str(tmp_path))
  assert result.returncode == 2
  assert "--flagfile=runs/nope.flags: no such file (tfsmooth ships chu_default" in result.stderr


def test_networks_that_do_not_fit_the_dataset_are_one_line_and_leave_nothing(tmp_path, cli):
  run_dir = tmp_path / "run"
  result = cli("--mode=train", "--dataset=mnist", "--generator=mlp", "--discriminator=mlp",
               f"--run_dir={run_dir}", "--steps=2", "--eval_at_end=false")
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      "tfsmooth: error: --dataset=mnist has samples of shape (28, 28, 1), but --generator=mlp "
      "makes (784,) and --discriminator=mlp takes (784,); choose networks for this dataset "
      "(mlp networks take vectors, conv7 and dcgan images)"]
  assert not run_dir.exists()


def test_resuming_to_fewer_steps_than_done_is_one_line(tmp_path, cli):
  run_dir = tmp_path / "run"
  assert cli(*_MOG, f"--run_dir={run_dir}", "--steps=20").returncode == 0
  manifest = (run_dir / "manifest.json").read_bytes()
  result = cli(*_MOG, f"--run_dir={run_dir}", "--steps=10", "--resume")
  assert result.returncode == 2
  assert result.stderr.splitlines() == [
      f"tfsmooth: error: --steps=10: the run in {run_dir} is already at step 20; give --steps > "
      "20 to continue it"]
  assert (run_dir / "manifest.json").read_bytes() == manifest


def test_progress_to_a_pipe_is_one_plain_line_per_log_period(tmp_path, cli):
  result = cli(*_MOG, f"--run_dir={tmp_path / 'run'}", "--steps=30")
  assert result.returncode == 0, result.stderr
  lines = result.stdout.splitlines()
  assert [line.split(" (")[0] for line in lines] == ["step 10/30", "step 20/30", "step 30/30"]
  assert all(" - d_loss: " in line and " - g_grad_norm: " in line for line in lines)
  assert "\x1b" not in result.stdout and "\r" not in result.stdout


def test_your_own_images_train_from_the_command_line(tmp_path, cli):
  import PIL.Image  # pylint: disable=g-import-not-at-top  (matplotlib's dependency)
  folder = tmp_path / "images"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for i in range(6):
    PIL.Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
        folder / f"{i}.jpg")
  flags = (f"--dataset=folder:{folder}", "--image_shape=16,16,3", "--generator=particle",
           "--n_particles=8", "--discriminator=conv7", "--base_channels=4", "--batch_size=4",
           "--steps=2", "--log_every=1", "--sample_every=2", "--checkpoint_every=2")
  result = cli("--mode=train", *flags, f"--run_dir={tmp_path / 'run'}", "--eval_at_end=false")
  assert result.returncode == 0, result.stderr
  manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
  assert manifest["status"] == "completed" and manifest["settings"]["image_shape"] == [16, 16, 3]
  # FID's offline features need labelled images: refused in one line, before training.
  result = cli("--mode=train", *flags, f"--run_dir={tmp_path / 'run2'}")
  assert result.returncode == 2
  assert len(result.stderr.splitlines()) == 1
  assert "no classifier for dataset 'folder:" in result.stderr
  assert "--features=inception" in result.stderr and not (tmp_path / "run2").exists()
  result = cli("--mode=train", *flags[:1], *flags[2:], f"--run_dir={tmp_path / 'run3'}")
  assert result.returncode == 2 and "--image_shape=H,W,C" in result.stderr
  assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "run3").exists()
