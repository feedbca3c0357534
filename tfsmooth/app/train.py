"""A training run: config -> run directory (``tfsmooth.app.rundir``: manifest, TensorBoard logs,
sample grids, checkpoints with exact resume, SavedModels of the generator and discriminator)
with a NaN/Inf guard that stops before a bad step is checkpointed.
"""

import contextlib
import dataclasses
import datetime
import functools
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

import keras
import numpy as np
import tensorflow as tf

from tfsmooth import compat
from tfsmooth import data
from tfsmooth import distribute
from tfsmooth import monitors
from tfsmooth import provenance
from tfsmooth.app import build
from tfsmooth.app import config as tfs_config
from tfsmooth.app import evaluate
from tfsmooth.app import export
from tfsmooth.app import rundir
from tfsmooth.app import summaries
from tfsmooth.app.config import TrainConfig
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.errors import RunError
from tfsmooth.errors import UserError

SAMPLE_GRID = 64  # samples in each saved grid
STABILITY_BATCH = 256  # real samples the stability monitors measure the Lipschitz constant on


class TrainingDiverged(RunError):
  """A loss or gradient norm became NaN/Inf; the last good checkpoint is kept."""


# ---------------------------------------------------------------------------------------------
# Building the pieces


def execution_steps(config: TrainConfig, start_step: int, distributed: bool = False) -> int:
  """Steps per ``fit`` execution: the largest divisor of ``--steps_per_execution`` that divides
  every period at which the run logs, samples, checkpoints or evaluates, and the start step, so
  that every execution ends at each step where one of them is due (the last one ends at
  ``--steps``: the data ends there).

  1 under a ``tf.distribute`` strategy (``distributed``): Keras 3.15's multi-step loop over a
  distributed iterator fails there ("You must feed a value for placeholder tensor ...
  while/cond/Placeholder"), seen with MirroredStrategy on 2 CPU replicas.
  """
  if distributed:
    return 1
  periods = [config.log_every, config.sample_every, config.checkpoint_every, config.eval_every,
             start_step]
  common = math.gcd(*periods)  # gcd(x, 0) = x: no evaluation, a start at step 0
  return max(d for d in range(1, config.steps_per_execution + 1) if common % d == 0)


# ---------------------------------------------------------------------------------------------
# Callbacks


def _image_grid(images) -> np.ndarray:
  """(N, H, W, C) in [-1, 1] -> one uint8 grid image (H*rows, W*cols, 3)."""
  images = np.clip((np.asarray(images) + 1.0) * 127.5, 0, 255).astype(np.uint8)
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  count, height, width, _ = images.shape
  cols = math.ceil(math.sqrt(count))
  rows = math.ceil(count / cols)
  grid = np.zeros((rows * height, cols * width, 3), np.uint8)
  for i, image in enumerate(images):
    r, c = divmod(i, cols)
    grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = image
  return grid


class ProgressBar(keras.callbacks.ProgbarLogger):
  """Keras's progress bar, showing only the metrics ``shown`` (``SmoothGAN.progress_metrics``);
  TensorBoard gets every metric."""

  def __init__(self, shown):
    super().__init__()
    self.shown = tuple(shown)

  def _shown(self, logs):
    return {name: logs[name] for name in self.shown if name in (logs or {})}

  def on_train_batch_end(self, batch, logs=None):
    super().on_train_batch_end(batch, self._shown(logs))

  def on_epoch_end(self, epoch, logs=None):
    super().on_epoch_end(epoch, self._shown(logs))


class ProgressLines(keras.callbacks.Callback):
  """Progress for a file or a pipe (a sweep member's log, ``nohup``): one plain line per log
  period, ``step N/STEPS (X s) - name: value ...``, instead of Keras's terminal bar (one endless
  line of carriage returns and colour codes there)."""

  def __init__(self, shown, every: int, steps: int, stream=None):
    super().__init__()
    self.shown = tuple(shown)
    self.every = every
    self.steps = steps
    self.stream = stream or sys.stdout
    self.started = None

  def on_train_begin(self, logs=None):
    self.started = time.time()

  def on_train_batch_end(self, batch, logs=None):
    step = int(self.model.step.numpy())
    if step % self.every and step != self.steps:
      return
    values = " - ".join(f"{name}: {float(logs[name]):.4g}" for name in self.shown
                        if name in (logs or {}))
    print(f"step {step}/{self.steps} ({time.time() - self.started:.0f} s) - {values}",
          file=self.stream, flush=True)


def progress_callbacks(model, config: TrainConfig, verbose: int) -> list:
  """Keras's bar on a terminal, ``ProgressLines`` (one line per ``--log_every``) otherwise."""
  if not verbose:
    return []
  if sys.stdout.isatty():
    return [ProgressBar(model.progress_metrics)]
  return [ProgressLines(model.progress_metrics, config.log_every, config.steps)]


class RunMonitor(keras.callbacks.Callback):
  """After each execution of ``fit`` (``execution_steps`` steps, ending where something is due):
  the NaN/Inf guard, TensorBoard scalars, checkpoints, sample grids and evaluations.

  One callback, so the order is fixed: a non-finite metric stops the run *before* anything of
  that step is checkpointed, so the last checkpoint is the last good state. The scalars are the
  model's Keras metrics: means over the steps since the last log step (the metrics start again
  after each), so a TensorBoard curve is not the noise of single steps.
  """

  def __init__(self, config: TrainConfig, run: RunDirectory, manager, provider,
               extra_scalars: dict, evaluator=None):
    super().__init__()
    self.evaluator = evaluator  # fn(sample_fn) -> metrics dict, or None
    self.config = config
    self.run = run
    self.manager = manager
    self.provider = provider
    self.extra_scalars = extra_scalars
    self.writer = tf.summary.create_file_writer(run.logs)
    self.diverged = None  # (step, metric, value)
    self.last_logs = {}
    self.last_checkpoint_step = None  # set by the run before fit
    self.coverage = None
    self.logged = False  # the last execution ended at a log step
    # The live stability monitors' real batch: fixed, so their curves follow the weights.
    self.stability_batch = (provider.sample(min(config.batch_size, STABILITY_BATCH),
                                            seed=config.seed + 2)
                            if config.stability_every else None)

  def _step(self) -> int:
    return int(self.model.step.numpy())

  def on_train_begin(self, logs=None):
    every = self.config.stability_every
    self.next_stability_step = (self._step() // every + 1) * every if every else 0

  def on_train_batch_begin(self, batch, logs=None):
    # Started here, not right after logging, so that fit's final logs (read from the metrics)
    # are the last period's means.
    if self.logged:
      self.model.reset_metrics()
      self.logged = False

  def on_train_batch_end(self, batch, logs=None):
    # Called after every execution of steps_per_execution steps, which ends at each step where
    # something is due (execution_steps): the guard's state says whether any of its steps
    # had a non-finite metric, and nothing of this execution is then written.
    self.diverged = self.model.nonfinite()
    if self.diverged:
      self.model.stop_training = True
      return
    logs = {k: float(v) for k, v in (logs or {}).items()}
    step = self._step()
    self.last_logs = logs
    if step % self.config.log_every == 0 or step == self.config.steps:
      with self.writer.as_default(step=step):
        for name, value in {**logs, **self.extra_scalars}.items():
          tf.summary.scalar(name, value)
      self.logged = True
    if self.config.stability_every and step >= self.next_stability_step:
      # At the end of the execution that reaches the next multiple (exactly at it when
      # --stability_every is a multiple of --log_every, as by default).
      self.next_stability_step = (step // self.config.stability_every + 1) * \
          self.config.stability_every
      monitors.write_measures(
          self.writer, step,
          monitors.stability_measures(self.model, self.stability_batch, self.config.seed + 2),
          logs.get("g_grad_norm"))
    if step % self.config.sample_every == 0 or step == self.config.steps:
      self.write_samples(step)
    if step % self.config.checkpoint_every == 0 or step == self.config.steps:
      self.manager.save(checkpoint_number=step)
      self.last_checkpoint_step = step
    if self.evaluator and self.config.eval_every and step % self.config.eval_every == 0:
      result = self.evaluator(self.sample_numpy)
      with self.writer.as_default(step=step):
        for name, value in evaluate.scalars(result).items():
          tf.summary.scalar(f"eval/{name}", value)

  def sample_numpy(self, num, seed):
    return self.model.sample(num, seed).numpy()

  def write_samples(self, step: int) -> None:
    samples = self.model.sample(SAMPLE_GRID if self.provider.is_image else 2000,
                                self.config.seed + 1).numpy()
    os.makedirs(self.run.samples, exist_ok=True)
    path = self.run.sample_path(step, "png")
    with self.writer.as_default(step=step):
      if self.provider.is_image:
        grid = _image_grid(samples)
        tf.io.write_file(path, tf.io.encode_png(grid))
        tf.summary.image("samples", grid[None], step=step)
      else:
        self._scatter(samples, path, step)
        np.save(self.run.sample_path(step, "npy"), samples)
        coverage = self.provider.mode_coverage(samples)  # None: no known modes
        if coverage:
          self.coverage = coverage
          tf.summary.scalar("modes_covered", self.coverage.modes_covered)
          tf.summary.scalar("high_quality_fraction", self.coverage.high_quality_fraction)
          self.run.append_coverage({"step": step, **dataclasses.asdict(self.coverage)})

  def _scatter(self, samples, path, step):
    real = self.provider.sample(2000, seed=0)
    figure, axis = summaries.pyplot().subplots(figsize=(4, 4), dpi=100)
    if samples.shape[-1] == 1:
      axis.hist([real[:, 0], samples[:, 0]], bins=60, label=["data", "generator"])
    else:
      axis.scatter(real[:, 0], real[:, 1], s=2, c="tab:blue", alpha=0.3, label="data")
      axis.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:red", alpha=0.5, label="generator")
    axis.set_title(f"step {step}")
    axis.legend(loc="upper right", fontsize=7)
    summaries.save_figure(figure, path, self.writer, "samples", step)


def write_snapshot_figure(run: RunDirectory, provider, writer=None,
                          panels: int = 8) -> str | None:
  """One row of 2-D sample snapshots at evenly spaced saved steps (the last included), as in
  Nagarajan and Kolter's Figure 4, also as the TensorBoard image ``samples_over_training`` at
  the last step (given the run's summary ``writer``); returns the PNG path, or None if there
  are no 2-D samples."""
  steps = run.sample_steps()
  if not steps:
    return None
  count = min(panels, len(steps))
  chosen = sorted({steps[round(i * (len(steps) - 1) / max(count - 1, 1))] for i in range(count)})
  real = provider.sample(2000, seed=0)
  limit = 1.25 * float(np.max(np.abs(real)))
  figure, axes = summaries.pyplot().subplots(1, len(chosen), figsize=(2 * len(chosen), 2.3),
                                             dpi=100, squeeze=False)
  for axis, step in zip(axes[0], chosen):
    samples = np.load(run.sample_path(step, "npy"))
    if samples.shape[-1] == 2:
      axis.scatter(real[:, 0], real[:, 1], s=1, c="tab:blue", alpha=0.2)
      axis.scatter(samples[:, 0], samples[:, 1], s=1, c="tab:red", alpha=0.4)
      axis.set_xlim(-limit, limit)
      axis.set_ylim(-limit, limit)
    else:
      axis.hist([real[:, 0], samples[:, 0]], bins=40)
    title = f"step {step}"
    coverage = provider.mode_coverage(samples)
    if coverage:
      title += f"\n{coverage.modes_covered}/{coverage.num_modes} modes"
    axis.set_title(title, fontsize=8)
    axis.set_xticks([])
    axis.set_yticks([])
  return summaries.save_figure(figure, run.snapshots_path, writer, "samples_over_training",
                               chosen[-1])


# ---------------------------------------------------------------------------------------------
# The run



@contextlib.contextmanager
def _sigterm_as_interrupt():
  """SIGTERM raises KeyboardInterrupt while the block runs, so it ends a run as Ctrl-C does."""
  def interrupt(signum, frame):
    del signum, frame
    raise KeyboardInterrupt("SIGTERM")
  if threading.current_thread() is not threading.main_thread():  # signals reach only main
    yield
    return
  previous = signal.signal(signal.SIGTERM, interrupt)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


def _fail_on_disk_error(run: RunDirectory, manifest: dict, error: Exception,
                        last_checkpoint_step: int | None):
  """A full, read-only or vanished disk mid-run: remove the half-written checkpoint, mark the
  manifest failed (if the disk still takes it) and stop with one line saying what to do."""
  reason = next((m for m in rundir.DISK_MESSAGES if m in str(error)), None) or (
      getattr(error, "strerror", None) or str(error).splitlines()[0][:200])
  run.remove_partial_checkpoints()  # frees the space the failed save took
  manifest.update(status="failed", failure=f"cannot write {run.path}: {reason}",
                  last_checkpoint_step=last_checkpoint_step)
  with contextlib.suppress(OSError):
    run.write_manifest(manifest)
  kept = (f"the last good checkpoint is step {last_checkpoint_step} in {run.checkpoints}; "
          "make room (or make it writable) and pass --resume"
          if last_checkpoint_step is not None else "no checkpoint was written")
  raise RunError(f"cannot write the run directory {run.path} ({reason}); {kept}") from None


def _save_interrupted(model, manager, run, manifest, elapsed):
  """Ctrl-C: keep what was trained (if it is finite) and say how to continue."""
  step = int(model.step.numpy())
  finite = all(bool(np.all(np.isfinite(v.numpy()))) for v in model.trainable_variables)
  if finite:
    manager.save(checkpoint_number=step)
  manifest.update(status="interrupted", interrupted_step=step,
                  train_seconds=manifest.get("train_seconds", 0.0) + elapsed)
  run.write_manifest(manifest)
  saved = f"checkpoint saved at step {step}" if finite else "weights not finite, not saved"
  raise RunError(f"interrupted at step {step} ({saved}); --resume continues from the latest "
                 f"checkpoint in {run.checkpoints}")


def dataset_options(config: TrainConfig) -> dict:
  """The options of the run's dataset (``data.get_provider``) from its settings."""
  return data.provider_options(config.dataset, data_dir=config.data_dir,
                               image_shape=tuple(config.image_shape))


def train(config: TrainConfig, verbose: int = 1) -> dict:
  """Runs (or resumes) a training run; returns the final manifest.

  Raises:
    UserError: before anything is built, for a run that cannot start (a dataset that is not
      installed, a run directory that holds a run, a resume with different settings, missing
      FID features); ``RunError`` (a ``UserError``) for a run that diverged or was interrupted.
  """
  # First: splitting the CPU into replicas must happen before TensorFlow starts its devices.
  strategy = distribute.make_strategy(config.strategy, config.cpu_replicas, config.tpu)
  build.check_replica_split(config, strategy.num_replicas_in_sync)
  run = shared = RunDirectory(config.run_dir)
  if distribute.is_chief(strategy):
    run.check_writable()  # before data, models or a directory are made
    run.check_start(config)  # refused here, an existing run directory is left untouched
  data.check_available(config.dataset, **dataset_options(config))
  chief = distribute.is_chief(strategy)
  if not chief:  # another worker of a multi-worker run: it writes only to a temporary directory
    return _train(config, strategy, RunDirectory(tempfile.mkdtemp(prefix="tfsmooth_worker_")),
                  shared, verbose)
  made = not os.path.exists(run.path)
  try:
    with run.lock():  # one writer: a second process on this directory is refused
      run.check_start(config)  # again: another process may have started it meanwhile
      return _train(config, strategy, run, shared, verbose)
  except UserError as error:
    # Refused before anything was written (no manifest, no checkpoint): leave no trace.
    if (made and not isinstance(error, RunError) and not run.has_manifest()
        and not os.path.exists(run.checkpoints)):
      shutil.rmtree(run.path, ignore_errors=True)
    raise


def _evaluator(config: TrainConfig, provider, options: dict):
  """``(evaluator, extractor)``: the run's FID/KID or mode-coverage evaluation, with its feature
  extractor loaded (or trained) now so that a missing one fails before training; Nones when the
  run evaluates nothing."""
  if not (config.eval_at_end or config.eval_every):
    return None, None
  extractor = (evaluate.feature_extractor(config.evaluation, config.dataset, options)
               if provider.is_image else None)
  evaluator = functools.partial(evaluate.evaluate_generator, dataset=config.dataset,
                                config=config.evaluation, options=options, extractor=extractor)
  return evaluator, extractor


def _checkpoints(config: TrainConfig, model, strategy, run: RunDirectory,
                 shared: RunDirectory) -> tf.train.CheckpointManager:
  """The run's checkpoint manager, with the model restored from the latest checkpoint on
  ``--resume`` (the chief's newest intact one; another worker reads the chief's)."""
  with strategy.scope():  # the checkpoint lives on the strategy's devices, as the networks do
    checkpoint = tf.train.Checkpoint(generator=model.generator, discriminator=model.discriminator,
                                     d_optimizer=model.d_optimizer, g_optimizer=model.g_optimizer,
                                     step=model.step)
  os.makedirs(run.path, exist_ok=True)
  if config.resume and run is shared:
    # The newest checkpoint that reads back intact; damaged newer ones are set aside.
    restored, damaged = run.restore_latest_intact(checkpoint)
    for line in damaged:
      compat.progress(f"checkpoint {line}; set aside in {run.checkpoints}/{rundir.DAMAGED}, "
                      f"resuming from {os.path.basename(restored)}")
  elif config.resume:  # another worker of a multi-worker run: from the chief's checkpoints
    checkpoint.restore(tf.train.latest_checkpoint(shared.checkpoints)
                       ).assert_existing_objects_matched()
  # Made after the restore: it reads the list of checkpoints the restore may have shortened.
  return tf.train.CheckpointManager(checkpoint, run.checkpoints,
                                    max_to_keep=config.keep_checkpoints)


def _start_manifest(config: TrainConfig, shared: RunDirectory, model, g_lr, constants) -> dict:
  """The manifest of a run starting (or resuming) now: versions, start time (or the resumed
  steps), the latest settings, the learning rate, constants and parameter counts."""
  if config.resume:
    manifest = shared.read_manifest()
    manifest["resumed"] = manifest.get("resumed", []) + [int(model.step.numpy())]
  else:
    manifest = {"versions": provenance.versions(),
                "started": datetime.datetime.now().isoformat(timespec="seconds")}
  # A resume may change steps, logging and evaluation: the manifest holds the latest settings.
  manifest.update(config=dataclasses.asdict(config), settings=tfs_config.settings(config),
                  status="running", g_lr=g_lr, constants=constants,
                  parameters={"generator": model.generator.count_params(),
                              "discriminator": model.discriminator.count_params()})
  return manifest


def _announce(config: TrainConfig, model, monitor: RunMonitor, manifest: dict, sample_shape,
              start_step: int) -> None:
  """One line on the console, and TensorBoard's Text tab: the settings this run (or resumed
  part) started with, and what they gave."""
  g_lr, constants = manifest["g_lr"], manifest["constants"]
  generator, discriminator = model.generator, model.discriminator
  compat.progress(
      f"run {config.run_dir}: {config.dataset} {sample_shape}, {generator.name} "
      f"({generator.count_params():,} parameters) vs {discriminator.name} "
      f"({discriminator.count_params():,}), loss {config.gan.loss}, g_lr {g_lr:.6g}" +
      (f" = {config.g_lr_ratio} gamma*" if constants else "") +
      f"; steps {start_step} -> {config.steps}")
  summaries.write_text(monitor.writer, "config", summaries.markdown_table(manifest["settings"]),
                       start_step)
  summaries.write_text(monitor.writer, "run", summaries.markdown_table(
      {"g_lr": g_lr, **{f"constants/{k}": v for k, v in (constants or {}).items()},
       **{f"parameters/{k}": v for k, v in manifest["parameters"].items()},
       **{f"versions/{k}": v for k, v in manifest.get("versions", {}).items()}},
      header=("quantity", "value")), start_step)


def _fit(config: TrainConfig, model, provider, monitor: RunMonitor, start_step: int,
         verbose: int) -> None:
  """``fit`` from ``start_step`` to ``--steps`` on the provider's batches (plain batches, as a
  user's fit gets them: fit groups n_disc of them into each step)."""
  n_disc = model.n_disc
  # Finite: the last execution stops at --steps even when it is not a multiple.
  dataset = provider.batches(config.batch_size, start=start_step * n_disc).take(
      (config.steps - start_step) * n_disc)
  model.steps_per_execution = execution_steps(  # compile()'s setting
      config, start_step, distributed=config.strategy != "default")
  progress = progress_callbacks(model, config, verbose)
  # Keras adds its own bar for verbose > 0 unless a ProgbarLogger is among the callbacks.
  keras_verbose = verbose if any(isinstance(c, ProgressBar) for c in progress) else 0
  model.fit(dataset, steps_per_epoch=config.steps - start_step, epochs=1, verbose=keras_verbose,
            callbacks=[monitor, *progress], shuffle=False)


def _finish(config: TrainConfig, model, run: RunDirectory, provider, monitor: RunMonitor,
            manifest: dict, elapsed: float) -> dict:
  """After ``fit``: a divergence recorded and raised, or the SavedModels, the completed
  manifest and the 2-D snapshot figure."""
  if monitor.diverged:
    step, name, value = monitor.diverged
    manifest.update(status="diverged", diverged={"step": step, "metric": name, "value": value},
                    last_checkpoint_step=monitor.last_checkpoint_step)
    run.write_manifest(manifest)
    raise TrainingDiverged(
        f"diverged at step {step}: {name} = {value}; last good checkpoint: step "
        f"{monitor.last_checkpoint_step} in {run.checkpoints}")
  with model.generator_ema():  # --g_ema: the average is what a run delivers
    export.export_generator(model.generator, run.generator_export, config.generator.noise_dim)
  export.export_discriminator(model.discriminator, run.discriminator_export)
  manifest.update(status="completed", final_step=int(model.step.numpy()),
                  final_metrics=monitor.last_logs,
                  finished=datetime.datetime.now().isoformat(timespec="seconds"),
                  train_seconds=manifest.get("train_seconds", 0.0) + elapsed)
  if monitor.coverage:
    manifest["mode_coverage"] = dataclasses.asdict(monitor.coverage)
  if not provider.is_image:
    write_snapshot_figure(run, provider, monitor.writer)
  run.write_manifest(manifest)
  return manifest


def _train(config: TrainConfig, strategy, run: RunDirectory, shared: RunDirectory,
           verbose: int) -> dict:
  """``train`` once the run directory is checked and locked (``run`` is ``shared``, the run
  directory, on the chief and a temporary directory on the other workers)."""
  chief = run is shared
  options = dataset_options(config)
  provider = data.get_provider(config.dataset, seed=config.seed, **options)
  evaluator, extractor = _evaluator(config, provider, options)
  # Seeded after the extractor: training a missing classifier draws random numbers too, and the
  # run must not depend on whether the classifier was cached.
  sample_shape = tuple(provider.shape)
  model, g_lr, constants = build.build_gan(config, sample_shape, strategy)
  build.check_sample_shapes(config, model, sample_shape)
  manager = _checkpoints(config, model, strategy, run, shared)
  manifest = _start_manifest(config, shared, model, g_lr, constants)
  start_step = int(model.step.numpy())
  if start_step > config.steps:
    raise UserError(f"--steps={config.steps}: the run in {config.run_dir} is already at step "
                    f"{start_step}; give --steps > {start_step} to continue it")
  monitor = None
  try:
    if not config.resume:
      manager.save(checkpoint_number=0)  # a good state to return to even if step 1 diverges
    run.write_manifest(manifest)
    extra = {"gamma_ratio": config.g_lr_ratio} if constants else {}
    monitor = RunMonitor(config, run, manager, provider, extra, evaluator)
    monitor.last_checkpoint_step = start_step
    _announce(config, model, monitor, manifest, sample_shape, start_step)
    started = time.time()
    if start_step < config.steps:
      try:
        with _sigterm_as_interrupt():  # what schedulers and `timeout` send: handled like Ctrl-C
          _fit(config, model, provider, monitor, start_step, verbose if chief else 0)
      except KeyboardInterrupt:
        _save_interrupted(model, manager, run, manifest, time.time() - started)
    elapsed = time.time() - started
    monitor.writer.flush()
    manifest = _finish(config, model, run, provider, monitor, manifest, elapsed)
    if not chief:
      shutil.rmtree(run.path, ignore_errors=True)
      return manifest
    if config.eval_at_end and evaluator:
      compat.progress("evaluating the final generator")
      manifest["metrics"] = evaluate.evaluate_run(run.path, config.evaluation, extractor)
      run.write_manifest(manifest)
    compat.progress(f"done: {config.steps - start_step} steps in {elapsed:.0f} s; run directory "
                    f"{config.run_dir}")
    return manifest
  except Exception as error:  # pylint: disable=broad-except
    if not rundir.is_disk_error(error):
      raise  # a bug: keeps its traceback
    _fail_on_disk_error(run, manifest, error, monitor.last_checkpoint_step if monitor else None)
