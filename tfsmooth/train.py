"""A training run: config -> run directory with manifest, TensorBoard logs, sample grids,
checkpoints (exact resume), a NaN/Inf guard and SavedModels of the generator and discriminator.

Layout of a run directory::

    manifest.json        config, versions, status (running / completed / diverged), constants
    train/               TensorBoard event files (scalars every --log_every, images)
    samples/step_N.png   generator samples (image grid, or a scatter plot for 2-D data)
    samples/step_N.npy   2-D data: the samples themselves, and for mixtures of Gaussians
    samples/mode_coverage.jsonl   modes covered / high-quality fraction at every sample step and
    samples/over_iterations.png   a row of snapshots over training (Nagarajan-Kolter Figure 4)
    checkpoints/         tf.train.Checkpoint of both networks, both optimisers and the step
    export/generator     SavedModel: sample(num: int32, seed: int64) -> samples
    export/discriminator SavedModel (keras export): serve(x) -> D(x)
"""

import dataclasses
import datetime
import functools
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfsmooth import console
from tfsmooth import data
from tfsmooth import evaluate
from tfsmooth import gan
from tfsmooth import layers as tfs_layers
from tfsmooth import metrics
from tfsmooth import networks
from tfsmooth import provenance
from tfsmooth import theory
from tfsmooth.config import TrainConfig

SAMPLE_GRID = 64  # samples in each saved grid


class RunError(RuntimeError):
  """A run that cannot start or did not finish (the message is one line for the user)."""


class TrainingDiverged(RunError):
  """A loss or gradient norm became NaN/Inf; the last good checkpoint is kept."""


# ---------------------------------------------------------------------------------------------
# Building the pieces


def build_discriminator(config: TrainConfig, sample_shape) -> keras.Sequential:
  if config.discriminator == "conv7":
    return networks.conv7_discriminator(sample_shape, config.base_channels, config.activation,
                                        config.alpha, config.sn_norm)
  if config.discriminator == "mlp":
    return networks.mlp_discriminator(int(np.prod(sample_shape)), config.hidden_units,
                                      config.activation, config.alpha)
  if config.discriminator == "nk_mlp":
    return networks.nk_mlp_discriminator(int(np.prod(sample_shape)), config.hidden_units)
  return networks.dcgan_discriminator(sample_shape, config.base_channels)


def build_generator(config: TrainConfig, sample_shape) -> keras.Model:
  if config.generator == "particle":
    return networks.ParticleGenerator(config.n_particles, sample_shape, config.particle_init_std)
  if config.generator == "mlp":
    return networks.mlp_generator(config.noise_dim, int(np.prod(sample_shape)),
                                  config.g_hidden_units)
  return networks.dcgan_generator(config.noise_dim, sample_shape, config.g_base_channels)


def _optimizer(name, learning_rate, beta_1, beta_2):
  if name == "sgd":
    return keras.optimizers.SGD(learning_rate=learning_rate)
  return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)


def generator_learning_rate(config: TrainConfig, discriminator) -> tuple[float, dict]:
  """``--g_lr``, or ``--g_lr_ratio * gamma*`` with gamma* from Chu et al.'s Theorem 1 for the
  built discriminator and the particle generator; also returns the constants."""
  if config.g_lr_ratio is None:
    return config.g_lr, {}
  constants = theory.stability_constants(discriminator, config.gan.penalty_lambda,
                                         config.gan.kernel_sigma, n_particles=config.n_particles)
  if not constants.gamma_star > 0 or math.isinf(constants.gamma_star):
    raise RunError(f"--g_lr_ratio needs a finite gamma* > 0, got {constants.gamma_star} "
                   f"(beta1 = {constants.beta1}); use a smooth activation or give --g_lr")
  summary = {"alpha": constants.alpha, "beta1": constants.beta1, "beta2": constants.beta2,
             "A": constants.generator_a, "B": constants.generator_b, "L": constants.smoothness,
             "gamma_star": constants.gamma_star, "g_lr_ratio": config.g_lr_ratio}
  return config.g_lr_ratio * constants.gamma_star, summary


# ---------------------------------------------------------------------------------------------
# Run directory


class RunDirectory:
  """Paths and the manifest of one run."""

  def __init__(self, path: str):
    self.path = path
    self.manifest_path = os.path.join(path, "manifest.json")
    self.checkpoints = os.path.join(path, "checkpoints")
    self.samples = os.path.join(path, "samples")
    self.logs = os.path.join(path, "train")
    self.generator_export = os.path.join(path, "export", "generator")
    self.discriminator_export = os.path.join(path, "export", "discriminator")

  def read_manifest(self) -> dict:
    with open(self.manifest_path, encoding="utf-8") as f:
      return json.load(f)

  def write_manifest(self, manifest: dict) -> None:
    temporary = self.manifest_path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
      json.dump(manifest, f, indent=2, sort_keys=True, default=str)
    os.replace(temporary, self.manifest_path)  # never a half-written manifest


def check_run_directory(config: TrainConfig) -> None:
  """Refuses, before anything is built, a run that would overwrite or cannot resume."""
  run = RunDirectory(config.run_dir)
  exists = os.path.exists(run.manifest_path)
  if config.resume:
    if not tf.train.latest_checkpoint(run.checkpoints):
      raise RunError(f"--resume: no checkpoint in {run.checkpoints}")
    previous = run.read_manifest()["config"]
    # The directory itself may be spelled differently (relative or absolute): not a change.
    changed = sorted(k for k, v in dataclasses.asdict(config).items()
                     if k not in ("run_dir", "steps", "resume")
                     and json.loads(json.dumps(v, default=str)) != previous.get(k))
    if changed:
      raise RunError(f"--resume: flags differ from the run in {config.run_dir}: "
                     f"{', '.join(changed)}")
  elif exists:
    raise RunError(f"--run_dir={config.run_dir} already holds a run; pass --resume to continue "
                   f"it or choose a new directory")


# ---------------------------------------------------------------------------------------------
# Callbacks


def _image_grid(images) -> np.ndarray:
  """(N, H, W, C) in [-1, 1] -> one uint8 grid image (H*rows, W*cols, 3)."""
  images = np.clip((np.asarray(images) + 1.0) * 127.5, 0, 255).astype(np.uint8)
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  count, height, width, _ = images.shape
  cols = int(math.ceil(math.sqrt(count)))
  rows = int(math.ceil(count / cols))
  grid = np.zeros((rows * height, cols * width, 3), np.uint8)
  for i, image in enumerate(images):
    r, c = divmod(i, cols)
    grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = image
  return grid


class RunMonitor(keras.callbacks.Callback):
  """Per step: the NaN/Inf guard, TensorBoard scalars, checkpoints, sample grids and progress.

  One callback, so the order is fixed: a non-finite metric stops the run *before* anything of
  that step is checkpointed, so the last checkpoint is the last good state.
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
    self.last_checkpoint_step = None if config.resume else 0
    self.coverage = None

  def _step(self) -> int:
    return int(self.model.step.numpy())

  def on_train_batch_end(self, batch, logs=None):
    logs = {k: float(v) for k, v in (logs or {}).items()}
    step = self._step()
    for name, value in logs.items():
      if not math.isfinite(value):
        self.diverged = (step, name, value)
        self.model.stop_training = True
        return
    self.last_logs = logs
    if step % self.config.log_every == 0 or step == self.config.steps:
      with self.writer.as_default(step=step):
        for name, value in {**logs, **self.extra_scalars}.items():
          tf.summary.scalar(name, value)
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
    path = os.path.join(self.run.samples, f"step_{step:06d}.png")
    with self.writer.as_default(step=step):
      if self.provider.is_image:
        grid = _image_grid(samples)
        tf.io.write_file(path, tf.io.encode_png(grid))
        tf.summary.image("samples", grid[None], step=step)
      else:
        self._scatter(samples, path, step)
        np.save(path[:-len(".png")] + ".npy", samples)
        if hasattr(self.provider, "centers"):
          self.coverage = metrics.mixture_mode_coverage(samples, self.provider.centers,
                                                        self.provider.std)
          tf.summary.scalar("modes_covered", self.coverage.modes_covered)
          tf.summary.scalar("high_quality_fraction", self.coverage.high_quality_fraction)
          with open(os.path.join(self.run.samples, "mode_coverage.jsonl"), "a",
                    encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **dataclasses.asdict(self.coverage)}) + "\n")

  def _scatter(self, samples, path, step):
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
    real = self.provider.sample(2000, seed=0)
    figure, axis = plt.subplots(figsize=(4, 4), dpi=100)
    if samples.shape[-1] == 1:
      axis.hist([real[:, 0], samples[:, 0]], bins=60, label=["data", "generator"])
    else:
      axis.scatter(real[:, 0], real[:, 1], s=2, c="tab:blue", alpha=0.3, label="data")
      axis.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:red", alpha=0.5, label="generator")
    axis.set_title(f"step {step}")
    axis.legend(loc="upper right", fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_snapshot_figure(run: RunDirectory, provider, panels: int = 8) -> str | None:
  """One row of 2-D sample snapshots at evenly spaced saved steps (the last included), as in
  Nagarajan and Kolter's Figure 4; returns the PNG path, or None if there are no 2-D samples."""
  steps = sorted(int(name[len("step_"):-len(".npy")]) for name in os.listdir(run.samples)
                 if name.startswith("step_") and name.endswith(".npy"))
  if not steps:
    return None
  chosen = sorted({steps[round(i * (len(steps) - 1) / max(panels - 1, 1))]
                   for i in range(min(panels, len(steps)))})
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  real = provider.sample(2000, seed=0)
  limit = 1.25 * float(np.max(np.abs(real)))
  figure, axes = plt.subplots(1, len(chosen), figsize=(2 * len(chosen), 2.3), dpi=100,
                              squeeze=False)
  for axis, step in zip(axes[0], chosen):
    samples = np.load(os.path.join(run.samples, f"step_{step:06d}.npy"))
    if samples.shape[-1] == 2:
      axis.scatter(real[:, 0], real[:, 1], s=1, c="tab:blue", alpha=0.2)
      axis.scatter(samples[:, 0], samples[:, 1], s=1, c="tab:red", alpha=0.4)
      axis.set_xlim(-limit, limit)
      axis.set_ylim(-limit, limit)
    else:
      axis.hist([real[:, 0], samples[:, 0]], bins=40)
    title = f"step {step}"
    if hasattr(provider, "centers"):
      coverage = metrics.mixture_mode_coverage(samples, provider.centers, provider.std)
      title += f"\n{coverage.modes_covered}/{coverage.num_modes} modes"
    axis.set_title(title, fontsize=8)
    axis.set_xticks([])
    axis.set_yticks([])
  figure.tight_layout()
  path = os.path.join(run.samples, "over_iterations.png")
  figure.savefig(path)
  plt.close(figure)
  return path


# ---------------------------------------------------------------------------------------------
# The run



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


def train(config: TrainConfig, verbose: int = 1) -> dict:
  """Runs (or resumes) a training run; returns the final manifest. Raises ``RunError``."""
  check_run_directory(config)
  options = {"data_dir": config.data_dir} if config.data_dir else {}
  provider = data.get_provider(config.dataset, seed=config.seed, **options)
  evaluator, extractor = None, None
  if config.eval_at_end or config.eval_every:
    try:  # load (or train) the feature extractor now: a missing one fails before training
      extractor = (evaluate.feature_extractor(config.evaluation, config.dataset, config.data_dir)
                   if provider.is_image else None)
    except ValueError as error:
      raise RunError(str(error)) from None
    evaluator = functools.partial(evaluate.evaluate_generator, dataset=config.dataset,
                                  config=config.evaluation, data_dir=config.data_dir,
                                  extractor=extractor)

  # Seeded after the extractor: training a missing classifier draws random numbers too, and the
  # run must not depend on whether the classifier was cached.
  keras.utils.set_random_seed(config.seed)
  tf.config.experimental.enable_op_determinism()
  sample_shape = tuple(provider.shape)
  discriminator = build_discriminator(config, sample_shape)
  tfs_layers.converge_spectral_norms(discriminator)
  generator = build_generator(config, sample_shape)
  g_lr, constants = generator_learning_rate(config, discriminator)
  model = gan.SmoothGAN(generator, discriminator, config.gan, noise_dim=config.noise_dim)
  model.compile(
      d_optimizer=_optimizer(config.d_optimizer, config.d_lr, config.d_beta1, config.d_beta2),
      g_optimizer=_optimizer(config.g_optimizer, g_lr, config.g_beta1, config.g_beta2))
  model.d_optimizer.build(discriminator.trainable_variables)
  model.g_optimizer.build(generator.trainable_variables)

  run = RunDirectory(config.run_dir)
  os.makedirs(run.path, exist_ok=True)
  checkpoint = tf.train.Checkpoint(generator=generator, discriminator=discriminator,
                                   d_optimizer=model.d_optimizer, g_optimizer=model.g_optimizer,
                                   step=model.step)
  manager = tf.train.CheckpointManager(checkpoint, run.checkpoints,
                                       max_to_keep=config.keep_checkpoints)
  if config.resume:
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    manifest = run.read_manifest()
    manifest["resumed"] = manifest.get("resumed", []) + [int(model.step.numpy())]
  else:
    manifest = {"config": dataclasses.asdict(config), "versions": provenance.versions(),
                "started": datetime.datetime.now().isoformat(timespec="seconds")}
  start_step = int(model.step.numpy())
  if not config.resume:
    manager.save(checkpoint_number=0)  # a good state to return to even if step 1 diverges
  manifest.update(status="running", g_lr=g_lr, constants=constants,
                  parameters={"generator": generator.count_params(),
                              "discriminator": discriminator.count_params()})
  run.write_manifest(manifest)
  console.progress(
      f"run {config.run_dir}: {config.dataset} {sample_shape}, {generator.name} "
      f"({generator.count_params():,} parameters) vs {discriminator.name} "
      f"({discriminator.count_params():,}), loss {config.gan.loss}, g_lr {g_lr:.6g}" +
      (f" = {config.g_lr_ratio} gamma*" if constants else "") +
      f"; steps {start_step} -> {config.steps}")

  extra = {"gamma_ratio": config.g_lr_ratio} if constants else {}
  monitor = RunMonitor(config, run, manager, provider, extra, evaluator)
  started = time.time()
  if start_step < config.steps:
    dataset = provider.dataset(config.batch_size, start_step=start_step,
                               batches_per_step=config.gan.n_disc).map(gan.batch_major)
    try:
      model.fit(dataset, steps_per_epoch=config.steps - start_step, epochs=1,
                verbose=verbose, callbacks=[monitor], shuffle=False)
    except KeyboardInterrupt:
      _save_interrupted(model, manager, run, manifest, time.time() - started)
  elapsed = time.time() - started
  monitor.writer.flush()

  if monitor.diverged:
    step, name, value = monitor.diverged
    manifest.update(status="diverged", diverged={"step": step, "metric": name, "value": value},
                    last_checkpoint_step=monitor.last_checkpoint_step)
    run.write_manifest(manifest)
    raise TrainingDiverged(
        f"diverged at step {step}: {name} = {value}; last good checkpoint: step "
        f"{monitor.last_checkpoint_step} in {run.checkpoints}")

  sampler = gan.GeneratorSampler(generator, config.noise_dim)
  tf.saved_model.save(sampler, run.generator_export)
  discriminator.export(run.discriminator_export, verbose=False)
  manifest.update(status="completed", final_step=int(model.step.numpy()),
                  final_metrics=monitor.last_logs,
                  finished=datetime.datetime.now().isoformat(timespec="seconds"),
                  train_seconds=manifest.get("train_seconds", 0.0) + elapsed)
  if monitor.coverage:
    manifest["mode_coverage"] = dataclasses.asdict(monitor.coverage)
  if not provider.is_image:
    write_snapshot_figure(run, provider)
  run.write_manifest(manifest)
  if config.eval_at_end and evaluator:
    console.progress("evaluating the final generator")
    manifest["metrics"] = evaluate.evaluate_run(run.path, config.evaluation, extractor)
    run.write_manifest(manifest)
  console.progress(f"done: {config.steps - start_step} steps in {elapsed:.0f} s; run directory "
                   f"{config.run_dir}")
  return manifest
