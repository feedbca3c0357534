"""Frozen run configurations: the one place where every setting and its default is defined.

The command-line flags (``tfsmooth.flags``) take their defaults from these dataclasses and are
turned back into them by ``from_flags``, field by field: a field's flag has the field's name
unless its metadata names another (``flag``). A field whose metadata says ``trajectory=False``
(logging, checkpointing, evaluation) does not change the weights a run produces, so ``--resume``
may change it; every other field must match the run being resumed (``trajectory_changes``).

Imports no TensorFlow, so the command line can refuse a bad flag in a fraction of a second.
"""

from collections.abc import Mapping
import dataclasses
import json
from typing import Any

MODES = ("constants", "train", "eval", "train_classifier", "nk_toy")
SN_NORMS = ("exact", "kernel")
# The activations tfsmooth.layers registers at import (tests check the two lists agree).
BUILTIN_ACTIVATIONS = ("elu", "leaky_relu", "linear", "relu", "sigmoid", "softplus", "tanh")
# Network kinds, each built by tfsmooth.networks (tests check the builders cover exactly these).
# Spectrally normalised discriminators (conv7, mlp) are the ones Theorem 1's constants apply to.
DISCRIMINATORS = ("conv7", "mlp", "nk_mlp", "dcgan")
SN_DISCRIMINATORS = ("conv7", "mlp")
INPUT_RANK = {"conv7": 3, "mlp": 1, "nk_mlp": 1, "dcgan": 3}
GENERATORS = ("particle", "mlp", "dcgan")
IMAGE_NETWORKS = ("conv7", "dcgan")  # need image data (NHWC)
UPDATES = ("alternating", "simultaneous")
OPTIMIZERS = ("adam", "sgd")
FEATURES = ("classifier", "inception")


def _flag(name: str, default: Any = dataclasses.MISSING):
  """A field whose command-line flag is ``--name`` rather than the field's own name."""
  return dataclasses.field(default=default, metadata={"flag": name})


def _not_trajectory(default: Any):
  """A field that does not change the trained weights (``--resume`` may change it)."""
  return dataclasses.field(default=default, metadata={"trajectory": False})


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
  """The discriminator: built by ``tfsmooth.networks.build_discriminator`` for the constants
  report and for training runs alike."""

  kind: str = _flag("discriminator", "conv7")
  base_channels: int = 64  # conv7 / dcgan: channels of the first convolution
  hidden_units: tuple[int, ...] = (128, 128)  # mlp / nk_mlp
  activation: str = "elu"
  alpha: float = 1.0  # final scale: the Lipschitz constant (condition D1)
  sn_norm: str = "exact"


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
  """The generator: built by ``tfsmooth.networks.build_generator``."""

  kind: str = _flag("generator", "particle")
  n_particles: int = 50000  # particle: n, so A = 1/sqrt(n)
  particle_init_std: float = 1.0
  noise_dim: int = 64  # mlp / dcgan latent size
  hidden_units: tuple[int, ...] = _flag("g_hidden_units", (128, 128))
  base_channels: int = _flag("g_base_channels", 64)


@dataclasses.dataclass(frozen=True)
class ConstantsConfig:
  """What ``--mode=constants`` builds and reports (see tfsmooth.report)."""

  discriminator: DiscriminatorConfig = DiscriminatorConfig()
  input_shape: tuple[int, ...] = (32, 32, 3)
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


@dataclasses.dataclass(frozen=True)
class GANConfig:
  """The training objective and update scheme of ``tfsmooth.gan.SmoothGAN``. ``loss`` and
  ``penalty`` are names in the registries of ``tfsmooth.losses``."""

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


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """What to measure on generator samples (``tfsmooth.evaluate``)."""

  features: str = "classifier"
  inception_module: str = ""  # local SavedModel dir or a TF-Hub handle already in the cache
  num_samples: int = _flag("eval_samples", 10000)
  repeats: int = _flag("eval_repeats", 1)
  classifier_seed: int = 0
  classifier_cache: str = ""
  train_classifier_if_missing: bool = True


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One training run (``--mode=train``); written to the run directory's manifest."""

  run_dir: str = _not_trajectory(None)
  dataset: str = "mnist"
  data_dir: str = _not_trajectory("")  # where the files are, not which data
  steps: int = _not_trajectory(1000)  # a resumed run continues to this step
  batch_size: int = 64
  generator: GeneratorConfig = GeneratorConfig()
  discriminator: DiscriminatorConfig = DiscriminatorConfig()
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
  log_every: int = _not_trajectory(10)
  sample_every: int = _not_trajectory(200)
  checkpoint_every: int = _not_trajectory(200)
  keep_checkpoints: int = _not_trajectory(3)
  resume: bool = _not_trajectory(False)
  # Evaluation (FID/KID or mode metrics) at the end and every eval_every steps (0: end only).
  eval_at_end: bool = _not_trajectory(True)
  eval_every: int = _not_trajectory(0)
  evaluation: EvalConfig = _not_trajectory(EvalConfig())
  seed: int = 0  # weights, data order, latents and interpolation weights


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


CONFIGS = (ConstantsConfig, TrainConfig)  # the configs built from flags


def flag_defaults() -> dict[str, Any]:
  """``{flag name: default}`` of every config field: the flags' defaults. A flag shared by two
  configs (``--seed``, ``--penalty_lambda``) must have one default; a disagreement is a bug."""
  defaults = {}
  for cls in CONFIGS:
    for name, field, _ in _leaves(cls):
      if name in defaults and defaults[name] != field.default:
        raise AssertionError(f"--{name}: defaults differ between configs ({defaults[name]!r}, "
                             f"{field.default!r})")
      defaults[name] = field.default
  return defaults


def from_flags(cls, values: Mapping[str, Any]):
  """The config ``cls`` with every field from ``values`` (``{flag name: parsed value}``); list
  flags become tuples of ints."""
  kwargs = {}
  for field in dataclasses.fields(cls):
    if dataclasses.is_dataclass(field.type):
      kwargs[field.name] = from_flags(field.type, values)
      continue
    value = values[flag_name(field)]
    if isinstance(value, list):
      value = tuple(int(v) for v in value)
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
