"""Sweeps on Ray (``--sweep_backend=ray``, tfsmooth.experiments.ray_backend) against the local
backend, on a Ray started on this machine: the same rows, a killed member resumed, refusals.
Skipped where Ray is not installed (``pip install 'tfsmooth[ray]'``; CI installs it)."""

import json
import os
import signal
import threading
import time

import pytest
from test_reliability import MOG  # pylint: disable=g-bad-import-order
from test_reliability import _wait_for_checkpoint  # pylint: disable=g-bad-import-order

from tfsmooth.app.rundir import RunDirectory
from tfsmooth.errors import UserError
from tfsmooth.experiments import nk_fig3
from tfsmooth.experiments import ray_backend
from tfsmooth.experiments import sweep

ray = pytest.importorskip("ray")  # ray_backend imports it only when a sweep runs on it


@pytest.fixture(scope="module")
def local_ray():
  """One Ray on this machine for the module (started once: a few seconds), 2 CPUs."""
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
  yield ray
  ray.shutdown()


def _toy_experiment():
  """Two toy runs and one the flags refuse (a member that fails)."""
  members = [sweep.Member("wgan_eta0.5", {"loss": "wgan", "eta": 0.5}),
             sweep.Member("minimax_eta0", {"loss": "minimax", "eta": 0.0}),
             sweep.Member("refused", {"loss": "indicator", "eta": 0.5})]
  return sweep.Experiment(members=members, common={"mode": "nk_toy"},
                          row=nk_fig3.row, hparams=("loss", "eta"), metrics=("max_real_part",),
                          figures=lambda sweep_dir, rows, runs: [])


def test_a_micro_sweep_on_ray_gives_the_rows_of_the_local_backend(tmp_path, local_ray):
  backend = ray_backend.RayBackend(member_cpus=1)
  local = sweep.run_experiment(_toy_experiment(), str(tmp_path / "local"), parallel=2)
  on_ray = sweep.run_experiment(_toy_experiment(), str(tmp_path / "ray"), backend=backend)
  assert "2 completed, 1 failed" in local and "2 completed, 1 failed" in on_ray
  rows = {name: json.loads((tmp_path / name / "results.json").read_text())
          for name in ("local", "ray")}
  assert rows["ray"] == rows["local"]
  assert {r["member"]: r["status"] for r in rows["ray"]} == {
      "wgan_eta0.5": "completed", "minimax_eta0": "completed", "refused": "failed"}
  log = (tmp_path / "ray" / "members" / "wgan_eta0.5.log").read_text()
  assert log.startswith("TF_NUM_INTRAOP_THREADS=1 ")  # its task's one CPU


def _member_pid(run_dir) -> int | None:
  """The pid of the process training in ``run_dir`` (its ``--run_dir=`` argument)."""
  wanted = f"--run_dir={run_dir}".encode()
  for pid in os.listdir("/proc"):
    if pid.isdigit():
      try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
          if wanted in f.read().split(b"\0"):
            return int(pid)
      except OSError:
        continue
  return None


def test_a_killed_member_is_retried_from_its_last_checkpoint(tmp_path, local_ray):
  """kill -9 of a member's process after its checkpoint 40: Ray runs its task again, which
  resumes the member from its latest checkpoint to the end. (That a resumed run ends in the
  weights of an uninterrupted one is tests/test_reliability.py's.)"""
  common = dict(arg.lstrip("-").split("=", 1) for arg in MOG)
  experiment = sweep.Experiment(
      members=[sweep.Member("mog", {"steps": 120})], common={"mode": "train", **common},
      row=lambda name, run: {"member": name, "status": run.read_manifest()["status"]},
      hparams=(), metrics=(), figures=lambda sweep_dir, rows, runs: [])
  run_dir = tmp_path / "members" / "mog"
  lines = []
  thread = threading.Thread(target=lambda: lines.append(sweep.run_experiment(
      experiment, str(tmp_path), backend=ray_backend.RayBackend(member_retries=2))))
  thread.start()
  deadline = time.time() + 120
  while _member_pid(run_dir) is None:
    assert time.time() < deadline and thread.is_alive(), "the member did not start"
    time.sleep(0.05)
  pid = _member_pid(run_dir)

  class Member:  # what _wait_for_checkpoint polls
    def poll(self):
      return None if os.path.exists(f"/proc/{pid}") else 0
  _wait_for_checkpoint(run_dir, 40, Member())
  os.kill(pid, signal.SIGKILL)
  thread.join(timeout=300)
  assert not thread.is_alive() and "1 completed" in lines[0]
  manifest = RunDirectory(str(run_dir)).read_manifest()
  assert manifest["status"] == "completed" and manifest["final_step"] == 120
  assert len(manifest["resumed"]) == 1 and 40 <= manifest["resumed"][0] < 120
  log = (tmp_path / "members" / "mog.log").read_text()
  assert "[tfsmooth] mog stopped from outside (exit -9, status running): retried" in log
  commands = [line for line in log.splitlines() if line.startswith("TF_NUM_INTRAOP_THREADS=")]
  assert len(commands) == 2 and commands[1].endswith("--resume")


def test_a_member_no_node_can_hold_is_refused_in_one_line(tmp_path, cli):
  """From the command line, on the Ray it starts: refused before anything is written."""
  result = cli("--mode=sweep", "--experiment=nk_fig3", f"--sweep_dir={tmp_path / 'sweep'}",
               "--sweep_backend=ray", "--member_gpus=1", timeout=120)
  assert result.returncode == 2
  assert result.stderr.splitlines()[-1] == (
      "tfsmooth: error: --member_gpus=1: no node of the Ray cluster has that many GPUs (the "
      "most on one node: 0)")
  assert not os.listdir(tmp_path)


MOUNTED = {"Alive": True, "NodeID": "a" * 56, "NodeManagerAddress": "10.0.0.1"}
NOT_MOUNTED = {"Alive": True, "NodeID": "b" * 56, "NodeManagerAddress": "10.0.0.2"}
DEAD = {"Alive": False, "NodeID": "c" * 56, "NodeManagerAddress": "10.0.0.3"}


class _Cluster:
  """Ray's API as ``check_shared_storage`` uses it, for a cluster of ``nodes``; a node other
  than ``MOUNTED`` does not mount the sweep directory: its probe runs here, on the path as that
  node would see it (nowhere). The probe on a real Ray runs in the other tests."""

  def __init__(self, nodes):
    self._nodes = nodes
    self.probed = []

  def nodes(self):
    return self._nodes

  def remote(self, function):
    cluster = self

    class Task:
      def __init__(self, node=None):
        self.node = node

      def options(self, scheduling_strategy=None, **unused):
        return Task(scheduling_strategy.node_id if scheduling_strategy else self.node)

      def remote(self, path):
        cluster.probed.append(self.node)
        return function(path if self.node == MOUNTED["NodeID"] else "/not/mounted/here" + path)
    return Task()

  def get(self, results):
    return results


def test_a_sweep_dir_a_node_does_not_see_is_refused(tmp_path):
  cluster = _Cluster([MOUNTED, NOT_MOUNTED, DEAD])
  with pytest.raises(UserError, match=r"^--sweep_dir=.*: not visible from Ray node\(s\) "
                     r"10\.0\.0\.2; with a Ray cluster the sweep directory must be on storage "
                     r"every node mounts at the same path"):
    ray_backend.check_shared_storage(cluster, str(tmp_path))
  assert cluster.probed == [MOUNTED["NodeID"], NOT_MOUNTED["NodeID"]]  # each alive node, on itself
  assert os.listdir(tmp_path) == []  # the token is removed
  ray_backend.check_shared_storage(_Cluster([MOUNTED, DEAD]), str(tmp_path))  # all see it
