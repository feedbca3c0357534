"""The sweep runner every multi-run experiment shares: members (flag overrides x seeds), each a
normal run directory, run one after another or ``parallel`` at once, resumable, collected into
one table.

An experiment is an ``Experiment``: its members, the flags they share, how a member's run
directory becomes a row of the table, and its figures; ``run_experiment`` does the rest (the
experiments in this package and how to add one: docs/architecture.md).

Layout of a sweep directory::

    sweep.json             the common flags and every member's flags (what the sweep is)
    members/NAME/          each member's run directory (tfsmooth.app.rundir); NAME.log: output
    results.json, .csv     one row per member, from its manifest (``run_experiment``)
    hparams/               TensorBoard HParams: every member's swept settings against its metrics
    figures/               TensorBoard images of the experiment's figures (also PNG files here)

A member whose run completed is skipped, one that was interrupted (it has checkpoints) is
resumed, one that diverged is recorded as diverged and not rerun, and the sweep goes on when a
member fails; so running the same sweep again continues where it stopped.
"""

from collections.abc import Callable
import csv
import dataclasses
import itertools
import math
import os
import shutil
import subprocess
import sys
import time

import numpy as np

from tfsmooth import compat
from tfsmooth.app import rundir
from tfsmooth.app import summaries
from tfsmooth.app.rundir import RunDirectory

SWEEP_FILE = "sweep.json"
FIGURE_LOGS = "figures"  # TensorBoard logs of the figures
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


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A multi-run experiment: what ``run_experiment`` needs to run it and write its results.

  Attributes:
    members: the runs.
    common: the flags every member shares (``{flag: value}``, before the member's own).
    row: ``(member name, its RunDirectory) -> {column: value}``, read from the run directory.
    hparams: the columns TensorBoard's HParams view shows as settings.
    metrics: the columns it shows as results.
    figures: ``(sweep_dir, rows, runs) -> [paths written]``: the experiment's own figures and
      tables, drawn from the rows and the members' run directories.
  """

  members: list[Member]
  common: dict
  row: Callable[[str, RunDirectory], dict]
  hparams: tuple[str, ...]
  metrics: tuple[str, ...]
  figures: Callable[[str, list[dict], dict], list[str]]


def grid(axes: dict, seeds=(0,), name: Callable[[dict], str] | None = None) -> list[Member]:
  """Every combination of ``axes`` (``{flag: [values]}``) for every seed (``seeds=None``: no
  ``--seed``). A member's directory is ``name(settings)``, by default the settings joined."""
  names = list(axes)
  members = []
  for values in itertools.product(*axes.values()):
    for seed in (None,) if seeds is None else seeds:
      settings = dict(zip(names, values))
      if seed is not None:
        settings["seed"] = seed
      label = name(settings) if name else "_".join(f"{n}{v}" for n, v in settings.items())
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


def cpu_count() -> int:
  """The CPUs this process may run on."""
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def member_threads(parallel: int) -> int:
  """TensorFlow threads per member when ``parallel`` members train at once: an equal share of
  the CPUs, so members do not contend for the same cores."""
  return max(1, cpu_count() // parallel)


def run_status(run: RunDirectory) -> str | None:
  """The status its manifest records (None before it has one)."""
  return run.read_manifest().get("status") if run.has_manifest() else None


def visible_gpus() -> list[str]:
  """The GPUs a local sweep hands out: those of ``CUDA_VISIBLE_DEVICES`` when it is set, else
  those ``nvidia-smi`` lists; none on a machine without NVIDIA's driver."""
  if "CUDA_VISIBLE_DEVICES" in os.environ:
    return [g.strip() for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",")
            if g.strip() and g.strip() != "-1"]
  if shutil.which("nvidia-smi") is None:
    return []
  try:
    listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                            capture_output=True, text=True, timeout=30, check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return []
  return [line.strip() for line in listed.splitlines() if line.strip()]


def gpu_of_slot(slot: int, gpus: list[str]) -> str | None:
  """The GPU of the ``slot``-th member running at once: its own while there are enough, shared
  round-robin beyond."""
  return gpus[slot % len(gpus)] if gpus else None


def member_status(run: RunDirectory, returncode: int) -> str:
  """A member's status after its process ended: its manifest's, ``failed`` if it has none or
  crashed while its manifest still said running."""
  status = run_status(run) or "failed"
  return "failed" if returncode and status == "running" else status


def report_finished(runs: dict, name: str, returncode: int, started: float) -> None:
  """The progress line of a member that ended, with the sweep's count so far."""
  compat.progress(f"sweep: {name} {member_status(runs[name], returncode)} (exit {returncode}); "
                  f"{sum(run_status(r) in FINAL_STATUSES for r in runs.values())}/{len(runs)} "
                  f"done, {time.time() - started:.0f} s")


def run(sweep_dir: str, common: dict, members: list[Member], parallel: int = 1,
        backend=None) -> tuple[dict, dict]:
  """Runs the members not yet finished (``python -m tfsmooth.main`` each, in its own process):
  ``parallel`` at once on this machine, or as ``backend`` schedules them (a
  ``tfsmooth.experiments.ray_backend.RayBackend``). ``common`` holds the flags all members share
  (as ``{flag: value}``). Returns ``{name: RunDirectory}`` of every member and ``{name: exit
  status}`` of those run now."""
  os.makedirs(os.path.join(sweep_dir, "members"), exist_ok=True)
  spec = {"common": common, "members": {m.name: m.settings for m in members}}
  rundir.write_json(os.path.join(sweep_dir, SWEEP_FILE), spec, sort_keys=False)
  runs = {m.name: RunDirectory(os.path.join(sweep_dir, "members", m.name)) for m in members}
  pending = [m for m in members if run_status(runs[m.name]) not in FINAL_STATUSES]
  if backend is not None:
    where = backend.describe()
  else:
    parallel = max(1, min(parallel, len(pending)))  # one member left to run gets every thread
    threads = member_threads(parallel)
    gpus = visible_gpus()
    assigned = (", ".join(f"slot {slot} GPU {gpu_of_slot(slot, gpus)}"
                          for slot in range(parallel)) if gpus else "no GPU")
    where = (f"{parallel} at a time, {threads} of the {cpu_count()} CPU threads each; "
             f"{assigned}")
  compat.progress(f"sweep {sweep_dir}: {len(members)} members, {len(members) - len(pending)} "
                  f"finished, {len(pending)} to run ({where})")
  if backend is not None:
    return runs, backend.run(runs, common, pending)
  running = []  # (member, process, slot)
  free_slots = list(range(parallel))
  exits = {}
  started = time.time()
  while pending or running:
    while pending and free_slots:
      member, slot = pending.pop(0), free_slots.pop(0)
      running.append((member, start_member(runs[member.name], common, member, threads,
                                           gpu_of_slot(slot, gpus)), slot))
    time.sleep(0.2)
    for entry in list(running):
      member, process, slot = entry
      if process.poll() is not None:
        running.remove(entry)
        free_slots = sorted([*free_slots, slot])
        exits[member.name] = process.returncode
        report_finished(runs, member.name, process.returncode, started)
  return runs, exits


def member_command(run: RunDirectory, common: dict, member: Member) -> list[str]:
  """The member's ``python -m tfsmooth.main`` command; ``--resume`` when it has checkpoints
  (decided when it starts, so a retried member continues where it stopped)."""
  resume = ["--resume"] if os.path.isdir(run.checkpoints) and run.has_manifest() else []
  return [sys.executable, "-m", "tfsmooth.main", *flag_args({**common, **member.settings}),
          f"--run_dir={run.path}", *resume]


def start_member(run: RunDirectory, common: dict, member: Member, threads: int,
                 gpu: str | None = None, preexec_fn=None) -> subprocess.Popen:
  """Starts the member's process, its output appended to ``NAME.log``, with ``threads``
  TensorFlow threads and, when ``gpu`` is given, that GPU alone (``CUDA_VISIBLE_DEVICES``)."""
  command = member_command(run, common, member)
  # TensorFlow's thread pools (read when it starts). Measured: runs/chu_default.flags for 20
  # steps ends in the same weights with 1 and 2 threads.
  env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads),
         "TF_NUM_INTEROP_THREADS": str(threads)}
  assigned = f"TF_NUM_INTRAOP_THREADS={threads} "
  if gpu is not None:
    env["CUDA_VISIBLE_DEVICES"] = gpu
    assigned += f"CUDA_VISIBLE_DEVICES={gpu} "
  with open(run.path + ".log", "a", encoding="utf-8") as log:
    log.write(assigned + " ".join(command[1:]) + "\n")
    log.flush()
    # preexec_fn (ray_backend's) makes one prepared libc call in the child, taking no lock.
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                            preexec_fn=preexec_fn)  # noqa: PLW1509


def run_experiment(experiment: Experiment, sweep_dir: str, parallel: int = 1,
                   backend=None) -> str:
  """Runs (or continues) ``experiment`` in ``sweep_dir`` (on ``backend``, see ``run``); writes
  ``results.json`` / ``.csv``, TensorBoard HParams and the experiment's figures; returns a
  summary line."""
  rundir.check_writable(sweep_dir, "--sweep_dir")
  if backend is not None:
    backend.prepare(sweep_dir)  # its refusals come before anything is written
  with rundir.locked(sweep_dir, "--sweep_dir"):  # one sweep at a time in a directory
    runs, exits = run(sweep_dir, experiment.common, experiment.members, parallel, backend)
    rows = [experiment.row(name, run_dir) for name, run_dir in runs.items()]
    for row in rows:  # a member that crashed left its manifest "running", or none
      if exits.get(row["member"]) and row["status"] not in (*FINAL_STATUSES, "interrupted"):
        row["status"] = "failed"
    written = [*write_results(sweep_dir, rows),
               write_hparams(sweep_dir, rows, experiment.hparams, experiment.metrics),
               *experiment.figures(sweep_dir, rows, runs)]
  counts = {}
  for row in rows:
    counts[row["status"]] = counts.get(row["status"], 0) + 1
  return (f"sweep {sweep_dir}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) +
          f"; wrote {', '.join(written)}")


def write_results(sweep_dir: str, rows: list[dict]) -> tuple[str, str]:
  """``results.json`` and ``results.csv`` (one row per member, the union of the rows' columns)."""
  json_path = os.path.join(sweep_dir, "results.json")
  rundir.write_json(json_path, rows, sort_keys=False)
  columns = list(dict.fromkeys(key for row in rows for key in row))
  csv_path = os.path.join(sweep_dir, "results.csv")
  with open(csv_path, "w", encoding="utf-8", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
  return json_path, csv_path


def write_hparams(sweep_dir: str, rows: list[dict], hparams, metrics) -> str:
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


def save_figure(figure, sweep_dir: str, name: str) -> str:
  """Writes ``figure`` to ``sweep_dir/name`` and as an image in ``sweep_dir/figures`` (TensorBoard);
  returns the path."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  writer = tf.summary.create_file_writer(os.path.join(sweep_dir, FIGURE_LOGS))
  return summaries.save_figure(figure, os.path.join(sweep_dir, name), writer)
