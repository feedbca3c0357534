"""The sweep runner every multi-run experiment shares: members (flag overrides x seeds), each a
normal run directory, run one after another or ``parallel`` at once, resumable, collected into
one table.

Layout of a sweep directory::

    sweep.json             the common flags and every member's flags (what the sweep is)
    members/NAME/          each member's run directory (tfsmooth.rundir), and NAME.log its output
    results.json, .csv     one row per member, from its manifest (``collect``)
    hparams/               TensorBoard HParams: every member's swept settings against its metrics

A member whose run completed is skipped, one that was interrupted (it has checkpoints) is
resumed, one that diverged is recorded as diverged and not rerun, and the sweep goes on when a
member fails; so running the same sweep again continues where it stopped.
"""

import csv
import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

from tfsmooth import console
from tfsmooth.rundir import RunDirectory

SWEEP_FILE = "sweep.json"
FINAL_STATUSES = ("completed", "diverged")  # not run again


@dataclasses.dataclass(frozen=True)
class Member:
  """One run of a sweep: its directory name and its flags (``{flag name: value}``) on top of the
  sweep's common flags."""

  name: str
  settings: dict


def flag_args(settings: dict) -> list[str]:
  """``{name: value}`` -> ``--name=value`` arguments (lists comma-joined; None left out)."""
  def text(value) -> str:
    if isinstance(value, (list, tuple)):
      return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)
  return [f"--{name}={text(value)}" for name, value in settings.items() if value is not None]


def grid(axes: dict, seeds=(0,)) -> list[Member]:
  """Every combination of ``axes`` (``{flag: [values]}``) for every seed."""
  names = list(axes)
  members = []
  for values in itertools.product(*axes.values()):
    for seed in seeds:
      settings = {**dict(zip(names, values)), "seed": seed}
      label = "_".join(f"{n}{v}" for n, v in settings.items())
      members.append(Member(label, settings))
  return members


def log_uniform_draws(ranges: dict, count: int, seed: int, integer=()) -> list[Member]:
  """``count`` members whose settings are drawn log-uniformly from ``ranges``
  (``{flag: (low, high)}``), reproducibly from ``seed``; the flags in ``integer`` are rounded.
  Member ``i`` trains with ``--seed=i``."""
  rng = np.random.default_rng(seed)
  members = []
  for index in range(count):
    settings = {}
    for name, (low, high) in ranges.items():
      value = float(np.exp(rng.uniform(math.log(low), math.log(high))))
      settings[name] = round(value) if name in integer else float(f"{value:.4g}")
    settings["seed"] = index
    members.append(Member(f"member_{index:03d}", settings))
  return members


def _status(run: RunDirectory) -> str | None:
  return run.read_manifest().get("status") if run.has_manifest() else None


def run(sweep_dir: str, common: dict, members: list[Member], parallel: int = 1) -> dict:
  """Runs the members not yet finished (``python -m tfsmooth.main`` each, in its own process);
  returns ``{name: RunDirectory}`` of every member. ``common`` holds the flags all members share
  (as ``{flag: value}``)."""
  os.makedirs(os.path.join(sweep_dir, "members"), exist_ok=True)
  spec = {"common": common, "members": {m.name: m.settings for m in members}}
  with open(os.path.join(sweep_dir, SWEEP_FILE), "w", encoding="utf-8") as f:
    json.dump(spec, f, indent=2)
  runs = {m.name: RunDirectory(os.path.join(sweep_dir, "members", m.name)) for m in members}
  pending = [m for m in members if _status(runs[m.name]) not in FINAL_STATUSES]
  console.progress(f"sweep {sweep_dir}: {len(members)} members, {len(members) - len(pending)} "
                   f"finished, {len(pending)} to run ({parallel} at a time)")
  running = []
  started = time.time()
  while pending or running:
    while pending and len(running) < parallel:
      member = pending.pop(0)
      running.append((member, _start(runs[member.name], common, member)))
    time.sleep(0.2)
    for member, process in list(running):
      if process.poll() is not None:
        running.remove((member, process))
        status = _status(runs[member.name]) or "failed"
        if process.returncode and status == "running":
          status = "failed"
        console.progress(f"sweep: {member.name} {status} (exit {process.returncode}); "
                         f"{sum(_status(r) in FINAL_STATUSES for r in runs.values())}/"
                         f"{len(members)} done, {time.time() - started:.0f} s")
  return runs


def _start(run: RunDirectory, common: dict, member: Member) -> subprocess.Popen:
  resume = ["--resume"] if os.path.isdir(run.checkpoints) and run.has_manifest() else []
  command = [sys.executable, "-m", "tfsmooth.main", *flag_args({**common, **member.settings}),
             f"--run_dir={run.path}", *resume]
  with open(run.path + ".log", "a", encoding="utf-8") as log:
    log.write(" ".join(command[1:]) + "\n")
    log.flush()
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def write_results(sweep_dir: str, rows: list[dict]) -> tuple[str, str]:
  """``results.json`` and ``results.csv`` (one row per member, the union of the rows' columns)."""
  json_path = os.path.join(sweep_dir, "results.json")
  with open(json_path, "w", encoding="utf-8") as f:
    json.dump(rows, f, indent=2)
  columns = list(dict.fromkeys(key for row in rows for key in row))
  csv_path = os.path.join(sweep_dir, "results.csv")
  with open(csv_path, "w", encoding="utf-8", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  return json_path, csv_path


def write_hparams(sweep_dir: str, rows: list[dict], hparams: list[str], metrics: list[str]) -> str:
  """TensorBoard HParams under ``sweep_dir/hparams``: one session per member with its ``hparams``
  columns as settings and its ``metrics`` columns as results (``tensorboard --logdir``)."""
  from tensorboard.plugins.hparams import api as hp  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  root = os.path.join(sweep_dir, "hparams")
  with tf.summary.create_file_writer(root).as_default():
    hp.hparams_config(hparams=[hp.HParam(name) for name in hparams],
                      metrics=[hp.Metric(name) for name in metrics])
  for row in rows:
    with tf.summary.create_file_writer(os.path.join(root, row["member"])).as_default():
      hp.hparams({name: row[name] for name in hparams if row.get(name) is not None},
                 trial_id=row["member"])
      for name in metrics:
        if isinstance(row.get(name), (int, float)) and math.isfinite(row[name]):
          tf.summary.scalar(name, row[name], step=0)
  return root

