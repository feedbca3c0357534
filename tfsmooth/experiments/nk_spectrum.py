"""The game's spectrum along the mixture-of-Gaussians runs: does Nagarajan and Kolter's
regulariser move the Jacobian's eigenvalues left (their Theorem 3.2) on real networks?

    python -m tfsmooth.main --mode=sweep --experiment=nk_spectrum --nk_schedule=short \
        --sweep_seeds=0,1,2 --sweep_dir=DIR

The members are the ``nk_mog`` runs of ``eta = 0`` and ``eta = 0.5`` (``runs/nk_mog_eta0.flags``
and ``runs/nk_mog_eta0.5.flags`` with the ``--nk_schedule`` overrides), each keeping every
checkpoint. Then, at every checkpoint of every member, the ``--spectrum_k`` eigenvalues of
largest real part and of largest modulus of the Jacobian of the update field on one fixed
batch (``tfsmooth.app.spectrum_mode``: Arnoldi on Jacobian-vector products, with residuals);
computed once, kept in ``spectra.json``, so a rerun only adds what is missing.

Each spectrum also has the largest real parts of each player's diagonal block of the Jacobian
(``--spectrum_blocks``: whose directions are unstable; N&K's regulariser acts on the
generator's block) and each player's field norm (how far the run is from an equilibrium, where
their Theorem 3.2 speaks).

Writes, besides the sweep's tables, ``spectra.json`` (every spectrum), ``spectra.csv`` (a row per
member and step: largest real parts of J and of its blocks, largest modulus, field norms,
residuals, cost), ``spectra.md`` (per method and step, each seed) and ``spectra.png`` (the largest
real part along training, a line per run, of J and of each player's block).
"""

import csv
import dataclasses
import json
import os

import numpy as np

from tfsmooth.app import config as tfs_config
from tfsmooth.app import rundir
from tfsmooth.app import summaries
from tfsmooth.experiments import nk_mog
from tfsmooth.experiments import sweep

METHODS = ("nk_mog_eta0", "nk_mog_eta0.5")  # flagfiles: eta = 0 and eta = 0.5
KEEP_CHECKPOINTS = 100  # every checkpoint of a run is a snapshot to take the spectrum of
SPECTRA = "spectra.json"


def members(config: tfs_config.SweepConfig) -> list[sweep.Member]:
  runs = nk_mog.members(tfs_config.SweepConfig(nk_methods=METHODS, nk_schedule=config.nk_schedule,
                                               sweep_seeds=config.sweep_seeds))
  return [sweep.Member(m.name, {**m.settings, "keep_checkpoints": KEEP_CHECKPOINTS})
          for m in runs]


def _load(path: str) -> dict:
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def compute_spectra(sweep_dir: str, rows: list[dict], runs: dict,
                    spectrum: tfs_config.SpectrumConfig) -> dict:
  """``{member: {step: spectrum.json's content}}`` for every checkpoint of every completed
  member, computing those not yet in ``spectra.json`` (written after each)."""
  from tfsmooth.app import spectrum_mode  # pylint: disable=g-import-not-at-top  (TensorFlow)
  path = os.path.join(sweep_dir, SPECTRA)
  spectra = _load(path)
  for row in rows:
    if row["status"] != "completed":
      continue
    run = runs[row["member"]]
    done = spectra.setdefault(row["member"], {})
    for step in sorted(spectrum_mode.checkpoint_steps(run)):  # the final step last
      if str(step) in done:
        continue
      result = spectrum_mode.run(dataclasses.replace(spectrum, run_dir=run.path, step=step,
                                                     blocks=True))
      result.pop("versions")
      done[str(step)] = result
      print(f"{row['member']} {spectrum_mode.summary_line(result)}", flush=True)
      rundir.write_json(path, spectra, sort_keys=False)
  return spectra


def table(spectra: dict) -> list[dict]:
  """A row per member and step."""
  rows = []
  for member, by_step in spectra.items():
    method, seed = member.rsplit("_seed", 1)
    for step, result in sorted(by_step.items(), key=lambda item: int(item[0])):
      modulus = result["largest_modulus"]
      rows.append({
          "member": member, "method": method, "seed": int(seed), "step": int(step),
          "max_real_part": result["max_real_part"],
          "max_modulus": max(np.hypot(*v) for v in modulus["eigenvalues"]),
          "max_residual": max(result["residuals"] + modulus["residuals"]),
          # Which player the unstable directions belong to, and how far from an equilibrium.
          "discriminator_block_max_real": result["blocks"]["discriminator"]["max_real_part"],
          "generator_block_max_real": result["blocks"]["generator"]["max_real_part"],
          "field_norm_discriminator": result["field_norm"]["discriminator"],
          "field_norm_generator": result["field_norm"]["generator"],
          "parameters": result["parameters"], "products": result["products"],
          "seconds": result["seconds"]})
  return rows


def markdown(rows: list[dict]) -> str:
  """Per method and step: the largest real part of each seed, and the cost."""
  lines = ["| method | step | largest real part (per seed) | of D's block | of G's block | "
           "largest modulus | field norm D, G (mean) | J v products, seconds (mean) |",
           "|---|---|---|---|---|---|---|---|"]
  keys = dict.fromkeys((r["method"], r["step"]) for r in rows)
  for method, step in keys:
    group = [r for r in rows if (r["method"], r["step"]) == (method, step)]
    def each(column, spec):
      return ", ".join(format(r[column], spec) for r in group)  # noqa: B023 (used at once)
    field = (f"{np.mean([r['field_norm_discriminator'] for r in group]):.3g}, "
             f"{np.mean([r['field_norm_generator'] for r in group]):.3g}")
    lines.append(
        f"| {nk_mog.METHOD_NAMES.get(method, method)} | {step} | "
        f"{each('max_real_part', '+.4f')} | {each('discriminator_block_max_real', '+.4f')} | "
        f"{each('generator_block_max_real', '+.4f')} | {each('max_modulus', '.3f')} | {field} | "
        f"{np.mean([r['products'] for r in group]):.0f}, "
        f"{np.mean([r['seconds'] for r in group]):.0f} s |")
  return "\n".join(lines) + "\n"


PANELS = (("max_real_part", "the Jacobian J"),
          ("discriminator_block_max_real", "D's block (its field against its parameters)"),
          ("generator_block_max_real", "G's block (its field against its parameters)"))


def plot(sweep_dir: str, rows: list[dict]) -> str:
  """The largest real part along training, a line per run (colour: method): of the Jacobian
  and of each player's diagonal block (whose directions are unstable). The eigenvalues were real
  on every run measured, so the complex plane would show nothing more; the axis is linear
  below 0.1 and logarithmic above, where eta's generator blocks grow."""
  figure, axes = summaries.pyplot().subplots(1, len(PANELS), figsize=(13, 4), dpi=100,
                                             sharey=True)
  colours = dict(zip(METHODS, ("tab:red", "tab:blue")))
  for member in dict.fromkeys(r["member"] for r in rows):
    group = [r for r in rows if r["member"] == member]
    method = group[0]["method"]
    label = f"{nk_mog.METHOD_NAMES.get(method, method)}, seed {group[0]['seed']}"
    for axis, (column, _) in zip(axes, PANELS):
      axis.plot([r["step"] for r in group], [r[column] for r in group], marker="o",
                color=colours.get(method), alpha=0.8, label=label)
  for axis, (_, title) in zip(axes, PANELS):
    axis.axhline(0.0, color="black", linewidth=0.8, linestyle="--")
    axis.set_yscale("symlog", linthresh=0.1)
    axis.set_xlabel("iteration")
    axis.set_title(f"largest real part: {title}", fontsize=9)
  if min(r[column] for r in rows for column, _ in PANELS) >= 0:
    axes[0].set_ylim(bottom=-0.05)  # all positive: no empty negative decades (axes shared)
  axes[0].set_ylabel("largest real part (> 0: locally unstable direction)")
  axes[0].legend(fontsize=7)
  return sweep.save_figure(figure, sweep_dir, "spectra.png")


def experiment(config: tfs_config.SweepConfig) -> sweep.Experiment:
  def figures(sweep_dir: str, rows: list[dict], runs: dict) -> list[str]:
    spectra = compute_spectra(sweep_dir, rows, runs, config.spectrum)
    table_rows = table(spectra)
    csv_path = os.path.join(sweep_dir, "spectra.csv")
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=list(table_rows[0]) if table_rows else ["member"])
      writer.writeheader()
      writer.writerows(table_rows)
    markdown_path = os.path.join(sweep_dir, "spectra.md")
    with open(markdown_path, "w", encoding="utf-8") as f:
      f.write(markdown(table_rows))
    return [os.path.join(sweep_dir, SPECTRA), csv_path, markdown_path,
            plot(sweep_dir, table_rows)]
  return sweep.Experiment(members=members(config), common={}, row=nk_mog.row,
                          hparams=("method", "seed"),
                          metrics=("modes_covered", "high_quality_fraction"), figures=figures)
