"""Frozen run configurations: the one place where every setting and its default is defined.

Each field is declared with ``setting``: its default, its flag's help text, allowed values and
bounds. ``tfsmooth.app.flags`` defines one command-line flag per field from that, and ``from_flags``
turns the parsed flags back into these dataclasses, field by field (a field's flag has the
field's name unless ``setting(flag=...)`` names another). A field declared ``trajectory=False``
(logging, checkpointing, evaluation) does not change the weights a run produces, so ``--resume``
may change it; every other field must match the run being resumed (``trajectory_changes``).

Imports no TensorFlow, so the command line can refuse a bad flag in a fraction of a second.
"""

from collections.abc import Mapping
import dataclasses
import json
import typing
from typing import Any

from tfsmooth import losses  # TF-free until a loss is computed

MODES = ("constants", "train", "eval", "train_classifier", "nk_toy", "sweep", "spectrum")
SPECTRUM_METHODS = ("auto", "dense", "arnoldi")  # tfsmooth.spectrum.eigenvalues(method=...)
# --toy: the two-parameter games of --mode=nk_toy (tfsmooth.app.nk_toy.GAMES) and the penalties
# each takes (the N&K toy none; the Dirac-GAN the zero-centred ones and WGAN-GP's).
TOY_PENALTIES = {"nk": ("none",), "dirac": ("none", "gp", "r1", "r2", "r1r2")}
SN_NORMS = ("exact", "kernel")
# The activations tfsmooth.layers registers at import (tests check the two lists agree).
BUILTIN_ACTIVATIONS = ("elu", "leaky_relu", "linear", "relu", "sigmoid", "softplus", "tanh")
# Network kinds, each built by tfsmooth.networks (tests check the builders cover exactly these).
# Spectrally normalised discriminators (conv7, mlp) are the ones Theorem 1's constants apply to.
DISCRIMINATORS = ("conv7", "mlp", "nk_mlp", "dcgan", "resnet", "metz")
SN_DISCRIMINATORS = ("conv7", "mlp", "resnet")
# The rank of the SN discriminators' --input_shape (constants mode).
INPUT_RANK = {"conv7": 3, "mlp": 1, "resnet": 3}
GENERATORS = ("particle", "mlp", "dcgan", "metz")
IMAGE_NETWORKS = ("conv7", "dcgan", "resnet", "metz")  # need image data (NHWC)
UPDATES = ("alternating", "simultaneous")  # tfsmooth.gan.SmoothGAN.UPDATES (a test checks)
OPTIMIZERS = ("adam", "sgd")
FEATURES = ("classifier", "inception")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")  # built by tfsmooth.distribute
# Multi-run experiments: each a module tfsmooth/experiments/NAME.py with experiment(SweepConfig).
EXPERIMENTS = ("chu_fig1", "nk_mog", "nk_fig3", "nk_stacked", "nk_spectrum", "dirac_fig1")
# --nk_schedule; their flag overrides: tfsmooth.experiments.nk_mog.SCHEDULES and
# tfsmooth.experiments.nk_stacked.SCHEDULES
NK_SCHEDULES = ("short", "paper", "smoke")
SWEEP_BACKENDS = ("local", "ray")  # --sweep_backend: tfsmooth.experiments.sweep, .ray_backend


def setting(default: Any, description: str | None = None, *, flag: str | None = None,
            trajectory: bool = True, choices: tuple[str, ...] | None = None,
            lower_bound: int | None = None):
  """A config field and its command-line flag: the one place both are described.

  Args:
    default: the field's and the flag's default.
    description: the flag's help; None where another config already describes the same flag.
    flag: the flag's name, if not the field's.
    trajectory: False for a setting that does not change the trained weights (logging,
      checkpointing, evaluation), which ``--resume`` may change.
    choices: the allowed values (an enum flag).
    lower_bound: the smallest allowed value of an integer flag.
  """
  metadata = {"help": description, "trajectory": trajectory, "choices": choices,
              "lower_bound": lower_bound}
  if flag:
    metadata["flag"] = flag
  return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
  """The discriminator: built by ``tfsmooth.app.build.build_discriminator`` for the constants
  report and for training runs alike."""

  kind: str = setting("conv7",
      "Discriminator: conv7 (the 7-layer SN conv net of Chu et al. Section 7), mlp (spectrally "
      "normalised MLP), nk_mlp (Nagarajan-Kolter's ReLU MLP on x/4), dcgan (plain DCGAN conv net),"
      " resnet (SNGAN-style residual SN net, bounded by the sum rule), metz (Metz et al.'s small "
      "stacked-MNIST conv net: --base_channels 2 is 1/4 of the metz generator, 4 is 1/2). "
      "constants mode: conv7, mlp or resnet.", flag="discriminator", choices=DISCRIMINATORS)
  base_channels: int = setting(64,
      "conv7/dcgan/resnet/metz: channels of the first convolution (the paper's 64 gives "
      "64..512).",
      lower_bound=1)
  hidden_units: tuple[int, ...] = setting((128, 128), "mlp/nk_mlp: hidden layer widths.")
  activation: str = setting("elu",
      "Discriminator activation; its (Lipschitz, smoothness) constants enter the bounds. "
      "relu/leaky_relu are not smooth (beta1 = inf).", choices=BUILTIN_ACTIVATIONS)
  alpha: float = setting(1.0,
      "Final scale alpha of the discriminator (its Lipschitz constant, condition D1).")
  sn_norm: str = setting("exact",
      "Spectral normalisation of convolutions: exact (operator norm of the convolution on its "
      "input shape) or kernel (Miyato et al.'s reshaped kernel; the convolution's norm can then "
      "exceed 1).", choices=SN_NORMS)


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
  """The generator: built by ``tfsmooth.app.build.build_generator``."""

  kind: str = setting("particle",
      "train: particle (Chu et al. Section 7: n x d trainable samples), mlp (Nagarajan-Kolter MoG "
      "generator), dcgan or metz (Metz et al.'s stacked-MNIST generator, 28x28 images).",
      flag="generator", choices=GENERATORS)
  n_particles: int = setting(50000, "Particle generator size n (A = 1/sqrt(n), B = 0).")
  particle_init_std: float = setting(1.0, "train: particles start from N(0, std^2).")
  noise_dim: int = setting(64, "train: latent dimension of mlp/dcgan/metz generators.",
                           lower_bound=1)
  hidden_units: tuple[int, ...] = setting((128, 128),
      "train: mlp generator hidden widths.", flag="g_hidden_units")
  base_channels: int = setting(64,
      "train: dcgan generator channels.", flag="g_base_channels", lower_bound=1)


@dataclasses.dataclass(frozen=True)
class ConstantsConfig:
  """What ``--mode=constants`` builds and reports (see tfsmooth.app.report)."""

  discriminator: DiscriminatorConfig = DiscriminatorConfig()
  input_shape: tuple[int, ...] = setting((32, 32, 3),
      "constants mode: discriminator input shape, H,W,C for conv7, D for mlp (train mode takes the"
      " shape from --dataset).")
  converge_spectral_norms: bool = setting(True,
      "Converge every spectral norm's power-iteration vector (SVD / Lanczos) before reporting; off"
      " reports the layers as initialised, with the random u a fresh layer starts from.")
  penalty_lambda: float = setting(1.0, "lambda of the RKHS penalty: beta2 = lambda/sigma^2.")
  kernel_sigma: float = setting(1.0, "Gaussian kernel bandwidth sigma of the RKHS penalty.")
  n_particles: int = setting(50000)  # described in GeneratorConfig
  generator_a: float | None = setting(None,
      "A (G1) of a parametric generator; give with --generator_b instead of using the particle "
      "generator.")
  generator_b: float | None = setting(None, "B (G2) of a parametric generator.")
  verify: bool = setting(False,
      "Also estimate the true Lipschitz constant and smoothness numerically and print them next to"
      " the bounds.")
  verify_starts: int = setting(16, "Verification: random starting points.", lower_bound=1)
  verify_steps: int = setting(30, "Verification: ascent steps per start.", lower_bound=0)
  seed: int = setting(0, "Random seed (weights, data order, latents, verification).")


@dataclasses.dataclass(frozen=True)
class _GANSettings:
  """The training objective and update scheme of ``tfsmooth.gan.SmoothGAN``. ``loss`` and
  ``penalty`` are names in the registries of ``tfsmooth.losses``; ``GANConfig`` adds the
  hyperparameters of every registered loss and penalty that these fields do not declare."""

  loss: str = setting("indicator", "train: base loss, a name in tfsmooth.losses.LOSSES")
  penalty: str = setting("rkhs",
      "train: discriminator penalty, a name in tfsmooth.losses.PENALTIES")
  penalty_lambda: float = setting(1.0)  # these two are described in ConstantsConfig
  kernel_sigma: float = setting(1.0)
  output_penalty_weight: float = setting(1.0, "train: weight of the rkhs output term phi^2.")
  gradient_penalty_weight: float = setting(1.0,
      "train: weight of the rkhs gradient term sigma^2/2 |grad phi|^2.")
  gp_weight: float = setting(10.0, "train: WGAN-GP weight (--penalty=gp).")
  n_disc: int = setting(2, "train: discriminator steps per generator step.", lower_bound=1)
  update: str = setting("alternating",
      "train: alternating (D steps, then G sees the new D) or simultaneous (the last D step and "
      "the G step at the same parameters; Nagarajan-Kolter).", choices=UPDATES)
  eta: float = setting(0.0,
      "train: Nagarajan-Kolter generator regulariser eta * |grad_{theta_D} V|^2 (0 = off).")
  unroll_steps: int = setting(0,
      "train: unrolled GAN (Metz et al. 2017), the baseline of Nagarajan-Kolter: the generator "
      "descends V at the discriminator after K differentiable optimiser steps on its batch (0 = "
      "off).", lower_bound=0)
  particle_batch: int = setting(0,
      "train: particles per generator step; 0 = all (the full gradient of Chu et al.'s analysis).",
      lower_bound=0)


def _objective_hyperparameters() -> list[tuple[str, type, dataclasses.Field]]:
  """A setting for each hyperparameter (a dataclass field) of a registered loss or penalty that
  ``_GANSettings`` does not declare, with the object's value as its default: a new penalty
  with its own weight gets its flag and its place in a run's manifest without an edit here
  (register it before this module is imported; docs/architecture.md)."""
  declared = {field.name for field in dataclasses.fields(_GANSettings)}
  added = {}
  for obj in (*losses.LOSSES.values(), *losses.PENALTIES.values()):
    for field in losses.hyperparameter_fields(obj):
      if field.name in declared or field.name in added:
        continue
      default = getattr(obj, field.name)
      help_text = field.metadata.get("help") or (
          f"train: {field.name} of the {obj.name} "
          f"{'penalty' if obj.name in losses.PENALTIES else 'loss'} ({type(obj).__name__}).")
      added[field.name] = (field.name, type(default), setting(default, help_text))
  return list(added.values())


GANConfig = dataclasses.make_dataclass("GANConfig", _objective_hyperparameters(),
                                       bases=(_GANSettings,), frozen=True)
GANConfig.__doc__ = _GANSettings.__doc__
GANConfig.__module__ = __name__


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """What to measure on generator samples (``tfsmooth.app.evaluate``)."""

  features: str = setting("classifier",
      "Features for FID/KID: classifier (a small conv net tfsmooth trains on the dataset, cached; "
      "offline default) or inception (TF-GAN's Inception pool_3 from --inception_module).",
      choices=FEATURES)
  inception_module: str = setting("",
      "A local SavedModel directory of TF-GAN's Inception module, or a TF-Hub handle already in "
      "the TF-Hub cache (default handle: TF-GAN's INCEPTION_TFHUB). Nothing is downloaded.")
  num_samples: int = setting(10000,
      "Samples per FID/KID draw (capped at the size of the real test split).",
      flag="eval_samples", lower_bound=2)
  repeats: int = setting(1,
      "Independent sample draws; mean and std are reported.", flag="eval_repeats", lower_bound=1)
  classifier_seed: int = setting(0,
      "Seed of the feature classifier (--mode=train_classifier trains it; eval loads it from the "
      "cache).")
  classifier_cache: str = setting("",
      "Classifier cache directory (default $TFSMOOTH_CACHE or ~/.cache/tfsmooth/classifiers).")
  train_classifier_if_missing: bool = setting(True,
      "train/eval: train and cache the feature classifier if it is not cached yet (a few minutes).")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One training run (``--mode=train``); written to the run directory's manifest."""

  run_dir: str | None = setting(None,
      "train, eval, nk_toy, spectrum: the run directory (manifest, TensorBoard logs, samples, "
      "checkpoints, SavedModels).",
      trajectory=False)
  dataset: str = setting("mnist", "train: dataset")
  data_dir: str = setting("",
      "train: TFDS data directory for tfds:NAME datasets.", trajectory=False)
  image_shape: tuple[int, ...] = setting((),
      "train: folder:PATH datasets: the shape H,W,C (C = 1 or 3) every image is resized to.")
  steps: int = setting(1000,
      "train: generator steps in total (a resumed run continues to this step).",
      trajectory=False, lower_bound=1)
  batch_size: int = setting(64, "train: real/fake examples per discriminator step.", lower_bound=1)
  generator: GeneratorConfig = GeneratorConfig()
  discriminator: DiscriminatorConfig = DiscriminatorConfig()
  gan: GANConfig = GANConfig()
  d_optimizer: str = setting("adam", "train: discriminator optimiser.", choices=OPTIMIZERS)
  d_lr: float = setting(1e-4, "train: discriminator learning rate.")
  d_beta1: float = setting(0.5, "train: discriminator Adam beta_1.")
  d_beta2: float = setting(0.999, "train: discriminator Adam beta_2.")
  g_optimizer: str = setting("sgd", "train: generator optimiser.", choices=OPTIMIZERS)
  g_lr: float = setting(1e-4, "train: generator learning rate (unless --g_lr_ratio).")
  g_lr_ratio: float | None = setting(None,
      "train: generator learning rate in units of gamma* (gamma/gamma*; particle generator with an"
      " SN discriminator).")
  g_beta1: float = setting(0.5, "train: generator Adam beta_1.")
  g_beta2: float = setting(0.999, "train: generator Adam beta_2.")
  g_ema: float = setting(0.0,
      "train: keep an exponential moving average of the generator's weights with this momentum "
      "(e.g. 0.999; 0 = off), in its optimiser's state (checkpointed); samples, evaluations and "
      "the exported generator use the average, training the weights themselves.")
  log_every: int = setting(10,
      "train: TensorBoard scalars every N steps.", trajectory=False, lower_bound=1)
  sample_every: int = setting(200,
      "train: sample grid every N steps.", trajectory=False, lower_bound=1)
  checkpoint_every: int = setting(200,
      "train: checkpoint every N steps.", trajectory=False, lower_bound=1)
  keep_checkpoints: int = setting(3, "train: checkpoints kept.", trajectory=False, lower_bound=1)
  steps_per_execution: int = setting(50,
      "train: at most this many steps per call into TensorFlow (Keras's steps_per_execution: "
      "less per-step overhead). A run takes the largest divisor of it that also divides "
      "--log_every, --sample_every, --checkpoint_every, --eval_every and the step it starts "
      "from, so scalars, samples, checkpoints and the NaN guard stay at their exact steps.",
      trajectory=False, lower_bound=1)
  resume: bool = setting(False,
      "train: continue the run in --run_dir from its latest checkpoint. Flags that change the "
      "trained weights must match the run; --steps, logging, checkpoint and evaluation flags may "
      "differ.", trajectory=False)
  eval_at_end: bool = setting(True,
      "train: evaluate the final generator (FID/KID or mode coverage) into manifest.json and "
      "metrics.json.", trajectory=False)
  stability_every: int = setting(100,
      "train: the live stability monitors every N steps (0 = off; at the end of the execution "
      "that reaches each multiple, exactly at it when N is a multiple of --log_every), in "
      "TensorBoard's group "
      "stability/: each spectrally normalised layer's true operator norm, the discriminator's "
      "empirical Lipschitz constant on real and generated samples against its bound alpha, beta1 "
      "and gamma* from the current weights, gamma/gamma*, g_grad_norm (tfsmooth.monitors).",
      trajectory=False, lower_bound=0)
  eval_every: int = setting(0,
      "train: also evaluate every N steps into TensorBoard (0 = only at the end).",
      trajectory=False, lower_bound=0)
  evaluation: EvalConfig = setting(EvalConfig(), trajectory=False)
  # Where to train. Not a trajectory setting: 1 or N replicas give the same weights to float
  # tolerance (tests/test_distribute.py), so a run may resume on another machine.
  strategy: str = setting("default",
      "train: tf.distribute strategy. default: one device; mirrored: all local GPUs (or "
      "--cpu_replicas CPU devices); multi_worker: MultiWorkerMirroredStrategy from TF_CONFIG; "
      "tpu: TPUStrategy for --tpu. --batch_size is the global batch.", choices=STRATEGIES,
      trajectory=False)
  cpu_replicas: int = setting(0,
      "train: with --strategy=mirrored, split the CPU into N logical devices, one replica each "
      "(for testing on a machine without GPUs; 0: use the GPUs).", lower_bound=0,
      trajectory=False)
  tpu: str = setting("",
      "train: with --strategy=tpu, the Cloud TPU's name, grpc://HOST:PORT, or local (a TPU VM).",
      trajectory=False)
  seed: int = setting(0)  # described in ConstantsConfig


@dataclasses.dataclass(frozen=True)
class ToyConfig:
  """``--mode=nk_toy``: one two-parameter game (``tfsmooth.app.nk_toy``)."""

  game: str = setting("nk",
      "nk_toy: nk (Nagarajan-Kolter's toy system, their Figure 3; --loss, --eta) or dirac "
      "(Mescheder et al.'s Dirac-GAN, their Figure 1; --loss, --eta, --penalty none/gp/r1/r2/"
      "r1r2 with --gp_weight/--r_gamma).", flag="toy", choices=tuple(TOY_PENALTIES))


@dataclasses.dataclass(frozen=True)
class SpectrumConfig:
  """``--mode=spectrum``: the eigenvalues of the game's Jacobian at a checkpoint of a run
  (``tfsmooth.app.spectrum``; Nagarajan and Kolter Section 3)."""

  run_dir: str | None = setting(None)  # described in TrainConfig
  step: int = setting(-1,
      "spectrum: the checkpoint's step (-1: the latest); the run keeps --keep_checkpoints of them.",
      flag="spectrum_step", lower_bound=-1)
  k: int = setting(6,
      "spectrum: eigenvalues of largest real part, and of largest modulus, to compute.",
      flag="spectrum_k", lower_bound=1)
  batch_size: int = setting(0,
      "spectrum: real samples in the fixed batch the Jacobian is taken on (0: the run's "
      "--batch_size; a particle generator's batch is its --n_particles).",
      flag="spectrum_batch", lower_bound=0)
  method: str = setting("auto",
      "spectrum: dense (form J, one Jacobian-vector product per parameter), arnoldi (ARPACK on "
      "Jacobian-vector products) or auto (dense up to tfsmooth.spectrum.DENSE_LIMIT parameters).",
      flag="spectrum_method", choices=SPECTRUM_METHODS)
  seed: int = setting(0,
      "spectrum: seed of the fixed batch, its latents and the penalty's interpolates.",
      flag="spectrum_seed")
  blocks: bool = setting(False,
      "spectrum: also the eigenvalues of largest real part of each player's diagonal block of "
      "the Jacobian (its own field against its own parameters): which player an unstable "
      "direction belongs to.", flag="spectrum_blocks")


def flag_name(field: dataclasses.Field) -> str:
  return field.metadata.get("flag", field.name)


def _leaves(cls, trajectory: bool = True):
  """``(flag name, field, whether it changes the trajectory)`` for every non-dataclass field of
  ``cls``, nested configs included (a nested config's fields inherit ``trajectory=False``)."""
  for field in dataclasses.fields(cls):
    moves = trajectory and field.metadata.get("trajectory", True)
    if dataclasses.is_dataclass(field.type):
      yield from _leaves(field.type, moves)
    else:
      yield flag_name(field), field, moves


@dataclasses.dataclass(frozen=True)
class SweepConfig:
  """``--mode=sweep``: a multi-run experiment (``tfsmooth.experiments``). For ``chu_fig1`` the
  members are training runs of ``train`` with settings drawn at random from the ``sweep_*``
  ranges; ``nk_mog`` runs the ``nk_methods`` flagfiles for each of ``sweep_seeds``; ``nk_fig3``
  the toy system for each loss and ``nk_etas``; ``nk_stacked`` stacked MNIST for each of
  ``stacked_sizes``, ``stacked_methods`` and ``sweep_seeds``."""

  train: TrainConfig = TrainConfig()
  experiment: str = setting(
      "chu_fig1", "sweep: the experiment. chu_fig1: Chu et al.'s Figure 1 (FID against "
      "gamma/gamma* over random settings); nk_mog: Nagarajan-Kolter's mixture of Gaussians, "
      "--nk_methods x --sweep_seeds; nk_fig3: Nagarajan-Kolter's toy system (Figure 3), "
      "streamlines and eigenvalues for the GAN and WGAN losses x --nk_etas; nk_stacked: stacked "
      "MNIST in Metz et al.'s setting, --stacked_sizes x --stacked_methods x --sweep_seeds; "
      "nk_spectrum: the game Jacobian's eigenvalues at every checkpoint of the nk_mog runs of eta "
      "= 0 and 0.5 (--nk_schedule, --sweep_seeds, --spectrum_k); dirac_fig1: Mescheder et al.'s "
      "Dirac-GAN (their Figure 1), GAN, WGAN, WGAN-GP and GAN + R1 at eta 0 and 0.5.",
      choices=EXPERIMENTS)
  sweep_dir: str = setting("", "sweep: the sweep directory (members' run directories, "
                           "results.json/.csv, the experiment's figures, TensorBoard HParams).")
  sweep_members: int = setting(12, "sweep: members (random settings) in the sweep.",
                               lower_bound=1)
  sweep_seed: int = setting(0, "sweep: seed of the members' random settings.")
  parallel: int = setting(
      2, "sweep: members trained at the same time, each on an equal share of the CPU threads "
      "(the default 2: measured 1.65x the throughput of one member on every thread on 2 cores, "
      "docs/chu_figure1.md). A member left to run alone gets every thread.", lower_bound=1)
  sweep_backend: str = setting(
      "local", "sweep: where members run. local: processes on this machine, --parallel at once; "
      "ray: Ray tasks on the cluster of --ray_address (or a Ray started on this machine), each "
      "with --member_cpus and --member_gpus, a killed member retried from its last checkpoint "
      "(docs/distributed.md).", choices=SWEEP_BACKENDS)
  ray_address: str = setting(
      "", "sweep --sweep_backend=ray: the Ray cluster (ray://HOST:10001, HOST:6379 or auto); "
      "empty: a Ray on this machine. --sweep_dir must be on storage every node mounts.")
  member_cpus: float = setting(
      1.0, "sweep --sweep_backend=ray: CPUs each member's task asks for (also its TensorFlow "
      "threads, rounded up; > 0).")
  member_gpus: float = setting(
      0.0, "sweep --sweep_backend=ray: GPUs each member's task asks for (Ray sets its "
      "CUDA_VISIBLE_DEVICES; a fraction shares a GPU; >= 0).")
  member_retries: int = setting(
      3, "sweep --sweep_backend=ray: times a killed member (signal, lost worker or node) is run "
      "again from its last checkpoint.", lower_bound=0)
  # Log-uniform ranges (low,high) of the settings Chu et al. drew at random (Section 7).
  sweep_alpha: tuple[float, ...] = setting((0.5, 5.0), "sweep: range of --alpha (log-uniform).")
  sweep_penalty_lambda: tuple[float, ...] = setting(
      (0.1, 10.0), "sweep: range of --penalty_lambda (log-uniform).")
  sweep_kernel_sigma: tuple[float, ...] = setting(
      (0.5, 5.0), "sweep: range of --kernel_sigma (log-uniform).")
  sweep_n_particles: tuple[float, ...] = setting(
      (256.0, 4096.0), "sweep: range of --n_particles (log-uniform, rounded).")
  sweep_g_lr_ratio: tuple[float, ...] = setting(
      (1e-2, 1e5), "sweep: range of --g_lr_ratio, gamma/gamma* (log-uniform).")
  sweep_g_lr_ratios: tuple[float, ...] = setting(
      (), "sweep chu_fig1: fixed values of gamma/gamma*, one member each (ratio_<value>), at the "
      "flags' own --alpha, --penalty_lambda, --kernel_sigma, --n_particles and --seed, in place "
      "of the random draws from the sweep_* ranges (runs/chu_fig1_long.flags: the long runs).")
  sweep_seeds: tuple[int, ...] = setting(
      (0, 1, 2), "sweep nk_mog, nk_stacked: training seeds (one member per method and seed).")
  nk_methods: tuple[str, ...] = setting(
      ("nk_mog_eta0.5", "nk_mog_eta0", "nk_mog_unrolled15"),
      "sweep nk_mog: the methods compared, each a flagfile runs/NAME.flags.")
  nk_schedule: str = setting(
      "short", "sweep nk_mog: paper: the flagfiles as they are (100,001 steps each); short: "
      "8,000 simultaneous steps at lr 1e-3; smoke: 20 such steps (an installation check). "
      "nk_stacked: paper and short: runs/nk_stacked_metz.flags as it is (short evaluates every "
      "2,500 steps); smoke: 20 steps.", choices=NK_SCHEDULES)
  stacked_methods: tuple[str, ...] = setting(
      ("plain", "eta0.005", "eta0.05", "unrolled5"),
      "sweep nk_stacked: the methods compared: plain, eta<value> (Nagarajan-Kolter's regulariser "
      "weight; the defaults put the regulariser's gradient at 1/8 to 1/5 and 1.2 to 2 times the "
      "loss's at the start, docs/nagarajan_kolter.md), unrolled<K> (Metz et al.'s unrolled GAN, K "
      "steps).")
  stacked_sizes: tuple[str, ...] = setting(
      ("quarter", "half"), "sweep nk_stacked: discriminator sizes, quarter and/or half (of the "
      "generator's channels, Metz et al. Table 2).")
  nk_etas: tuple[float, ...] = setting(
      (0.0, 0.25, 0.5, 1.0), "sweep nk_fig3: the values of eta, one member per loss and eta.")
  spectrum: SpectrumConfig = SpectrumConfig()  # nk_spectrum: the spectrum flags


# The configs built from flags.
CONFIGS = (ConstantsConfig, TrainConfig, SweepConfig, SpectrumConfig, ToyConfig)


def flag_fields() -> dict[str, dataclasses.Field]:
  """``{flag name: the field that describes it}`` over every config built from flags, in
  definition order: what ``tfsmooth.app.flags`` defines. A flag shared by two configs (``--seed``,
  ``--penalty_lambda``) has one default and one description; a disagreement is a bug."""
  fields = {}
  for cls in CONFIGS:
    for name, field, _ in _leaves(cls):
      first = fields.setdefault(name, field)
      if first.default != field.default:
        raise AssertionError(f"--{name}: defaults differ between configs ({first.default!r}, "
                             f"{field.default!r})")
      if field.metadata.get("help") and not first.metadata.get("help"):
        fields[name] = field
  undescribed = [name for name, field in fields.items() if not field.metadata.get("help")]
  if undescribed:
    raise AssertionError(f"flags without a description: {', '.join(undescribed)}")
  return fields


def from_flags(cls, values: Mapping[str, Any]):
  """The config ``cls`` with every field from ``values`` (``{flag name: parsed value}``); list
  flags become tuples of the annotation's element type."""
  kwargs = {}
  for field in dataclasses.fields(cls):
    if dataclasses.is_dataclass(field.type):
      kwargs[field.name] = from_flags(field.type, values)
      continue
    value = values[flag_name(field)]
    if isinstance(value, list):  # a list flag: elements of the annotation's type
      element = typing.get_args(field.type)[0]
      value = tuple(element(v) for v in value)
    kwargs[field.name] = value
  return cls(**kwargs)


def settings(config) -> dict[str, Any]:
  """``{flag name: value}`` of every field of ``config`` (as JSON would store it): the flat view
  a run's manifest records and ``--resume`` compares."""
  flat = {}
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if dataclasses.is_dataclass(value):
      flat.update(settings(value))
    else:
      flat[flag_name(field)] = json.loads(json.dumps(value))
  return flat


def _flatten(recorded: Mapping[str, Any]) -> dict[str, Any]:
  """A manifest's nested ``config`` dict as ``{leaf name: value}`` (older manifests, written
  before ``settings`` existed, named their leaves by flag name too)."""
  flat = {}
  for value in recorded.values():
    if isinstance(value, dict):
      flat.update(_flatten(value))
  # An outer setting wins over a nested one of the same name (an old gan.seed vs the run's seed).
  flat.update({key: value for key, value in recorded.items() if not isinstance(value, dict)})
  return flat


def trajectory_changes(recorded: Mapping[str, Any], config: TrainConfig) -> list[str]:
  """The flags of ``config`` that would change the trained weights compared with ``recorded``
  (a run's ``settings``, or an older manifest's ``config``), as ``--name: old -> new``.

  A setting the recorded run does not have (added to tfsmooth since) is compared with its
  default, which reproduces what the older code did; settings tfsmooth no longer has are ignored.
  """
  recorded = _flatten(recorded)
  now = settings(config)
  changes = []
  for name, field, moves in _leaves(TrainConfig):
    if not moves:
      continue
    before = recorded.get(name, json.loads(json.dumps(field.default)))
    if before != now[name]:
      changes.append(f"--{name}: {before} -> {now[name]}")
  return changes


def make(cls, **flag_settings):
  """``cls`` from settings named by flag (``make(TrainConfig, loss="wgan", hidden_units=(64,))``),
  every other field at its default: the Python spelling of a command line."""
  values = {name: field.default for name, field, _ in _leaves(cls)}
  unknown = sorted(set(flag_settings) - set(values))
  if unknown:
    raise TypeError(f"{cls.__name__} has no setting {', '.join(unknown)}")
  return from_flags(cls, {**values, **flag_settings})


def from_settings(cls, recorded: Mapping[str, Any], **overrides):
  """``cls`` from a run's recorded ``settings`` (its manifest), ``overrides`` on top: a setting
  the run does not record (added to tfsmooth since) takes its default, one tfsmooth no longer
  has is ignored, as ``trajectory_changes`` does."""
  recorded = _flatten(recorded)
  values = {name: recorded[name] for name, _, _ in _leaves(cls) if name in recorded}
  return make(cls, **{**values, **overrides})
