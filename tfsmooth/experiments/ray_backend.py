"""Sweep members as Ray tasks (``--sweep_backend=ray``): one sweep over the CPUs and GPUs of a
Ray cluster, or of a Ray started on this machine (docs/distributed.md).

Each pending member is one Ray task asking for ``--member_cpus`` CPUs and ``--member_gpus``
GPUs; Ray starts it on a node with them free and, for GPUs, sets that task's
``CUDA_VISIBLE_DEVICES``. The task runs the member exactly as the local backend does (``python
-m tfsmooth.main`` with the member's flags, ``--resume`` when it has checkpoints, its output in
``members/NAME.log``), so run directories, ``results.json`` and the figures are the same.

Faults: a member whose process is killed (a signal: kill -9, the OOM killer, a preempted
node's SIGTERM) raises ``MemberKilled`` and Ray runs the task again, up to ``--member_retries``
times, from the member's last checkpoint; so does a task whose Ray worker or node dies (the
member's process dies with its worker, ``PR_SET_PDEATHSIG``, so no orphan keeps writing). A
member that fails by itself (a bug, a bad setting, a divergence) is not retried: it would fail
again. Either way the sweep goes on with the other members.

Storage: every node writes its members' run directories into ``--sweep_dir``, so the sweep
directory must be on storage every node mounts at the same path (NFS, a cluster file system, a
bucket mounted with FUSE). ``check_shared_storage`` proves it before any member starts: it
writes a token file and asks each node whether it sees it, and refuses the sweep with one line
naming the nodes that do not.
"""

import ctypes
import dataclasses
import logging
import math
import os
import signal
import time
import uuid

from tfsmooth import compat
from tfsmooth.app import rundir
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.errors import UserError
from tfsmooth.experiments import sweep

INSTALL_HINT = "pip install 'tfsmooth[ray]'"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class MemberKilled(Exception):
  """A member's process was stopped from outside before it finished; Ray retries its task,
  which resumes the member from its last checkpoint."""


# libc's prctl, looked up here in the parent: between fork and exec the child only calls it.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if os.name == "posix" else None


def _die_with_worker():
  """In the member's process (Linux): be killed when the Ray worker that started it dies."""
  _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def train_member(run_path: str, common: dict, member: sweep.Member, threads: int) -> int:
  """The body of a member's Ray task: runs the member to its end; returns its exit status, or
  raises ``MemberKilled`` when it was stopped from outside (Ray then retries)."""
  run = RunDirectory(run_path)
  process = sweep.start_member(run, common, member, threads,
                               preexec_fn=_die_with_worker if _prctl else None)
  returncode = process.wait()
  status = sweep.run_status(run)
  if returncode < 0 or (returncode and status == "interrupted"):
    with open(run.path + ".log", "a", encoding="utf-8") as log:
      log.write(f"[tfsmooth] {member.name} stopped from outside (exit {returncode}, status "
                f"{status}): retried from its last checkpoint\n")
    raise MemberKilled(f"{member.name}: exit {returncode}, status {status}")
  return returncode


def _import_ray():
  try:
    import ray  # pylint: disable=g-import-not-at-top  (an optional extra)
  except ImportError:
    raise UserError(f"--sweep_backend=ray: Ray is not installed ({INSTALL_HINT})") from None
  return ray


@dataclasses.dataclass
class RayBackend:
  """Runs a sweep's members as Ray tasks (the module docstring).

  Attributes:
    address: a running cluster (``ray://HOST:10001``, ``HOST:6379`` or ``auto``); empty: start a
      Ray on this machine with all its CPUs (and GPUs), stopped when the sweep ends.
    member_cpus: CPUs a member's task asks for; also its TensorFlow threads (rounded up).
    member_gpus: GPUs a member's task asks for (fractions share a GPU).
    member_retries: how often a killed member is run again.
  """

  address: str = ""
  member_cpus: float = 1.0
  member_gpus: float = 0.0
  member_retries: int = 3
  _started: bool = dataclasses.field(default=False, repr=False)

  def describe(self) -> str:
    where = f"Ray cluster {self.address}" if self.address else "a local Ray"
    return (f"Ray tasks on {where}, {self.member_cpus:g} CPU and {self.member_gpus:g} GPU "
            f"each, up to {self.member_retries} retries of a killed member")

  def prepare(self, sweep_dir: str) -> None:
    """Connects to the cluster (or starts a local Ray) and refuses, in one line, what would
    fail later: a member no node can hold, a sweep directory a node does not see. Writes
    nothing but the storage check's token, which it removes."""
    ray = self._connect()
    try:
      self.check_resources(ray)
      check_shared_storage(ray, sweep_dir)
    except UserError:
      self._disconnect()
      raise

  def _connect(self):
    ray = _import_ray()
    if not ray.is_initialized():
      options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
      if self.address:
        ray.init(address=self.address, **options)
      else:
        ray.init(num_cpus=sweep.cpu_count(), **options)
      self._started = True
    return ray

  def _disconnect(self):
    if self._started:  # a Ray this backend started (or connected to); not the caller's own
      _import_ray().shutdown()
      self._started = False

  def check_resources(self, ray) -> None:
    """Refuses (one line) a member no node can hold, which Ray would wait for forever."""
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    for flag, key, wanted in (("member_cpus", "CPU", self.member_cpus),
                              ("member_gpus", "GPU", self.member_gpus)):
      most = max((node.get(key, 0.0) for node in nodes), default=0.0)
      if wanted > most:
        raise UserError(f"--{flag}={wanted:g}: no node of the Ray cluster has that many "
                        f"{key}s (the most on one node: {most:g})")

  def run(self, runs: dict, common: dict, pending: list) -> dict:
    """Runs the ``pending`` members (after ``prepare``); returns ``{name: exit status}`` (1 for
    a member whose task failed for good)."""
    ray = self._connect()
    try:
      task = ray.remote(train_member).options(
          num_cpus=self.member_cpus, num_gpus=self.member_gpus, max_retries=self.member_retries,
          retry_exceptions=[MemberKilled])
      threads = max(1, math.ceil(self.member_cpus))
      waiting = {task.remote(runs[m.name].path, common, m, threads): m.name for m in pending}
      exits, started = {}, time.time()
      while waiting:
        done, _ = ray.wait(list(waiting), num_returns=1)
        name = waiting.pop(done[0])
        try:
          exits[name] = ray.get(done[0])
        except ray.exceptions.RayError as error:  # its retries spent: recorded, go on
          compat.progress(f"sweep: {name} gave up after {self.member_retries} retries: "
                          f"{str(error).splitlines()[-1]}")
          exits[name] = 1
        sweep.report_finished(runs, name, exits[name], started)
      return exits
    finally:
      self._disconnect()


def _sees(path: str) -> bool:
  """On a node: whether it sees ``path``."""
  return os.path.exists(path)


def check_shared_storage(ray, sweep_dir: str) -> None:
  """Refuses (one line) a sweep directory that a node of the cluster does not see: a token file
  written there (or, before it exists, where it will be created) must be visible at the same
  path from every alive node."""
  from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # pylint: disable=g-import-not-at-top

  token = os.path.join(rundir.existing_ancestor(sweep_dir),
                       f".ray-storage-check-{uuid.uuid4().hex}")
  with open(token, "w", encoding="utf-8") as f:
    f.write("tfsmooth: can every Ray node see this sweep directory?\n")
  try:
    sees = ray.remote(_sees)
    nodes = [node for node in ray.nodes() if node["Alive"]]
    checks = [sees.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
        node["NodeID"], soft=False)).remote(token) for node in nodes]
    blind = [node["NodeManagerAddress"] for node, seen in zip(nodes, ray.get(checks))
             if not seen]
  finally:
    os.remove(token)
  if blind:
    raise UserError(
        f"--sweep_dir={sweep_dir}: not visible from Ray node(s) {', '.join(blind)}; with a Ray "
        "cluster the sweep directory must be on storage every node mounts at the same path "
        "(NFS, a cluster file system; docs/distributed.md)")
