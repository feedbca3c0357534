"""Frozen run configurations and the choices flags offer. Imports no TensorFlow, so the command
line can refuse a bad flag in a fraction of a second, before TensorFlow loads."""

import dataclasses

MODES = ("constants", "train", "eval", "train_classifier", "nk_toy")
INPUT_RANK = {"conv7": 3, "mlp": 1}
SN_NORMS = ("exact", "kernel")
# The activations tfsmooth.layers registers at import (tests check the two lists agree).
BUILTIN_ACTIVATIONS = ("elu", "leaky_relu", "linear", "relu", "sigmoid", "softplus", "tanh")


@dataclasses.dataclass(frozen=True)
class ConstantsConfig:
  """What ``--mode=constants`` builds and reports (see tfsmooth.report)."""

  discriminator: str = "conv7"
  input_shape: tuple[int, ...] = (32, 32, 3)
  base_channels: int = 64
  hidden_units: tuple[int, ...] = (128, 128)
  activation: str = "elu"
  alpha: float = 1.0
  sn_norm: str = "exact"
  converge_spectral_norms: bool = True
  penalty_lambda: float = 1.0
  kernel_sigma: float = 1.0
  n_particles: int = 50000
  generator_a: float | None = None
  generator_b: float | None = None
  verify: bool = False
  verify_starts: int = 16
  verify_steps: int = 30
  seed: int = 0


BASE_LOSSES = ("indicator", "minimax", "non_saturating", "wgan", "mmd")
PENALTIES = ("rkhs", "gp", "none")
UPDATES = ("alternating", "simultaneous")


@dataclasses.dataclass(frozen=True)
class GANConfig:
  """The training objective and update scheme of ``tfsmooth.gan.SmoothGAN``."""

  loss: str = "indicator"
  penalty: str = "rkhs"
  penalty_lambda: float = 1.0
  kernel_sigma: float = 1.0
  output_penalty_weight: float = 1.0
  gradient_penalty_weight: float = 1.0
  gp_weight: float = 10.0
  n_disc: int = 2
  update: str = "alternating"
  eta: float = 0.0
  unroll_steps: int = 0  # unrolled GAN (Metz et al. 2017): G descends V at D after K steps
  particle_batch: int = 0  # particle generator step: 0 = all particles, else a random batch
  seed: int = 0


FEATURES = ("classifier", "inception")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """What to measure on generator samples (``tfsmooth.evaluate``)."""

  features: str = "classifier"
  inception_module: str = ""  # local SavedModel dir or a TF-Hub handle already in the cache
  num_samples: int = 10000
  repeats: int = 1
  classifier_seed: int = 0
  classifier_cache: str = ""
  train_classifier_if_missing: bool = True


DATASETS_HELP = "mog_ring, mog_grid, uniform1d, mnist, fashion_mnist, stacked_mnist, tfds:NAME"
GENERATORS = ("particle", "mlp", "dcgan")
DISCRIMINATORS = ("conv7", "mlp", "nk_mlp", "dcgan")
OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One training run (``--mode=train``); written to the run directory's manifest."""

  run_dir: str
  dataset: str = "mnist"
  data_dir: str = ""
  steps: int = 1000
  batch_size: int = 64
  # Generator.
  generator: str = "particle"
  n_particles: int = 1024
  particle_init_std: float = 1.0
  noise_dim: int = 64
  g_hidden_units: tuple[int, ...] = (128, 128)
  g_base_channels: int = 64
  # Discriminator.
  discriminator: str = "conv7"
  base_channels: int = 64
  hidden_units: tuple[int, ...] = (128, 128)
  activation: str = "elu"
  alpha: float = 1.0
  sn_norm: str = "exact"
  # Objective and updates.
  gan: GANConfig = GANConfig()
  # Optimisers (g_lr_ratio: generator learning rate in units of gamma*; else g_lr).
  d_optimizer: str = "adam"
  d_lr: float = 1e-4
  d_beta1: float = 0.5
  d_beta2: float = 0.999
  g_optimizer: str = "sgd"
  g_lr: float = 1e-4
  g_lr_ratio: float | None = None
  g_beta1: float = 0.5
  g_beta2: float = 0.999
  # Run directory.
  log_every: int = 10
  sample_every: int = 200
  checkpoint_every: int = 200
  keep_checkpoints: int = 3
  resume: bool = False
  # Evaluation (FID/KID or mode metrics) at the end and every eval_every steps (0: end only).
  eval_at_end: bool = True
  eval_every: int = 0
  evaluation: EvalConfig = EvalConfig()
  seed: int = 0
