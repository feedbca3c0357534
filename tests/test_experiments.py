"""The sweep runner and Chu et al.'s Figure 1 experiment on it, end to end on a micro-sweep."""

import csv
import json
import os

import numpy as np
import pytest

from tfsmooth.app import config as tfs_config
from tfsmooth.app import console
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.experiments import chu_fig1
from tfsmooth.experiments import sweep

from test_metrics import _save_stand_in_inception  # pylint: disable=g-bad-import-order


def test_log_uniform_draws_are_seeded_and_in_range():
  ranges = {"alpha": (0.5, 5.0), "n_particles": (16, 64), "g_lr_ratio": (1e-2, 1e5)}
  first = sweep.log_uniform_draws(ranges, 50, seed=3, integer=("n_particles",))
  assert first == sweep.log_uniform_draws(ranges, 50, seed=3, integer=("n_particles",))
  assert first != sweep.log_uniform_draws(ranges, 50, seed=4, integer=("n_particles",))
  for member in first:
    for name, (low, high) in ranges.items():
      assert low <= member.settings[name] <= high
    assert isinstance(member.settings["n_particles"], int)
  ratios = sorted(m.settings["g_lr_ratio"] for m in first)
  assert ratios[0] < 1 and ratios[-1] > 1e3  # log-uniform: every decade gets members
  assert [m.settings["seed"] for m in first] == list(range(50))
  assert sweep.flag_args({"a": 1.5, "b": (2, 3), "c": None, "d": True}) == [
      "--a=1.5", "--b=2,3", "--d=true"]


def _micro_sweep_flags(tmp_path, members):
  module = tmp_path / "inception"
  if not module.exists():
    _save_stand_in_inception(str(module))
  return ["--mode=sweep", f"--sweep_dir={tmp_path / 'sweep'}", f"--sweep_members={members}",
          "--sweep_seed=1", "--dataset=mnist", "--generator=particle", "--discriminator=conv7",
          "--base_channels=2", "--loss=indicator", "--penalty=rkhs", "--n_disc=2",
          "--batch_size=8", "--particle_batch=8", "--steps=4", "--log_every=1",
          "--sample_every=4", "--checkpoint_every=2", "--g_lr_ratio=1", "--features=inception",
          f"--inception_module={module}", "--eval_samples=32", "--sweep_n_particles=16,32",
          "--sweep_g_lr_ratio=0.1,1000"]


def test_a_micro_sweep_runs_resumes_and_collects_its_table(tmp_path, cli):
  # Two members, then the same sweep again with member 1 interrupted at step 2: the finished
  # member is skipped, the interrupted one resumed.
  result = cli(*_micro_sweep_flags(tmp_path, 2), timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  members_dir = tmp_path / "sweep" / "members"
  finished = (members_dir / "member_000" / "manifest.json").stat().st_mtime_ns
  interrupted = RunDirectory(str(members_dir / "member_001"))
  manifest = interrupted.read_manifest()
  manifest.update(status="interrupted", final_step=2)
  interrupted.write_manifest(manifest)
  for name in os.listdir(interrupted.checkpoints):
    if name.startswith("ckpt-4"):
      os.remove(os.path.join(interrupted.checkpoints, name))
  with open(os.path.join(interrupted.checkpoints, "checkpoint"), "w", encoding="utf-8") as f:
    f.write('model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n')
  result = cli(*_micro_sweep_flags(tmp_path, 2), timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "2 members, 1 finished, 1 to run" in result.stderr
  assert (members_dir / "member_000" / "manifest.json").stat().st_mtime_ns == finished
  assert interrupted.read_manifest()["resumed"] == [2]

  rows = json.loads((tmp_path / "sweep" / "results.json").read_text())
  with open(tmp_path / "sweep" / "results.csv", encoding="utf-8") as f:
    table = list(csv.DictReader(f))
  assert [r["member"] for r in rows] == [r["member"] for r in table] == [
      "member_000", "member_001"]
  assert {"alpha", "beta1", "beta2", "n_particles", "gamma", "gamma_star", "gamma_ratio", "fid",
          "g_grad_norm", "status"} <= set(table[0])
  spec = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
  for row in rows:
    drawn = spec["members"][row["member"]]
    assert row["status"] == "completed" and row["fid"] > 0 and row["g_grad_norm"] > 0
    assert row["n_particles"] == drawn["n_particles"] and row["alpha"] == pytest.approx(
        drawn["alpha"], rel=1e-6)
    # beta1 from the architecture, not from the code's own report (docs/theory.md 1.4): conv7 is
    # 7 SN convolutions, each followed by ELU (L_s = 1, beta_s = 1), then an SN dense layer and
    # the scale alpha, so beta1 = alpha * 7 * 1. The reported bound composes the layers' norms
    # from power iteration, each 1 to float32 rounding: measured within 3.4e-7 of 7 alpha here
    # (1.4e-6 for the full-size net, docs/constants.md), so 1e-5 is rounding, not a wrong rule.
    beta1 = 7 * drawn["alpha"]
    assert row["beta1"] == pytest.approx(beta1, rel=1e-5), (row["beta1"], beta1)
    # gamma* of Theorem 1 for the particle generator: n / (beta1 + beta2), beta2 = lambda/sigma^2
    beta2 = drawn["penalty_lambda"] / drawn["kernel_sigma"] ** 2
    assert row["beta2"] == pytest.approx(beta2, rel=1e-6)
    assert row["gamma_star"] == pytest.approx(drawn["n_particles"] / (beta1 + beta2), rel=1e-5)
    assert row["gamma_ratio"] == drawn["g_lr_ratio"]
    assert row["gamma"] == pytest.approx(drawn["g_lr_ratio"] * row["gamma_star"], rel=1e-6)
  assert (tmp_path / "sweep" / "fig1.png").stat().st_size > 10_000
  shape = json.loads((tmp_path / "sweep" / "shape.json").read_text())
  assert shape["completed"] == 2 and len(shape["best_band"]["members"]) == 2
  hparams = tmp_path / "sweep" / "hparams"
  assert any(name.startswith("events") for name in os.listdir(hparams))
  assert sorted(p for p in os.listdir(hparams) if not p.startswith("events")) == [
      "member_000", "member_001"]


def test_the_members_share_the_sweeps_training_flags():
  config = tfs_config.make(tfs_config.SweepConfig, sweep_dir="/s", steps=7, g_lr_ratio=1.0,
                           alpha=3.0, hidden_units=(5,))
  common = chu_fig1.common_flags(config)
  assert common["mode"] == "train" and common["steps"] == 7 and common["hidden_units"] == [5]
  assert not {"alpha", "g_lr_ratio", "n_particles", "seed", "run_dir"} & set(common)


def test_the_long_runs_are_one_member_per_ratio_at_the_flags_own_settings():
  config = tfs_config.make(tfs_config.SweepConfig, sweep_dir="/s", g_lr_ratio=1.0, alpha=3.0,
                           n_particles=77, seed=5, sweep_g_lr_ratios=(0.3, 10.0, 1000.0))
  assert chu_fig1.members(config) == [
      sweep.Member("ratio_0.3", {"g_lr_ratio": 0.3}),
      sweep.Member("ratio_10", {"g_lr_ratio": 10.0}),
      sweep.Member("ratio_1000", {"g_lr_ratio": 1000.0})]
  common = chu_fig1.common_flags(config)
  assert (common["alpha"], common["n_particles"], common["seed"]) == (3.0, 77, 5)
  assert "g_lr_ratio" not in common


def _row(member, ratio, fid, status="completed"):
  return {"member": member, "status": status, "gamma_ratio": ratio, "fid": fid}


def test_the_shape_of_figure_1_in_numbers():
  rows = [_row("a", 0.01, 300.0), _row("b", 0.5, 250.0), _row("c", 3.0, 60.0),
          _row("d", 8.0, 70.0), _row("e", 40.0, 65.0), _row("f", 90.0, 120.0),
          # above 100: FID rising with the ratio but for one pair; a diverged member and one
          # whose FID is not finite rank worst (tied)
          _row("g", 150.0, 200.0), _row("h", 900.0, 500.0), _row("i", 1000.0, 400.0),
          _row("j", 5e4, None, "diverged"), _row("l", 9e4, float("nan")),
          _row("k", 7.0, None, "failed"), _row("m", None, None, "not started")]
  result = chu_fig1.shape(rows)
  assert result["completed"] == 9 and result["members"] == 13
  # the best three (a tenth of 9, rounded up, is 1; at least 3): c, e, d
  assert result["best_band"] == {"members": ["c", "e", "d"], "gamma_ratio": [3.0, 40.0],
                                 "fid": [60.0, 65.0, 70.0]}
  # FID ranks over g, h, i, j, l: 1, 3, 2, 4.5, 4.5 against the ratios' 1..5 (scipy: rho 0.8721)
  above = result["above_100"]
  assert above["members"] == 5
  assert above["spearman_rho"] == pytest.approx(0.87208, abs=1e-5)
  assert above["p_value"] == pytest.approx(0.05385, abs=1e-4)
  decades = {d["from"]: d for d in result["decades"]}
  assert sorted(decades) == [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
  assert [decades[0.01]["members"], decades[0.1]["members"]] == [1, 1]  # 0.01: its lower edge
  assert decades[1.0]["members"] == 3 and decades[1.0]["median_fid"] == 65.0  # c, d, k (failed)
  assert [decades[100.0]["members"], decades[1000.0]["members"]] == [2, 1]  # 1000: i alone
  assert decades[10000.0] == {"from": 10000.0, "to": 100000.0, "members": 2, "diverged": 1,
                              "median_fid": None}


def test_the_shape_of_too_few_members_has_no_correlation():
  assert chu_fig1.shape([]) == {"completed": 0, "members": 0, "best_band": {
      "members": [], "gamma_ratio": None, "fid": []}, "above_100": {
          "members": 0, "spearman_rho": None, "p_value": None}, "decades": []}
  all_diverged = [_row(str(i), 10.0**(i + 3), None, "diverged") for i in range(3)]
  assert chu_fig1.shape(all_diverged)["above_100"]["spearman_rho"] is None  # constant FID


def test_the_figure_shows_every_curve_of_a_few_members_else_three():
  few = [_row(str(i), 10.0**i, 1.0) for i in range(chu_fig1.CURVES_SHOWN)]
  assert chu_fig1.curve_rows(few[::-1] + [_row("m", None, None, "not started")]) == few
  many = [_row(f"{x:g}", x, 1.0) for x in (0.02, 0.9, 3.0, 50.0, 130.0, 700.0, 4e4)]
  assert [r["member"] for r in chu_fig1.curve_rows(many)] == ["0.9", "130", "40000"]


def test_the_toy_figure_is_a_sweep_of_toy_runs(tmp_path, cli, tensorboard):
  sweep_dir = tmp_path / "toy"
  result = cli("--mode=sweep", "--experiment=nk_fig3", f"--sweep_dir={sweep_dir}",
               "--nk_etas=0,0.5", "--parallel=2", timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  names = ["minimax_eta0.0", "minimax_eta0.5", "wgan_eta0.0", "wgan_eta0.5"]
  rows = json.loads((sweep_dir / "results.json").read_text())
  assert [r["member"] for r in rows] == names and {r["status"] for r in rows} == {"completed"}
  eigenvalues = json.loads((sweep_dir / "eigenvalues.json").read_text())
  assert sorted(eigenvalues) == ["minimax", "wgan"] and sorted(eigenvalues["wgan"]) == [
      "0.0", "0.5"]
  # WGAN: purely imaginary at eta = 0, real parts -4 eta / 9 with it (docs/theory.md)
  assert eigenvalues["wgan"]["0.0"]["max_real_part"] == pytest.approx(0.0, abs=1e-12)
  assert eigenvalues["wgan"]["0.5"]["max_real_part"] == pytest.approx(-2 / 9, abs=1e-6)
  assert "| WGAN | 0.5 |" in (sweep_dir / "eigenvalues.md").read_text()
  assert (sweep_dir / "streamlines.png").stat().st_size > 50_000
  np.testing.assert_array_equal(tensorboard(sweep_dir / "figures").images("streamlines")[0],
                                tensorboard.png_file(sweep_dir / "streamlines.png"))
  assert sorted(p for p in os.listdir(sweep_dir / "hparams")
                if not p.startswith("events")) == names


def test_the_mog_comparison_runs_on_the_sweep_runner(tmp_path, monkeypatch):
  from tfsmooth import experiments  # pylint: disable=g-import-not-at-top
  from tfsmooth.experiments import nk_mog  # pylint: disable=g-import-not-at-top
  # The members' flags are made here, so a shorter schedule reaches their processes.
  monkeypatch.setitem(nk_mog.SCHEDULES, "short", {
      "steps": 40, "update": "simultaneous", "sample_every": 20, "checkpoint_every": 20,
      "log_every": 10, "eval_samples": 500})
  config = tfs_config.make(tfs_config.SweepConfig, experiment="nk_mog",
                           sweep_dir=str(tmp_path / "mog"), nk_methods=("nk_mog_eta0.5",
                                                                        "nk_mog_eta0"),
                           sweep_seeds=(3,), parallel=2)
  line = experiments.run(config)
  assert line.startswith(f"sweep {tmp_path / 'mog'}: 2 completed")
  rows = json.loads((tmp_path / "mog" / "results.json").read_text())
  assert [(r["method"], r["seed"], r["final_step"]) for r in rows] == [
      ("nk_mog_eta0.5", 3, 40), ("nk_mog_eta0", 3, 40)]
  for r in rows:
    run = RunDirectory(str(tmp_path / "mog" / "members" / r["member"]))
    assert r["modes_covered"] == run.completed()["mode_coverage"]["modes_covered"]
    assert run.read_manifest()["settings"]["seed"] == 3
  assert RunDirectory(str(tmp_path / "mog" / "members" / rows[0]["member"])).read_manifest()[
      "settings"]["eta"] == 0.5  # the method's flagfile, under the schedule's flags
  table = (tmp_path / "mog" / "results.md").read_text()
  assert "| eta = 0.5 (`runs/nk_mog_eta0.5.flags`) |" in table
  assert "| eta = 0 (plain GAN) (`runs/nk_mog_eta0.flags`) |" in table
  summary = json.loads((tmp_path / "mog" / "summary.json").read_text())
  assert summary["overrides"]["steps"] == 40 and set(summary["summary"]) == {
      "nk_mog_eta0.5", "nk_mog_eta0"}
  assert (tmp_path / "mog" / "coverage.png").stat().st_size > 10_000


def test_a_failed_member_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
  good = sweep.Member("good", {"loss": "wgan", "eta": 0.5})
  bad = sweep.Member("bad", {"loss": "indicator", "eta": 0.5})  # refused: exits 2
  experiment = sweep.Experiment(
      members=[bad, good], common={"mode": "nk_toy"},
      row=lambda name, run: {"member": name, "status": (run.read_manifest().get("status")
                                                        if run.has_manifest() else "not started")},
      hparams=(), metrics=(), figures=lambda sweep_dir, rows, runs: [])
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # two GPUs: one for each member at once
  line = sweep.run_experiment(experiment, str(tmp_path), parallel=2)
  assert "1 failed, 1 completed" in line
  rows = json.loads((tmp_path / "results.json").read_text())
  assert {r["member"]: r["status"] for r in rows} == {"bad": "failed", "good": "completed"}
  log = tmp_path / "members" / "bad.log"
  assert "--mode=nk_toy needs --loss=minimax" in log.read_text()
  finished = (tmp_path / "members" / "good" / "manifest.json").stat().st_mtime_ns
  assert "1 failed, 1 completed" in sweep.run_experiment(experiment, str(tmp_path), parallel=2)
  assert (tmp_path / "members" / "good" / "manifest.json").stat().st_mtime_ns == finished
  # Two members at once got half the CPU threads each; the failed one, run again alone, all.
  threads = [line.split()[0] for line in log.read_text().splitlines()
             if line.startswith("TF_NUM_INTRAOP_THREADS=")]
  assert threads == [f"TF_NUM_INTRAOP_THREADS={max(1, sweep.cpu_count() // 2)}",
                     f"TF_NUM_INTRAOP_THREADS={sweep.cpu_count()}"]
  gpus = [(tmp_path / "members" / f"{name}.log").read_text().split()[1] for name in ("bad", "good")]
  assert sorted(gpus) == ["CUDA_VISIBLE_DEVICES=3", "CUDA_VISIBLE_DEVICES=5"]


def test_the_local_backend_finds_the_gpus_and_gives_each_slot_its_own(monkeypatch):
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0, 2,-1")
  assert sweep.visible_gpus() == ["0", "2"]
  monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
  assert sweep.visible_gpus() == []  # hidden on purpose
  monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
  monkeypatch.setattr(sweep.shutil, "which", lambda name: None)
  assert sweep.visible_gpus() == []  # no NVIDIA driver
  assert [sweep.gpu_of_slot(slot, ["0", "2"]) for slot in range(3)] == ["0", "2", "0"]
  assert sweep.gpu_of_slot(0, []) is None


def test_stacked_mnist_methods_are_parsed_and_bad_ones_refused(cli, tmp_path):
  from tfsmooth.experiments import nk_stacked  # pylint: disable=g-import-not-at-top
  assert nk_stacked.method_flags("plain") == {"eta": 0.0}
  assert nk_stacked.method_flags("eta0.05") == {"eta": 0.05}
  assert nk_stacked.method_flags("eta1e-3") == {"eta": 0.001}
  assert nk_stacked.method_flags("unrolled5") == {"unroll_steps": 5}
  for bad in ("eta0", "eta", "unrolled0", "unrolled", "eta1.2.3", "dcgan"):
    assert nk_stacked.method_flags(bad) is None, bad
  result = cli("--mode=sweep", "--experiment=nk_stacked", f"--sweep_dir={tmp_path}",
               "--stacked_methods=plain,eta0")
  assert result.returncode != 0
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("tfsmooth: error: flag --stacked_methods=") and "eta0" in last
  assert "must be a comma-separated list of plain, eta<value > 0>" in last
  assert not os.listdir(tmp_path)


def test_each_stacked_mnist_member_gets_its_method_size_and_seed():
  from tfsmooth.experiments import nk_stacked  # pylint: disable=g-import-not-at-top
  config = tfs_config.make(tfs_config.SweepConfig, experiment="nk_stacked", sweep_dir="unused",
                           sweep_seeds=(0, 4), stacked_methods=("plain", "eta0.5", "unrolled5"),
                           stacked_sizes=("quarter", "half"))
  members = {m.name: m.settings for m in nk_stacked.members(config)}
  assert len(members) == 12
  assert members["eta0.5_half_seed4"] == {
      "flagfile": os.path.join(console.RUNS_DIR, "nk_stacked_metz.flags"), "eval_every": 2500,
      "eta": 0.5, "base_channels": 4, "seed": 4}
  assert members["unrolled5_quarter_seed0"]["unroll_steps"] == 5
  assert members["plain_quarter_seed0"]["eta"] == 0.0
  assert members["plain_quarter_seed0"]["base_channels"] == 2


@pytest.mark.slow  # about 2 minutes: a classifier, two members and their 26,000-sample evaluations
def test_the_stacked_mnist_experiment_runs_on_the_sweep_runner(tmp_path, monkeypatch):
  """Two members of the nk_stacked experiment (a plain GAN against the quarter-size
  discriminator, an unrolled one against the half-size one) for a few steps, evaluated by a
  small MNIST classifier: each member gets its method's and size's flags, and the table has the
  columns the issue asks for."""
  from tfsmooth import classifier  # pylint: disable=g-import-not-at-top
  from tfsmooth import experiments  # pylint: disable=g-import-not-at-top
  from tfsmooth.experiments import nk_stacked  # pylint: disable=g-import-not-at-top
  cache = str(tmp_path / "cache")
  classifier.train_classifier("mnist", seed=0, cache_dir=cache, epochs=1,
                              max_train_examples=2000, max_test_examples=500)
  monkeypatch.setenv("TFSMOOTH_CACHE", cache)  # the members' processes find it there
  monkeypatch.setitem(nk_stacked.SCHEDULES, "short", {
      "steps": 6, "log_every": 3, "sample_every": 6, "checkpoint_every": 6, "eval_every": 3,
      "eval_samples": 200})
  config = tfs_config.make(tfs_config.SweepConfig, experiment="nk_stacked",
                           sweep_dir=str(tmp_path / "stacked"), sweep_seeds=(1,), parallel=2,
                           stacked_methods=("plain", "unrolled1"), stacked_sizes=("quarter",))
  line = experiments.run(config)
  assert line.startswith(f"sweep {tmp_path / 'stacked'}: 2 completed"), line
  with open(tmp_path / "stacked" / "results.csv", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert {"method", "d_size", "seed", "modes", "kl"} <= set(rows[0])
  assert [(r["method"], r["d_size"], r["seed"]) for r in rows] == [
      ("plain", "quarter", "1"), ("unrolled1", "quarter", "1")]
  for r in rows:
    run = RunDirectory(str(tmp_path / "stacked" / "members" / r["member"]))
    manifest = run.read_manifest()
    assert manifest["settings"]["base_channels"] == 2 and manifest["settings"]["seed"] == 1
    assert manifest["settings"]["unroll_steps"] == (1 if r["method"] == "unrolled1" else 0)
    modes = manifest["metrics"]["stacked_mnist"]
    assert int(r["modes"]) == modes["modes_covered"] and 1 <= int(r["modes"]) <= 1000
    assert float(r["kl"]) == pytest.approx(modes["kl_generated_to_uniform"])
    assert [step for step, _ in nk_stacked.modes_over_training(run)] == [3, 6]
  table = (tmp_path / "stacked" / "results.md").read_text()
  assert "| quarter | plain | 1 |" in table and "| 30.6 +- 20.73 | 5.99 +- 0.42 |" in table
  assert (tmp_path / "stacked" / "modes.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_dirac_gan_figure_gives_the_closed_form_eigenvalues(tmp_path, cli):
  """dirac_fig1 (8 toy runs, about 2 minutes on 2 cores): every method's eigenvalues at
  (0, 0) are the closed forms of docs/theory.md section 3."""
  sweep_dir = tmp_path / "dirac"
  result = cli("--mode=sweep", "--experiment=dirac_fig1", f"--sweep_dir={sweep_dir}",
               "--parallel=2", timeout=1200)
  assert result.returncode == 0, result.stderr[-3000:]
  eigenvalues = json.loads((sweep_dir / "eigenvalues.json").read_text())
  assert sorted(eigenvalues) == ["minimax", "minimax+r1", "wgan", "wgan+gp"]
  expected = {("minimax", "0.0"): 0.0, ("minimax", "0.5"): -0.125, ("wgan", "0.0"): 0.0,
              ("wgan", "0.5"): -0.5, ("minimax+r1", "0.0"): -0.5, ("minimax+r1", "0.5"): -0.625,
              ("wgan+gp", "0.0"): 2 * (1e6 - 1), ("wgan+gp", "0.5"): 2 * (1e6 - 1)}
  for (method, eta), max_real in expected.items():
    assert eigenvalues[method][eta]["max_real_part"] == pytest.approx(max_real, abs=1e-9), (
        method, eta)
  assert (sweep_dir / "streamlines.png").stat().st_size > 100_000
