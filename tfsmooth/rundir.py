"""The run-directory format: every path, the manifest and the start/resume rules, in one place.
Training writes a run directory through this module; evaluation, the comparison drivers and the
tests read it through this module.

Layout of a run directory::

    manifest.json        config (nested) and settings (flat, by flag name), versions, status
                         (running / completed / diverged / interrupted), constants, metrics
    train/               TensorBoard event files (scalars every --log_every, images)
    eval/                TensorBoard scalars of --mode=eval
    metrics.json         the last evaluation (FID/KID or mode coverage)
    samples/step_N.png   generator samples (image grid, or a scatter plot for 2-D data)
    samples/step_N.npy   2-D data: the samples themselves, and for mixtures of Gaussians
    samples/mode_coverage.jsonl   modes covered / high-quality fraction at every sample step and
    samples/over_iterations.png   a row of snapshots over training (Nagarajan-Kolter Figure 4)
    checkpoints/         tf.train.Checkpoint of both networks, both optimisers and the step
    export/generator     SavedModel: sample(num: int32, seed: int64) -> samples
    export/discriminator SavedModel (keras export): serve(x) -> D(x)

A run of Nagarajan and Kolter's toy system (``--mode=nk_toy``, no training) has a manifest,
``field.npz`` (the update field on a grid and gradient-descent paths) and ``streamlines.png``.

Imports no TensorFlow until a checkpoint is looked up.
"""

import json
import os

from tfsmooth import compat
from tfsmooth import config as tfs_config
from tfsmooth.errors import UserError

tf = compat.LazyModule("tensorflow")

MANIFEST = "manifest.json"
COMPLETED = "completed"


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
    temporary = self.manifest_path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
      json.dump(manifest, f, indent=2, sort_keys=True, default=str)
    os.replace(temporary, self.manifest_path)  # never a half-written manifest

  def completed(self) -> dict | None:
    """The manifest if the run completed, else None (no run, or one that did not finish)."""
    if not self.has_manifest():
      return None
    manifest = self.read_manifest()
    return manifest if manifest.get("status") == COMPLETED else None

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

  def check_start(self, config: tfs_config.TrainConfig) -> None:
    """Refuses, before anything is built, a run that would overwrite another or cannot resume:
    ``--resume`` needs a checkpoint and the same settings that shape the trained weights
    (``tfsmooth.config.trajectory_changes``); the others (steps, logging, evaluation) may
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
