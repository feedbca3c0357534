"""The mixture-of-Gaussians comparison driver: its table, its bookkeeping and its errors (the
runs themselves are tests/test_train.py's)."""

import json
import os

import pytest

from tfsmooth import compare_mog
from tfsmooth.rundir import RunDirectory


def _manifest(modes, high_quality, seconds):
  return {"status": "completed", "final_step": 8000, "train_seconds": seconds,
          "mode_coverage": {"modes_covered": modes, "high_quality_fraction": high_quality}}


def test_summary_reports_mean_and_min_over_seeds():
  summary = compare_mog.summarise({
      "nk_mog_eta0.5": {"0": _manifest(8, 0.7, 100), "1": _manifest(6, 0.5, 120)},
      "nk_mog_eta0": {"0": _manifest(0, 0.0, 90)}})
  row = summary["nk_mog_eta0.5"]
  assert (row["modes_mean"], row["modes_min"]) == (7.0, 6)
  assert row["high_quality_mean"] == pytest.approx(60.0)
  assert row["high_quality_min"] == pytest.approx(50.0)
  assert row["train_seconds_mean"] == 110
  table = compare_mog.markdown_table(summary)
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


def test_completed_runs_are_not_rerun(tmp_path):
  run_dir = tmp_path / "nk_mog_eta0_seed0"
  run_dir.mkdir()
  (run_dir / "manifest.json").write_text(json.dumps({"status": "running"}))
  assert RunDirectory(str(run_dir)).completed() is None
  (run_dir / "manifest.json").write_text(json.dumps(_manifest(8, 0.9, 1)))
  assert RunDirectory(str(run_dir)).completed()["final_step"] == 8000


def test_every_method_flagfile_parses_with_each_schedule():
  for method in compare_mog.METHODS.values():
    command = compare_mog.run_command(method, 1, "short", "/tmp/x")
    assert os.path.exists(command[3][len("--flagfile="):])
    assert "--seed=1" in command and "--steps=8000" in command


@pytest.mark.parametrize("args,line", [
    (["--methods=nk_mog_nope", "--out_dir={tmp}"],
     "compare_mog: error: flag --methods: no runs/nk_mog_nope.flags"),
    (["--seeds=0,x", "--out_dir={tmp}"], "compare_mog: error: flag --seeds=0,x: must be integers"),
    ([], "compare_mog: error: flag --out_dir=None: Flag --out_dir must have a value other than "
         "None."),
])
def test_bad_input_is_one_line(tmp_path, cli, args, line):
  result = cli(*[a.format(tmp=tmp_path) for a in args], module="tfsmooth.compare_mog",
               timeout=120)
  assert result.returncode in (1, 2)
  assert result.stderr.strip().splitlines() == [line]
  assert not os.listdir(tmp_path)  # nothing written
