"""Nagarajan and Kolter's mixture-of-Gaussians comparison: eta = 0.5, plain GAN (eta = 0) and an
unrolled GAN (15 steps), over several seeds, side by side.

    python -m tfsmooth.compare_mog --schedule=short --seeds=0,1,2 --out_dir=out/nk_mog_short

Each method is a flagfile in ``runs/`` (``nk_mog_eta0.5``, ``nk_mog_eta0``,
``nk_mog_unrolled15``: the settings of the authors' public code, docs/theory.md section 2); each
(method, seed) is one ``python -m tfsmooth.main`` run in its own process and directory, skipped
if it has already completed, so an interrupted comparison picks up where it stopped. The
``short`` schedule keeps the networks and batch but takes 8,000 simultaneous steps at lr 1e-3
(about a minute per plain run on 2 CPU cores) instead of 100,001 alternating steps at 1e-4.

Writes ``results.json``, ``results.md`` (modes covered and high-quality % at the end: mean and
min over seeds, wall time) and ``coverage.png`` (modes covered over iterations, every run).
"""

import json
import os
import subprocess
import sys

from absl import app
from absl import flags

from tfsmooth import console
from tfsmooth.rundir import RunDirectory

METHODS = {  # name shown -> flagfile in runs/
    "eta = 0.5": "nk_mog_eta0.5",
    "eta = 0 (plain GAN)": "nk_mog_eta0",
    "unrolled, 15 steps": "nk_mog_unrolled15",
}
SCHEDULES = {
    "paper": [],
    "short": ["--steps=8000", "--d_lr=1e-3", "--g_lr=1e-3", "--update=simultaneous",
              "--sample_every=400", "--checkpoint_every=2000", "--log_every=100"],
}
METHOD_NAMES = {flagfile: name for name, flagfile in METHODS.items()}
RUNS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runs")

flags.DEFINE_enum("schedule", "short", list(SCHEDULES), "paper: the flagfiles as they are "
                  "(100,001 steps each); short: 8,000 simultaneous steps at lr 1e-3.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds: one run per method and seed.")
flags.DEFINE_list("methods", list(METHODS.values()), "Flagfiles (in runs/) to compare.")
flags.DEFINE_string("out_dir", None, "Directory of the runs and the results.")
FLAGS = flags.FLAGS


def run_directory(out_dir: str, method: str, seed: int) -> str:
  return os.path.join(out_dir, f"{method}_seed{seed}")


def run_command(method: str, seed: int, schedule: str, run_dir: str) -> list[str]:
  return [sys.executable, "-m", "tfsmooth.main",
          f"--flagfile={os.path.join(RUNS_DIR, method + '.flags')}", f"--seed={seed}",
          f"--run_dir={run_dir}", *SCHEDULES[schedule]]


def summarise(results: dict) -> dict:
  """``{method: {seed: manifest}}`` -> per method: modes and high-quality % (mean, min) and
  mean wall time over its seeds."""
  summary = {}
  for method, runs in results.items():
    modes = [m["mode_coverage"]["modes_covered"] for m in runs.values()]
    quality = [100 * m["mode_coverage"]["high_quality_fraction"] for m in runs.values()]
    seconds = [m["train_seconds"] for m in runs.values()]
    summary[method] = {
        "seeds": sorted(int(s) for s in runs), "modes": modes, "high_quality_percent": quality,
        "modes_mean": sum(modes) / len(modes), "modes_min": min(modes),
        "high_quality_mean": sum(quality) / len(quality), "high_quality_min": min(quality),
        "train_seconds_mean": sum(seconds) / len(seconds),
        "steps": runs[next(iter(runs))]["final_step"]}
  return summary


def markdown_table(summary: dict) -> str:
  lines = ["| method | modes covered (of 8): mean, min | per seed | high-quality %: mean, min "
           "| per seed | train time per run |",
           "|---|---|---|---|---|---|"]
  for method, row in summary.items():
    lines.append(
        f"| {METHOD_NAMES.get(method, method)} (`runs/{method}.flags`) | {row['modes_mean']:.1f}, "
        f"{row['modes_min']} | {', '.join(map(str, row['modes']))} | "
        f"{row['high_quality_mean']:.1f}, {row['high_quality_min']:.1f} | "
        f"{', '.join(f'{q:.1f}' for q in row['high_quality_percent'])} | "
        f"{row['train_seconds_mean']:.0f} s |")
  return "\n".join(lines) + "\n"


def plot_coverage(out_dir: str, results: dict) -> str:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  figure, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3), dpi=100,
                              sharey=True, squeeze=False)
  for axis, (method, runs) in zip(axes[0], results.items()):
    for seed in sorted(runs, key=int):
      history = RunDirectory(run_directory(out_dir, method, int(seed))).coverage_history()
      axis.plot([r["step"] for r in history], [r["modes_covered"] for r in history],
                marker=".", label=f"seed {seed}")
    axis.set_title(METHOD_NAMES.get(method, method), fontsize=9)
    axis.set_xlabel("iteration")
    axis.set_ylim(-0.3, 8.3)
    axis.legend(fontsize=7)
  axes[0][0].set_ylabel("modes covered (of 8)")
  figure.tight_layout()
  path = os.path.join(out_dir, "coverage.png")
  figure.savefig(path)
  plt.close(figure)
  return path


def main(argv):
  del argv
  unknown = [m for m in FLAGS.methods if not os.path.exists(os.path.join(RUNS_DIR, m + ".flags"))]
  if unknown:
    sys.exit(f"compare_mog: error: flag --methods: no runs/{unknown[0]}.flags")
  try:
    seeds = [int(s) for s in FLAGS.seeds]
  except ValueError:
    sys.exit(f"compare_mog: error: flag --seeds={','.join(FLAGS.seeds)}: must be integers")
  os.makedirs(FLAGS.out_dir, exist_ok=True)
  results = {}
  for method in FLAGS.methods:
    for seed in seeds:
      run_dir = run_directory(FLAGS.out_dir, method, seed)
      run = RunDirectory(run_dir)
      if not run.completed():
        resume = ["--resume"] if os.path.exists(run.checkpoints) else []
        command = run_command(method, seed, FLAGS.schedule, run_dir) + resume
        print(f"[compare_mog] {' '.join(command[1:])}", flush=True)
        with open(run_dir + ".log", "a", encoding="utf-8") as log:
          returncode = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        if returncode:
          sys.exit(f"compare_mog: error: run {run_dir} failed (exit {returncode}); see "
                   f"{run_dir}.log")
      manifest = run.completed()
      results.setdefault(method, {})[str(seed)] = manifest
      coverage = manifest["mode_coverage"]
      print(f"[compare_mog] {method} seed {seed}: {coverage['modes_covered']}/8 modes, "
            f"{100 * coverage['high_quality_fraction']:.1f}% high quality, "
            f"{manifest['train_seconds']:.0f} s", flush=True)
  summary = summarise(results)
  with open(os.path.join(FLAGS.out_dir, "results.json"), "w", encoding="utf-8") as f:
    json.dump({"schedule": FLAGS.schedule, "overrides": SCHEDULES[FLAGS.schedule],
               "summary": summary}, f, indent=2)
  table = markdown_table(summary)
  with open(os.path.join(FLAGS.out_dir, "results.md"), "w", encoding="utf-8") as f:
    f.write(table)
  print(table + f"[compare_mog] figure: {plot_coverage(FLAGS.out_dir, results)}")


if __name__ == "__main__":
  # Required only when run as a program: importing this module (tests) must not make every
  # later parse of the global flags fail.
  flags.mark_flag_as_required("out_dir")
  app.run(main, flags_parser=console.one_line_flags_parser("compare_mog"))
