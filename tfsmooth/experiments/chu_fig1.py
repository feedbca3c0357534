"""Chu, Minami, Fukumizu, Section 7 / Figure 1: FID against gamma/gamma* over random settings.

    python -m tfsmooth.main --flagfile=runs/chu_fig1.flags --sweep_dir=DIR

Each member trains the particle generator against the SN discriminator with the truncated RKHS
penalty (the training flags of the flagfile), with alpha, lambda, sigma, n and gamma/gamma* drawn
log-uniformly from the ``--sweep_*`` ranges (seeded by ``--sweep_seed``); gamma* comes from
Theorem 1 for each member's built discriminator (tfsmooth.theory, via ``--g_lr_ratio``). Writes
``results.json`` / ``results.csv`` (per member: alpha, beta1, beta2, n, gamma, gamma*,
gamma/gamma*, final FID and its features, final ``g_grad_norm``, status), ``fig1.png`` and
TensorBoard HParams, all under the sweep directory.
"""

import dataclasses
import math

from tfsmooth.app import config as tfs_config
from tfsmooth.app import summaries
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.experiments import sweep

# --sweep_<flag> -> the member flag it draws.
RANGES = ("alpha", "penalty_lambda", "kernel_sigma", "n_particles", "g_lr_ratio")
HPARAMS = ("alpha", "beta1", "beta2", "n_particles", "gamma", "gamma_star", "gamma_ratio")
METRICS = ("fid", "g_grad_norm")


def members(config: tfs_config.SweepConfig) -> list[sweep.Member]:
  ranges = {name: getattr(config, f"sweep_{name}") for name in RANGES}
  return sweep.log_uniform_draws(ranges, config.sweep_members, config.sweep_seed,
                                 integer=("n_particles",))


def common_flags(config: tfs_config.SweepConfig) -> dict:
  """The training flags every member shares: the sweep's own, less what a member sets."""
  settings = tfs_config.settings(dataclasses.replace(config.train, run_dir="unused"))
  excluded = {"run_dir", "resume", "seed", *RANGES}
  return {"mode": "train", **{k: v for k, v in settings.items() if k not in excluded}}


def row(name: str, run: RunDirectory) -> dict:
  """One member's line of the table, from its manifest."""
  manifest = run.read_manifest() if run.has_manifest() else {}
  constants = manifest.get("constants") or {}
  metrics = manifest.get("metrics") or {}
  settings = manifest.get("settings", {})
  return {
      "member": name, "status": manifest.get("status", "not started"),
      "alpha": constants.get("alpha"), "beta1": constants.get("beta1"),
      "beta2": constants.get("beta2"), "n_particles": settings.get("n_particles"),
      "gamma": manifest.get("g_lr"), "gamma_star": constants.get("gamma_star"),
      "gamma_ratio": constants.get("g_lr_ratio"), "fid": metrics.get("fid_mean"),
      "features": metrics.get("features"),
      "g_grad_norm": (manifest.get("final_metrics") or {}).get("g_grad_norm"),
      "steps": manifest.get("final_step"), "train_seconds": manifest.get("train_seconds"),
      "diverged_at": (manifest.get("diverged") or {}).get("step"),
  }


def plot(sweep_dir: str, rows: list[dict], runs: dict) -> str:
  """``fig1.png``: FID against gamma/gamma* (log x; diverged members marked at the top), and
  ``g_grad_norm`` over training for the members nearest gamma/gamma* = 1, 100 and the largest."""
  plt = summaries.pyplot()
  figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
  done = [r for r in rows if r["status"] == "completed" and r["fid"] is not None]
  diverged = [r for r in rows if r["status"] == "diverged"]
  left.scatter([r["gamma_ratio"] for r in done], [r["fid"] for r in done], c="tab:blue",
               label="completed")
  if diverged:
    top = max([r["fid"] for r in done], default=1.0) * 1.3
    left.scatter([r["gamma_ratio"] for r in diverged], [top] * len(diverged), marker="x",
                 c="tab:red", label="diverged (placed at the top)")
  left.axvline(1.0, color="gray", lw=0.8, ls="--")
  left.set_xscale("log")
  left.set_yscale("log")
  left.set_xlabel("gamma / gamma*")
  left.set_ylabel(f"FID ({done[0]['features'] if done else 'no member completed'})")
  left.set_title("Chu et al. Figure 1: FID against the learning rate")
  left.legend(fontsize=8)
  ratios = sorted((r for r in rows if r["gamma_ratio"]), key=lambda r: r["gamma_ratio"])
  shown = {min(ratios, key=lambda r, t=target: abs(math.log(r["gamma_ratio"] / t)))["member"]
           for target in (1.0, 100.0, ratios[-1]["gamma_ratio"])} if ratios else set()
  for r in ratios:
    if r["member"] not in shown:
      continue
    points = summaries.scalar_series(runs[r["member"]].logs, "g_grad_norm")
    if points:
      right.plot(*zip(*points), label=f"gamma/gamma* = {r['gamma_ratio']:.3g} ({r['status']})")
  right.set_yscale("log")
  right.set_xlabel("generator step")
  right.set_ylabel("g_grad_norm = |grad_theta J|")
  right.set_title("stationarity over training")
  right.legend(fontsize=8)
  return sweep.save_figure(figure, sweep_dir, "fig1.png")


def experiment(config: tfs_config.SweepConfig) -> sweep.Experiment:
  return sweep.Experiment(members=members(config), common=common_flags(config), row=row,
                          hparams=HPARAMS, metrics=METRICS,
                          figures=lambda sweep_dir, rows, runs: [plot(sweep_dir, rows, runs)])
