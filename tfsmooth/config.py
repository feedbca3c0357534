"""Frozen run configurations and the choices flags offer. Imports no TensorFlow, so the command
line can refuse a bad flag in a fraction of a second, before TensorFlow loads."""

import dataclasses

MODES = ("constants",)
ARCHITECTURES = ("conv7", "mlp")
INPUT_RANK = {"conv7": 3, "mlp": 1}
SN_NORMS = ("exact", "kernel")
# The activations tfsmooth.layers registers at import (tests check the two lists agree).
BUILTIN_ACTIVATIONS = ("elu", "leaky_relu", "linear", "relu", "sigmoid", "softplus", "tanh")


@dataclasses.dataclass(frozen=True)
class ConstantsConfig:
  """What ``--mode=constants`` builds and reports (see tfsmooth.report)."""

  architecture: str = "conv7"
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
  particle_batch: int = 0  # particle generator step: 0 = all particles, else a random batch
  seed: int = 0
