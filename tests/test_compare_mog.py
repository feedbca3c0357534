"""The mixture-of-Gaussians comparison (the ``nk_mog`` experiment and its ``compare_mog``
command): its members, its table, its bookkeeping and its errors (a whole micro-comparison runs in
tests/test_experiments.py; full runs in tests/test_train.py and test_paper_scale.py)."""

import json
import os

import pytest

from tfsmooth.app import config as tfs_config
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.experiments import nk_mog


def _row(method, seed, modes, high_quality, seconds, status="completed"):
  return {"member": nk_mog.member_name(method, seed), "method": method, "seed": seed,
          "status": status, "modes_covered": modes, "high_quality_fraction": high_quality,
          "train_seconds": seconds, "final_step": 8000}


def test_summary_reports_mean_and_min_over_completed_seeds():
  summary = nk_mog.summarise([
      _row("nk_mog_eta0.5", 0, 8, 0.7, 100), _row("nk_mog_eta0.5", 1, 6, 0.5, 120),
      _row("nk_mog_eta0.5", 2, None, None, None, status="diverged"),
      _row("nk_mog_eta0", 0, 0, 0.0, 90)])
  row = summary["nk_mog_eta0.5"]
  assert row["seeds"] == [0, 1]
  assert (row["modes_mean"], row["modes_min"]) == (7.0, 6)
  assert row["high_quality_mean"] == pytest.approx(60.0)
  assert row["high_quality_min"] == pytest.approx(50.0)
  assert row["train_seconds_mean"] == 110
  table = nk_mog.markdown_table(summary)
  assert "| eta = 0.5 (`runs/nk_mog_eta0.5.flags`) | 7.0, 6 | 8, 6 | 60.0, 50.0 |" in table
  assert "| eta = 0 (plain GAN) (`runs/nk_mog_eta0.flags`) | 0.0, 0 |" in table


def test_coverage_history_keeps_the_last_record_of_each_step(tmp_path):
  samples = tmp_path / "samples"
  samples.mkdir()
  records = [{"step": 400, "modes_covered": 1}, {"step": 800, "modes_covered": 2},
             {"step": 800, "modes_covered": 3}]  # a resumed run rewrites step 800
  (samples / "mode_coverage.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  history = RunDirectory(str(tmp_path)).coverage_history()
  assert [(r["step"], r["modes_covered"]) for r in history] == [(400, 1), (800, 3)]


def test_completed_runs_are_recognised(tmp_path):
  run_dir = tmp_path / "nk_mog_eta0_seed0"
  run_dir.mkdir()
  (run_dir / "manifest.json").write_text(json.dumps({"status": "running"}))
  assert RunDirectory(str(run_dir)).completed() is None
  (run_dir / "manifest.json").write_text(json.dumps({"status": "completed", "final_step": 8000}))
  assert RunDirectory(str(run_dir)).completed()["final_step"] == 8000


def test_members_are_each_method_flagfile_then_the_schedule_then_the_seed():
  config = tfs_config.make(tfs_config.SweepConfig, experiment="nk_mog", sweep_dir="/s",
                           sweep_seeds=(1, 2))
  members = nk_mog.members(config)
  assert [m.name for m in members] == [nk_mog.member_name(method, seed)
                                       for method in config.nk_methods for seed in (1, 2)]
  assert list(nk_mog.METHOD_NAMES) == list(config.nk_methods)
  assert set(nk_mog.SCHEDULES) == set(tfs_config.NK_SCHEDULES)
  for member in members:
    names = list(member.settings)
    # later flags win: the flagfile first, then the schedule's overrides, then the seed
    assert names[0] == "flagfile" and names[-1] == "seed"
    assert os.path.exists(member.settings["flagfile"])
    assert member.settings["steps"] == 8000
    assert nk_mog.row(member.name, RunDirectory("/nowhere"))["seed"] == member.settings["seed"]


@pytest.mark.parametrize("args,line", [
    (["--methods=nk_mog_nope", "--out_dir={tmp}"],
     "compare_mog: error: flag --methods: no flagfile tfsmooth/runs/nk_mog_nope.flags"),
    (["--seeds=0,x", "--out_dir={tmp}"], "compare_mog: error: flag --seeds=0,x: must be integers"),
    (["--parallel=0", "--out_dir={tmp}"],
     "compare_mog: error: flag --parallel=0: 0 is not a positive integer"),
    ([], "compare_mog: error: flag --out_dir=None: Flag --out_dir must have a value other than "
         "None."),
])
def test_bad_input_is_one_line(tmp_path, cli, args, line):
  result = cli(*[a.format(tmp=tmp_path) for a in args], module="tfsmooth.app.compare_mog",
               timeout=120)
  assert result.returncode in (1, 2)
  assert result.stderr.strip().splitlines() == [line]
  assert not os.listdir(tmp_path)  # nothing written
