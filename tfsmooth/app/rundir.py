"""The run-directory format: every path, the manifest and the start/resume rules, in one place.
Training writes a run directory through this module; evaluation, the comparison drivers and the
tests read it through this module.

Layout of a run directory::

    manifest.json        config (nested) and settings (flat, by flag name), versions, status
                         (running / completed / diverged / interrupted), constants, metrics
    train/               TensorBoard event files (scalars every --log_every, every figure of
                         samples/ as an image, the settings as text)
    eval/                TensorBoard scalars of --mode=eval
    metrics.json         the last evaluation (FID/KID or mode coverage)
    samples/step_N.png   generator samples (image grid, or a scatter plot for 2-D data)
    samples/step_N.npy   2-D data: the samples themselves, and for mixtures of Gaussians
    samples/mode_coverage.jsonl   modes covered / high-quality fraction at every sample step and
    samples/over_iterations.png   a row of snapshots over training (Nagarajan-Kolter Figure 4)
    checkpoints/         tf.train.Checkpoint of both networks, both optimisers and the step
    export/generator     SavedModel (tfsmooth.app.export): sample(num: int32, seed: int64)
                         -> {"samples"}, also its serving_default signature
    export/discriminator SavedModel (tfsmooth.app.export): score(samples) -> {"score": D(x)}

A run of Nagarajan and Kolter's toy system (``--mode=nk_toy``, no training) has a manifest,
``field.npz`` (the update field on a grid and gradient-descent paths), ``streamlines.png``, and
``train/`` with that figure and its eigenvalues for TensorBoard.

Imports no TensorFlow until a checkpoint is looked up.
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import shutil
import socket

from tfsmooth import compat
from tfsmooth.app import config as tfs_config
from tfsmooth.errors import UserError

tf = compat.LazyModule("tensorflow")

MANIFEST = "manifest.json"
COMPLETED = "completed"
LOCK = ".lock"  # held (fcntl) by the process writing the directory; its text names that process
DAMAGED = "damaged"  # checkpoints/damaged/: checkpoints --resume found unreadable, set aside
# What a full or vanished disk raises as OSError (errno) and inside TensorFlow (its message).
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)
DISK_MESSAGES = ("No space left on device", "Disk quota exceeded", "Read-only file system",
                 "Permission denied")


def existing_ancestor(path: str) -> str:
  """``path`` (absolute) if it exists, else its nearest ancestor that does: where it would be
  created."""
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  return existing


def check_writable(path: str, flag: str) -> None:
  """Refuses (``UserError``, naming ``flag``) a directory that cannot be created or written: a
  path through a regular file, a read-only filesystem, no permission. Creates nothing."""
  existing = existing_ancestor(path)
  if not os.path.isdir(existing):
    raise UserError(f"{flag}={path}: {existing} is a file, not a directory")
  if os.statvfs(existing).f_flag & os.ST_RDONLY:
    raise UserError(f"{flag}={path}: {existing} is on a read-only filesystem")
  if not os.access(existing, os.W_OK | os.X_OK):
    raise UserError(f"{flag}={path}: no permission to write in {existing}")


@contextlib.contextmanager
def locked(path: str, flag: str):
  """Holds ``path``'s exclusive lock for the life of the block: a second process that wants to
  write there is refused in one line naming the holder. The lock is an ``fcntl`` lock on
  ``path/.lock``, which the kernel drops when its process ends however it ends (``kill -9``
  too), so a dead process never leaves a stale lock. A directory this call created is removed
  again if the block fails before writing anything else into it."""
  created = not os.path.isdir(path)
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, LOCK), "a+", encoding="utf-8") as handle:  # closing unlocks
    try:
      fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      handle.seek(0)
      holder = handle.read().strip() or "another process"
      raise UserError(f"{flag}={path} is in use by {holder}; wait for it to end or choose "
                      "another directory") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} on {socket.gethostname()} since "
                 f"{datetime.datetime.now().isoformat(timespec='seconds')}\n")
    handle.flush()
    try:
      yield
    except BaseException:
      if created and os.listdir(path) == [LOCK]:  # refused before it wrote anything
        shutil.rmtree(path, ignore_errors=True)
      raise


def is_disk_error(error: BaseException) -> bool:
  """Whether ``error`` says the disk is full, read-only or gone (not a bug in tfsmooth)."""
  if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
    return True
  return isinstance(error, tf.errors.OpError) and any(m in str(error) for m in DISK_MESSAGES)


class RunDirectory:
  """Paths, manifest and saved samples of one run."""

  def __init__(self, path: str):
    if not path:
      raise UserError("no run directory given (--run_dir, TrainConfig.run_dir)")
    self.path = path
    self.manifest_path = os.path.join(path, MANIFEST)
    self.checkpoints = os.path.join(path, "checkpoints")
    self.samples = os.path.join(path, "samples")
    self.logs = os.path.join(path, "train")
    self.eval_logs = os.path.join(path, "eval")
    self.metrics_path = os.path.join(path, "metrics.json")
    self.coverage_path = os.path.join(self.samples, "mode_coverage.jsonl")
    self.snapshots_path = os.path.join(self.samples, "over_iterations.png")
    self.generator_export = os.path.join(path, "export", "generator")
    self.discriminator_export = os.path.join(path, "export", "discriminator")
    self.toy_field_path = os.path.join(path, "field.npz")
    self.toy_figure_path = os.path.join(path, "streamlines.png")

  def sample_path(self, step: int, extension: str) -> str:
    """``samples/step_NNNNNN.<extension>`` (``png`` or ``npy``)."""
    return os.path.join(self.samples, f"step_{step:06d}.{extension}")

  def sample_steps(self) -> list[int]:
    """The steps whose 2-D samples were saved (``samples/step_N.npy``), in order."""
    if not os.path.isdir(self.samples):
      return []
    return sorted(int(name[len("step_"):-len(".npy")]) for name in os.listdir(self.samples)
                  if name.startswith("step_") and name.endswith(".npy"))

  # ------------------------------------------------------------------------------------------
  # Manifest

  def has_manifest(self) -> bool:
    return os.path.exists(self.manifest_path)

  def read_manifest(self) -> dict:
    """The manifest; a missing or unreadable one is a ``UserError`` naming the directory."""
    try:
      with open(self.manifest_path, encoding="utf-8") as f:
        return json.load(f)
    except FileNotFoundError:
      raise UserError(f"--run_dir={self.path}: no {MANIFEST}; not a tfsmooth run "
                      "directory") from None
    except (OSError, ValueError) as error:
      raise UserError(f"--run_dir={self.path}: cannot read {MANIFEST}: {error}") from None

  def write_manifest(self, manifest: dict) -> None:
    write_json(self.manifest_path, manifest)

  def completed(self) -> dict | None:
    """The manifest if the run completed, else None (no run, or one that did not finish)."""
    if not self.has_manifest():
      return None
    manifest = self.read_manifest()
    return manifest if manifest.get("status") == COMPLETED else None

  # ------------------------------------------------------------------------------------------
  # Checkpoints

  def restore_latest_intact(self, checkpoint) -> tuple[str, list[str]]:
    """Restores ``checkpoint`` (a ``tf.train.Checkpoint``) from the newest checkpoint whose every
    tensor reads back intact (TensorFlow checks each tensor's CRC32C). Damaged newer ones are
    moved to ``checkpoints/damaged/`` and left out of the checkpoint list, so training goes on
    from the intact one and never from garbage. Returns the path restored and one line per
    checkpoint set aside.

    Raises:
      UserError: no intact checkpoint.
    """
    state = tf.train.get_checkpoint_state(self.checkpoints)
    paths = list(state.all_model_checkpoint_paths) if state else []
    damaged = []
    for path in reversed(paths):
      try:
        reader = tf.train.load_checkpoint(path)
        for name in reader.get_variable_to_shape_map():
          reader.get_tensor(name)
      except (tf.errors.OpError, ValueError, IndexError) as error:  # IndexError: truncated
        damaged.append(f"{os.path.basename(path)}: {str(error).splitlines()[0][:160]}")
        self._set_aside(path)
        continue
      checkpoint.restore(path).assert_existing_objects_matched()
      kept = paths[:paths.index(path) + 1]
      tf.compat.v1.train.update_checkpoint_state(self.checkpoints, path,
                                                 all_model_checkpoint_paths=kept)
      return path, damaged
    raise UserError(f"--resume: no intact checkpoint in {self.checkpoints}" +
                    (f" ({'; '.join(damaged)})" if damaged else ""))

  def _set_aside(self, path: str) -> None:
    aside = os.path.join(self.checkpoints, DAMAGED)
    os.makedirs(aside, exist_ok=True)
    prefix = os.path.basename(path)
    for name in os.listdir(self.checkpoints):
      if name.startswith(prefix + "."):
        os.replace(os.path.join(self.checkpoints, name), os.path.join(aside, name))

  def remove_partial_checkpoints(self) -> None:
    """Deletes ``ckpt-N_temp/`` directories a failed save left behind (a full disk)."""
    if os.path.isdir(self.checkpoints):
      for name in os.listdir(self.checkpoints):
        if name.endswith("_temp"):
          shutil.rmtree(os.path.join(self.checkpoints, name), ignore_errors=True)

  # ------------------------------------------------------------------------------------------
  # Mode coverage over training (mixtures of Gaussians)

  def append_coverage(self, record: dict) -> None:
    with open(self.coverage_path, "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")

  def coverage_history(self) -> list[dict]:
    """Mode coverage at every sample step (the last record of a step wins after a resume)."""
    by_step = {}
    with open(self.coverage_path, encoding="utf-8") as f:
      for line in f:
        record = json.loads(line)
        by_step[record["step"]] = record
    return [by_step[step] for step in sorted(by_step)]

  # ------------------------------------------------------------------------------------------
  # Starting and resuming

  def check_writable(self) -> None:
    check_writable(self.path, "--run_dir")

  def lock(self):
    """The run directory's exclusive lock (``locked``), held for the life of a run."""
    return locked(self.path, "--run_dir")

  def check_start(self, config: tfs_config.TrainConfig) -> None:
    """Refuses, before anything is built, a run that would overwrite another or cannot resume:
    ``--resume`` needs a checkpoint and the same settings that shape the trained weights
    (``tfsmooth.app.config.trajectory_changes``); the others (steps, logging, evaluation) may
    change."""
    if config.resume:
      if not tf.train.latest_checkpoint(self.checkpoints):
        raise UserError(f"--resume: no checkpoint in {self.checkpoints}")
      manifest = self.read_manifest()
      changes = tfs_config.trajectory_changes(
          manifest.get("settings", manifest.get("config", {})), config)
      if changes:
        raise UserError(f"--resume: flags differ from the run in {config.run_dir} and would "
                        f"change its training: {'; '.join(changes)}")
    elif self.has_manifest():
      raise UserError(f"--run_dir={config.run_dir} already holds a run; pass --resume to "
                      "continue it or choose a new directory")


def write_json(path: str, value, sort_keys: bool = True) -> None:
  """Writes ``value`` as JSON to ``path`` atomically: a reader (or a crash, or a full disk) sees
  the old file or the whole new one, never half of it."""
  temporary = path + ".tmp"
  try:
    with open(temporary, "w", encoding="utf-8") as f:
      json.dump(value, f, indent=2, sort_keys=sort_keys, default=str)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(temporary)
    raise
