"""Chu, Minami, Fukumizu, Section 7 / Figure 1: FID against gamma/gamma* over random settings.

    python -m tfsmooth.main --flagfile=runs/chu_fig1.flags --sweep_dir=DIR

Each member trains the particle generator against the SN discriminator with the truncated RKHS
penalty (the training flags of the flagfile), with alpha, lambda, sigma, n and gamma/gamma* drawn
log-uniformly from the ``--sweep_*`` ranges (seeded by ``--sweep_seed``); gamma* comes from
Theorem 1 for each member's built discriminator (tfsmooth.theory, via ``--g_lr_ratio``). Writes
``results.json`` / ``results.csv`` (per member: alpha, beta1, beta2, n, gamma, gamma*,
gamma/gamma*, final FID and its features, final ``g_grad_norm``, status), ``fig1.png``,
``shape.json`` (the best-FID band, FID's rank correlation with gamma/gamma* above 100, the
median FID per decade) and TensorBoard HParams, all under the sweep directory.

``--sweep_g_lr_ratios`` replaces the random draws by one member per listed gamma/gamma* at fixed
other settings (``runs/chu_fig1_long.flags``: the long runs whose ``g_grad_norm`` curves test
Theorem 1's stationarity).
"""

import dataclasses
import math
import os

import numpy as np
from scipy import stats

from tfsmooth.app import config as tfs_config
from tfsmooth.app import rundir
from tfsmooth.app import summaries
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.experiments import sweep

# --sweep_<flag> -> the member flag it draws.
RANGES = ("alpha", "penalty_lambda", "kernel_sigma", "n_particles", "g_lr_ratio")
HPARAMS = ("alpha", "beta1", "beta2", "n_particles", "gamma", "gamma_star", "gamma_ratio")
METRICS = ("fid", "g_grad_norm")
CURVES_SHOWN = 6  # a sweep of at most this many members shows every member's g_grad_norm
BEST_SHARE = 0.1  # the best-FID band: the best tenth of the members with a FID (at least 3)
SHAPE_FILE = "shape.json"


def members(config: tfs_config.SweepConfig) -> list[sweep.Member]:
  """Figure 1's random draws from the ``sweep_*`` ranges; or, given ``--sweep_g_lr_ratios``,
  one member per listed gamma/gamma* at the flags' own other settings (the long runs)."""
  if config.sweep_g_lr_ratios:
    return [sweep.Member(f"ratio_{ratio:g}", {"g_lr_ratio": ratio})
            for ratio in config.sweep_g_lr_ratios]
  ranges = {name: getattr(config, f"sweep_{name}") for name in RANGES}
  return sweep.log_uniform_draws(ranges, config.sweep_members, config.sweep_seed,
                                 integer=("n_particles",))


def common_flags(config: tfs_config.SweepConfig) -> dict:
  """The training flags every member shares: the sweep's own, less what a member sets."""
  settings = tfs_config.settings(dataclasses.replace(config.train, run_dir="unused"))
  drawn = ("g_lr_ratio",) if config.sweep_g_lr_ratios else ("seed", *RANGES)
  excluded = {"run_dir", "resume", *drawn}
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


def curve_rows(rows: list[dict]) -> list[dict]:
  """The members whose ``g_grad_norm`` curve the figure shows, by gamma/gamma*: every one in a
  sweep of at most ``CURVES_SHOWN`` (the long runs), else those nearest 1, 100 and the largest."""
  ratios = sorted((r for r in rows if r["gamma_ratio"]), key=lambda r: r["gamma_ratio"])
  if len(ratios) <= CURVES_SHOWN:
    return ratios
  shown = {min(ratios, key=lambda r, t=target: abs(math.log(r["gamma_ratio"] / t)))["member"]
           for target in (1.0, 100.0, ratios[-1]["gamma_ratio"])}
  return [r for r in ratios if r["member"] in shown]


def plot(sweep_dir: str, rows: list[dict], runs: dict) -> str:
  """``fig1.png``: FID against gamma/gamma* (log x; diverged members marked at the top), and
  ``g_grad_norm`` over training for the members nearest gamma/gamma* = 1, 100 and the largest
  (for every member in a sweep of at most ``CURVES_SHOWN``)."""
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
  for r in curve_rows(rows):
    points = summaries.scalar_series(runs[r["member"]].logs, "g_grad_norm")
    if points:
      right.plot(*zip(*points), label=f"gamma/gamma* = {r['gamma_ratio']:.3g} ({r['status']})")
  right.set_yscale("log")
  right.set_xlabel("generator step")
  right.set_ylabel("g_grad_norm = |grad_theta J|")
  right.set_title("stationarity over training")
  right.legend(fontsize=8)
  return sweep.save_figure(figure, sweep_dir, "fig1.png")


def _fid(row: dict) -> float | None:
  """A completed member's FID; None if it has none (diverged, failed, not run) or a non-finite
  one."""
  fid = row["fid"] if row["status"] == "completed" else None
  return fid if fid is not None and math.isfinite(fid) else None


def _json_number(value: float) -> float | None:
  return None if math.isnan(value) else float(value)  # JSON has no NaN


def shape(rows: list[dict]) -> dict:
  """Figure 1's shape in numbers: the gamma/gamma* range of the best FIDs (the best
  ``BEST_SHARE`` of the members with a FID, rounded up, at least 3 or all if fewer), the Spearman
  rank correlation of FID with gamma/gamma* above 100 (the paper: steadily worse there; a member
  that diverged, or ended with a non-finite FID, ranks worst; None with fewer than 3 members
  there or a constant FID), and per decade of gamma/gamma* the members, the diverged and the
  median FID."""
  done = sorted((r for r in rows if _fid(r) is not None), key=_fid)
  best = done[:max(3, math.ceil(BEST_SHARE * len(done)))]
  high = [r for r in rows if (r["gamma_ratio"] or 0) > 100 and (
      _fid(r) is not None or r["status"] in sweep.FINAL_STATUSES)]
  fids = [_fid(r) if _fid(r) is not None else math.inf for r in high]
  rho = p_value = math.nan
  if len(high) >= 3 and len(set(fids)) > 1:
    rho, p_value = stats.spearmanr([r["gamma_ratio"] for r in high], fids)
  by_decade = {}
  for r in rows:
    if r["gamma_ratio"]:
      by_decade.setdefault(math.floor(math.log10(r["gamma_ratio"])), []).append(r)
  decades = []
  for low in range(min(by_decade, default=0), max(by_decade, default=-1) + 1):
    inside = by_decade.get(low, [])
    fids_inside = [_fid(r) for r in inside if _fid(r) is not None]
    decades.append({"from": 10.0**low, "to": 10.0**(low + 1), "members": len(inside),
                    "diverged": sum(r["status"] == "diverged" for r in inside),
                    "median_fid": float(np.median(fids_inside)) if fids_inside else None})
  return {
      "completed": len(done), "members": len(rows),
      "best_band": {"members": [r["member"] for r in best],
                    "gamma_ratio": [min(r["gamma_ratio"] for r in best),
                                    max(r["gamma_ratio"] for r in best)] if best else None,
                    "fid": [r["fid"] for r in best]},
      "above_100": {"members": len(high), "spearman_rho": _json_number(rho),
                    "p_value": _json_number(p_value)},
      "decades": decades,
  }


def write_shape(sweep_dir: str, rows: list[dict]) -> str:
  path = os.path.join(sweep_dir, SHAPE_FILE)
  rundir.write_json(path, shape(rows), sort_keys=False)
  return path


def experiment(config: tfs_config.SweepConfig) -> sweep.Experiment:
  return sweep.Experiment(members=members(config), common=common_flags(config), row=row,
                          hparams=HPARAMS, metrics=METRICS,
                          figures=lambda sweep_dir, rows, runs: [plot(sweep_dir, rows, runs),
                                                                 write_shape(sweep_dir, rows)])
