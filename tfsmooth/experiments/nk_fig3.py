"""Nagarajan and Kolter, Section 6 / Figure 3: the toy system's update field and the eigenvalues
of its Jacobian at the equilibrium, for the GAN and WGAN losses and each eta.

    python -m tfsmooth.main --mode=sweep --experiment=nk_fig3 --sweep_dir=DIR

One member per (loss, eta), each ``--mode=nk_toy`` (tfsmooth.app.nk_toy) in its own run directory.
Writes ``results.json`` / ``results.csv`` (per member: loss, eta, Jacobian, eigenvalues, largest
real part), ``eigenvalues.json`` and ``eigenvalues.md`` (the table of docs/nagarajan_kolter.md),
``streamlines.png`` (every panel: a row per loss, a column per eta) and TensorBoard HParams.
"""

import json
import os

import numpy as np

from tfsmooth.app import config as tfs_config
from tfsmooth.app import summaries
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.experiments import sweep

LOSSES = ("minimax", "wgan")  # the paper's GAN and WGAN (tfsmooth.app.nk_toy.LOSSES)


def members(config: tfs_config.SweepConfig) -> list[sweep.Member]:
  return sweep.grid({"loss": LOSSES, "eta": config.nk_etas}, seeds=None,
                    name=lambda settings: f"{settings['loss']}_eta{settings['eta']}")


def row(name: str, run: RunDirectory) -> dict:
  """A toy member's row (``--mode=nk_toy``, either game); ``method`` names its loss and
  penalty, e.g. ``GAN + R1``."""
  manifest = run.read_manifest() if run.has_manifest() else {}
  penalty = manifest.get("penalty", "none")
  method = manifest.get("paper_loss")
  if method and penalty != "none":
    method += f" + {penalty.upper()}"
  return {"member": name, "status": manifest.get("status", "not started"),
          "game": manifest.get("game", "nk"), "loss": manifest.get("loss"),
          "paper_loss": manifest.get("paper_loss"), "penalty": penalty, "method": method,
          "eta": manifest.get("eta"), "equilibrium": manifest.get("equilibrium"),
          "jacobian": manifest.get("jacobian"), "eigenvalues": manifest.get("eigenvalues"),
          "max_real_part": manifest.get("max_real_part")}


def figures(sweep_dir: str, rows: list[dict], runs: dict) -> list[str]:
  """The overview of every panel (a row per method, a column per eta), and the eigenvalue table
  as JSON and Markdown (the same for nk_fig3 and dirac_fig1)."""
  from tfsmooth.app import nk_toy  # pylint: disable=g-import-not-at-top  (TensorFlow)
  done = [r for r in rows if r["status"] == "completed"]
  methods = list(dict.fromkeys(r["method"] for r in done))
  etas = list(dict.fromkeys(r["eta"] for r in done))
  overview, axes = summaries.pyplot().subplots(max(len(methods), 1), max(len(etas), 1),
                                figsize=(3.2 * max(len(etas), 1), 3.0 * max(len(methods), 1)),
                                dpi=100, squeeze=False)
  by_method = {}
  for r in done:
    with np.load(runs[r["member"]].toy_field_path) as panel:
      nk_toy.draw_panel(axes[methods.index(r["method"])][etas.index(r["eta"])], dict(panel),
                        nk_toy.title(r["loss"], r["eta"], r["eigenvalues"], r["penalty"]),
                        r["game"])
    key = r["loss"] + ("" if r["penalty"] == "none" else f"+{r['penalty']}")  # "minimax+r1"
    by_method.setdefault(key, {})[str(r["eta"])] = {
        key: r[key] for key in ("jacobian", "eigenvalues", "max_real_part")}
  figure_path = sweep.save_figure(overview, sweep_dir, "streamlines.png")
  json_path = os.path.join(sweep_dir, "eigenvalues.json")
  with open(json_path, "w", encoding="utf-8") as f:
    json.dump(by_method, f, indent=2)
  point = ", ".join(f"{v:g}" for v in done[0]["equilibrium"]) if done else ""
  header = "loss" if all(r["penalty"] == "none" for r in done) else "method"
  lines = [f"| {header} | eta | Jacobian at the equilibrium ({point}) | eigenvalues | "
           "max real part |", "|---|---|---|---|---|"]
  for r in done:
    (j11, j12), (j21, j22) = r["jacobian"]
    lines.append(f"| {r['method']} | {r['eta']} | [[{j11:.4f}, {j12:.4f}], "
                 f"[{j21:.4f}, {j22:.4f}]] | {nk_toy.format_eigenvalues(r['eigenvalues'])} | "
                 f"{r['max_real_part']:+.2e} |")
  table_path = os.path.join(sweep_dir, "eigenvalues.md")
  with open(table_path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return [figure_path, json_path, table_path]


def experiment(config: tfs_config.SweepConfig) -> sweep.Experiment:
  return sweep.Experiment(members=members(config), common={"mode": "nk_toy"}, row=row,
                          hparams=("loss", "eta"), metrics=("max_real_part",), figures=figures)
