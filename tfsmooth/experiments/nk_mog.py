"""Nagarajan and Kolter, Section 7: the mixture of Gaussians, eta = 0.5 against the plain GAN
(eta = 0) and an unrolled GAN (15 steps), over several seeds, side by side.

    python -m tfsmooth.main --mode=sweep --experiment=nk_mog --nk_schedule=short \
        --sweep_seeds=0,1,2 --sweep_dir=DIR
    python -m tfsmooth.app.compare_mog --schedule=short --seeds=0,1,2 --out_dir=DIR   (the same)

Each method is a flagfile in ``runs/`` (``nk_mog_eta0.5``, ``nk_mog_eta0``,
``nk_mog_unrolled15``: the settings of the authors' public code, docs/theory.md section 2); each
(method, seed) is one member of the sweep. The ``short`` schedule keeps the networks and batch
but takes 8,000 simultaneous steps at lr 1e-3 (about a minute per plain run on 2 CPU cores)
instead of 100,001 alternating steps at 1e-4.

Writes, besides the sweep's ``results.json`` / ``.csv`` (one row per run), ``results.md`` (modes
covered and high-quality % at the end: mean and min over seeds, wall time), ``summary.json``
(the same per method) and ``coverage.png`` (modes covered over iterations, every run).
"""

import json
import os

from tfsmooth.app import config as tfs_config
from tfsmooth.app import console
from tfsmooth.app import summaries
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.experiments import sweep

METHOD_NAMES = {  # flagfile in runs/ -> name shown
    "nk_mog_eta0.5": "eta = 0.5",
    "nk_mog_eta0": "eta = 0 (plain GAN)",
    "nk_mog_unrolled15": "unrolled, 15 steps",
}
SCHEDULES = {  # --nk_schedule -> flags over the method's flagfile (names: config.NK_SCHEDULES)
    "paper": {},
    "short": {"steps": 8000, "d_lr": 1e-3, "g_lr": 1e-3, "update": "simultaneous",
              "sample_every": 400, "checkpoint_every": 2000, "log_every": 100},
    # An installation check (make wheel-check): the short schedule's settings for 20 steps.
    "smoke": {"steps": 20, "d_lr": 1e-3, "g_lr": 1e-3, "update": "simultaneous",
              "sample_every": 10, "checkpoint_every": 10, "log_every": 10},
}
_SEED_MARK = "_seed"


def flagfile(method: str) -> str:
  """The shipped flagfile of ``method`` (tfsmooth/runs/METHOD.flags)."""
  return os.path.join(console.RUNS_DIR, method + ".flags")


def missing_method(methods) -> str | None:
  """The first method without a flagfile in ``runs/``, or None."""
  return next((m for m in methods if not os.path.exists(flagfile(m))), None)


def member_name(method: str, seed: int) -> str:
  return f"{method}{_SEED_MARK}{seed}"


def members(config: tfs_config.SweepConfig) -> list[sweep.Member]:
  """One member per method and seed: the method's flagfile, the schedule's flags over it (later
  flags win), the seed."""
  return [sweep.Member(member_name(method, seed), {"flagfile": flagfile(method),
                                                   **SCHEDULES[config.nk_schedule],
                                                   "seed": seed})
          for method in config.nk_methods for seed in config.sweep_seeds]


def row(name: str, run: RunDirectory) -> dict:
  manifest = run.read_manifest() if run.has_manifest() else {}
  coverage = manifest.get("mode_coverage") or {}
  method, seed = name.rsplit(_SEED_MARK, 1)
  return {"member": name, "status": manifest.get("status", "not started"), "method": method,
          "seed": int(seed), "modes_covered": coverage.get("modes_covered"),
          "high_quality_fraction": coverage.get("high_quality_fraction"),
          "final_step": manifest.get("final_step"), "train_seconds": manifest.get("train_seconds")}


def summarise(rows: list[dict]) -> dict:
  """Per method, over its completed runs: modes and high-quality % (each seed, mean, min) and
  the mean wall time."""
  summary = {}
  for method in dict.fromkeys(r["method"] for r in rows):
    done = [r for r in rows if r["method"] == method and r["status"] == "completed"]
    if not done:
      continue
    modes = [r["modes_covered"] for r in done]
    quality = [100 * r["high_quality_fraction"] for r in done]
    summary[method] = {
        "seeds": [r["seed"] for r in done], "modes": modes, "high_quality_percent": quality,
        "modes_mean": sum(modes) / len(modes), "modes_min": min(modes),
        "high_quality_mean": sum(quality) / len(quality), "high_quality_min": min(quality),
        "train_seconds_mean": sum(r["train_seconds"] for r in done) / len(done),
        "steps": done[0]["final_step"]}
  return summary


def markdown_table(summary: dict) -> str:
  lines = ["| method | modes covered (of 8): mean, min | per seed | high-quality %: mean, min "
           "| per seed | train time per run |",
           "|---|---|---|---|---|---|"]
  for method, row_ in summary.items():
    lines.append(
        f"| {METHOD_NAMES.get(method, method)} (`runs/{method}.flags`) | "
        f"{row_['modes_mean']:.1f}, {row_['modes_min']} | {', '.join(map(str, row_['modes']))} | "
        f"{row_['high_quality_mean']:.1f}, {row_['high_quality_min']:.1f} | "
        f"{', '.join(f'{q:.1f}' for q in row_['high_quality_percent'])} | "
        f"{row_['train_seconds_mean']:.0f} s |")
  return "\n".join(lines) + "\n"


def plot_coverage(sweep_dir: str, rows: list[dict], runs: dict) -> str:
  """``coverage.png``: modes covered over iterations, a panel per method, a line per seed."""
  plt = summaries.pyplot()
  methods = list(dict.fromkeys(r["method"] for r in rows))
  figure, axes = plt.subplots(1, len(methods), figsize=(4 * len(methods), 3), dpi=100,
                              sharey=True, squeeze=False)
  for axis, method in zip(axes[0], methods):
    for r in rows:
      run = runs[r["member"]]
      if r["method"] == method and os.path.exists(run.coverage_path):
        history = run.coverage_history()
        axis.plot([h["step"] for h in history], [h["modes_covered"] for h in history],
                  marker=".", label=f"seed {r['seed']} ({r['status']})")
    axis.set_title(METHOD_NAMES.get(method, method), fontsize=9)
    axis.set_xlabel("iteration")
    axis.set_ylim(-0.3, 8.3)
    axis.legend(fontsize=7)
  axes[0][0].set_ylabel("modes covered (of 8)")
  return sweep.save_figure(figure, sweep_dir, "coverage.png")


def experiment(config: tfs_config.SweepConfig) -> sweep.Experiment:
  def figures(sweep_dir: str, rows: list[dict], runs: dict) -> list[str]:
    summary = summarise(rows)
    summary_path = os.path.join(sweep_dir, "summary.json")
    with open(summary_path, "w", encoding="utf-8") as f:
      json.dump({"schedule": config.nk_schedule, "overrides": SCHEDULES[config.nk_schedule],
                 "summary": summary}, f, indent=2)
    table_path = os.path.join(sweep_dir, "results.md")
    with open(table_path, "w", encoding="utf-8") as f:
      f.write(markdown_table(summary))
    return [table_path, summary_path, plot_coverage(sweep_dir, rows, runs)]
  return sweep.Experiment(members=members(config), common={}, row=row,
                          hparams=("method", "seed"),
                          metrics=("modes_covered", "high_quality_fraction"), figures=figures)
