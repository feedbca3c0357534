"""Nagarajan and Kolter's stacked-MNIST claim (their Figure 2: the gradient-regularised DCGAN
covers more modes than the plain one), in the setting where the plain DCGAN collapses: Metz et
al. (2017, Table 2), their small generator against a discriminator of 1/4 or 1/2 its size.

    python -m tfsmooth.main --mode=sweep --experiment=nk_stacked --nk_schedule=short \
        --sweep_seeds=0,1,2 --sweep_dir=DIR

Each member is ``runs/nk_stacked_metz.flags`` with one method (``--stacked_methods``: ``plain``,
``eta<value>`` for the regulariser ``eta |grad_{theta_D} V|^2``, ``unrolled<K>`` for Metz et al.'s
unrolled GAN), one discriminator size (``--stacked_sizes``: ``quarter``, ``half``) and one seed.
Writes, besides the sweep's ``results.json`` / ``.csv`` (one row per run: method, d_size, seed,
modes, kl), ``results.md`` (mean and std per method and size, beside Metz et al.'s published
numbers) and ``modes.png`` (modes covered over training, every run).
"""

import os
import re
import statistics

from tfsmooth.app import config as tfs_config
from tfsmooth.app import console
from tfsmooth.app import summaries
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.experiments import sweep

FLAGFILE = "nk_stacked_metz"
SIZES = {"quarter": 2, "half": 4}  # --stacked_sizes -> the metz discriminator's --base_channels
SCHEDULES = {  # --nk_schedule -> flags over the flagfile
    "paper": {},
    "short": {"eval_every": 2500},
    "smoke": {"steps": 20, "log_every": 10, "sample_every": 10, "checkpoint_every": 10,
              "eval_every": 10, "eval_samples": 500},
}
# Published modes (of 1,000) and KL, mean +- spread, for the same setting: Metz et al. (2017)
# Table 2 as PacGAN (Lin et al. 2018) quotes it in its Table 3, and PacGAN's own run of that
# setting's DCGAN ("DCGAN (our implementation)", 50 runs, +- the standard error), the code whose
# networks runs/nk_stacked_metz.flags builds.
PUBLISHED = {
    ("plain", "quarter"): ("Metz et al.", 30.6, 20.73, 5.99, 0.42),
    ("unrolled1", "quarter"): ("Metz et al.", 65.4, 34.75, 5.91, 0.14),
    ("unrolled5", "quarter"): ("Metz et al.", 236.4, 63.30, 4.67, 0.43),
    ("unrolled10", "quarter"): ("Metz et al.", 327.2, 74.67, 4.66, 0.46),
    ("plain", "half"): ("Metz et al.", 628.0, 140.9, 2.58, 0.75),
    ("unrolled1", "half"): ("Metz et al.", 523.6, 55.77, 2.44, 0.26),
    ("unrolled5", "half"): ("Metz et al.", 732.0, 44.98, 1.66, 0.09),
    ("unrolled10", "half"): ("Metz et al.", 817.4, 37.91, 1.43, 0.12),
}
PACGAN_DCGAN = {"quarter": (78.5, 17.56, 5.21, 0.19), "half": (487.7, 34.59, 2.24, 0.15)}
_METHOD = re.compile(r"^(plain|eta(?P<eta>[0-9.e+-]+)|unrolled(?P<steps>[0-9]+))$")


def method_flags(method: str) -> dict | None:
  """The flags of ``method`` (``plain``, ``eta<value>``, ``unrolled<K>``), or None if it is not
  one."""
  match = _METHOD.match(method)
  if not match:
    return None
  if match.group("eta"):
    try:
      eta = float(match.group("eta"))
    except ValueError:
      return None
    return {"eta": eta} if eta > 0 else None
  if match.group("steps"):
    steps = int(match.group("steps"))
    return {"unroll_steps": steps} if steps > 0 else None
  return {"eta": 0.0}


def invalid_method(methods) -> str | None:
  """The first of ``methods`` that is not ``plain``, ``eta<value > 0>`` or ``unrolled<K > 0>``."""
  return next((m for m in methods if method_flags(m) is None), None)


def member_name(method: str, size: str, seed: int) -> str:
  return f"{method}_{size}_seed{seed}"


def members(config: tfs_config.SweepConfig) -> list[sweep.Member]:
  """One member per size, method and seed: the flagfile, the schedule's flags, the method's."""
  flagfile = console.shipped_flagfile(FLAGFILE)
  return [sweep.Member(member_name(method, size, seed),
                       {"flagfile": flagfile, **SCHEDULES[config.nk_schedule],
                        **method_flags(method), "base_channels": SIZES[size], "seed": seed})
          for size in config.stacked_sizes for method in config.stacked_methods
          for seed in config.sweep_seeds]


def row(name: str, run: RunDirectory) -> dict:
  manifest = run.read_manifest() if run.has_manifest() else {}
  modes = (manifest.get("metrics") or {}).get("stacked_mnist") or {}
  method, size, seed = name.rsplit("_", 2)
  return {"member": name, "status": manifest.get("status", "not started"), "method": method,
          "d_size": size, "seed": int(seed.removeprefix("seed")),
          "modes": modes.get("modes_covered"), "kl": modes.get("kl_generated_to_uniform"),
          "final_step": manifest.get("final_step"),
          "train_seconds": manifest.get("train_seconds")}


def _mean_std(values):
  """Mean and sample standard deviation (0 for one value)."""
  return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def markdown_table(rows: list[dict]) -> str:
  """Modes and KL per method and size over the completed seeds (mean +- sample std), beside
  Metz et al.'s numbers where they published the method, and PacGAN's run of the plain DCGAN
  below the table."""
  lines = ["| D size | method | seeds | modes (of 1,000) | KL(q \\|\\| uniform) | per seed (modes) "
           "| Metz et al.: modes | Metz et al.: KL | train time per run |",
           "|---|---|---|---|---|---|---|---|---|"]
  for size in dict.fromkeys(r["d_size"] for r in rows):
    for method in dict.fromkeys(r["method"] for r in rows):
      done = [r for r in rows if (r["method"], r["d_size"]) == (method, size)
              and r["status"] == "completed" and r["modes"] is not None]
      if not done:
        continue
      modes, kl = _mean_std([r["modes"] for r in done]), _mean_std([r["kl"] for r in done])
      paper = PUBLISHED.get((method, size))
      published = (f"{paper[1]} +- {paper[2]} | {paper[3]} +- {paper[4]}" if paper
                   else "- | -")
      seconds = sum(r["train_seconds"] for r in done) / len(done)
      lines.append(f"| {size} | {method} | {len(done)} | {modes[0]:.1f} +- {modes[1]:.1f} | "
                   f"{kl[0]:.2f} +- {kl[1]:.2f} | {', '.join(str(r['modes']) for r in done)} | "
                   f"{published} | {seconds:.0f} s |")
  lines.append("")
  lines.append("PacGAN's own run of the plain DCGAN in this setting (50 runs, +- standard error): "
               + "; ".join(f"{size}: {m} +- {dm} modes, KL {k} +- {dk}"
                           for size, (m, dm, k, dk) in PACGAN_DCGAN.items()) + ".")
  return "\n".join(lines) + "\n"


def modes_over_training(run: RunDirectory) -> list[tuple[int, float]]:
  """``(step, modes covered)`` of every evaluation during the run (``--eval_every``), from its
  TensorBoard logs."""
  return summaries.scalar_series(run.logs, "eval/stacked_mnist_modes_covered")


def plot_modes(sweep_dir: str, rows: list[dict], runs: dict) -> str:
  """``modes.png``: modes covered over training, a panel per discriminator size, a colour per
  method, a line per seed."""
  plt = summaries.pyplot()
  sizes = list(dict.fromkeys(r["d_size"] for r in rows))
  methods = list(dict.fromkeys(r["method"] for r in rows))
  colours = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4))
  figure, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 3.5), dpi=100,
                              sharey=True, squeeze=False)
  for axis, size in zip(axes[0], sizes):
    labelled = set()
    for r in rows:
      history = modes_over_training(runs[r["member"]]) if r["d_size"] == size else []
      if history:
        axis.plot(*zip(*history), marker=".", color=colours[r["method"]], alpha=0.8,
                  label=None if r["method"] in labelled else r["method"])
        labelled.add(r["method"])
    axis.set_title(f"discriminator of {size} the generator's size", fontsize=9)
    axis.set_xlabel("iteration")
    axis.set_ylim(0, 1000)
    axis.legend(fontsize=7)
  axes[0][0].set_ylabel("modes covered (of 1,000)")
  return sweep.save_figure(figure, sweep_dir, "modes.png")


def experiment(config: tfs_config.SweepConfig) -> sweep.Experiment:
  def figures(sweep_dir: str, rows: list[dict], runs: dict) -> list[str]:
    table_path = os.path.join(sweep_dir, "results.md")
    with open(table_path, "w", encoding="utf-8") as f:
      f.write(markdown_table(rows))
    return [table_path, plot_modes(sweep_dir, rows, runs)]
  return sweep.Experiment(members=members(config), common={}, row=row,
                          hparams=("method", "d_size", "seed"), metrics=("modes", "kl"),
                          figures=figures)
