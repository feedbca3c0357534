"""Every command-line flag of ``python -m tfsmooth.main``, with validators.

One flag per config field (``tfsmooth.app.config``, where each setting's default, help text, choices
and bounds are written once), plus ``--mode`` and ``--output_json``;
``constants_config`` / ``train_config`` / ``eval_config`` turn the parsed flags back into the
configs. Validators run when the flags are parsed, so a bad value is refused with one line naming
the flag before TensorFlow loads or any model is built.
"""

import dataclasses
import math
import os
import types
import typing

from absl import flags

from tfsmooth import data
from tfsmooth import losses
from tfsmooth.app import config
from tfsmooth.experiments import nk_mog
from tfsmooth.experiments import nk_stacked

FLAGS = flags.FLAGS

flags.DEFINE_enum("mode", "constants", config.MODES,
                  "What to run. constants: build the discriminator and print its Lipschitz and "
                  "smoothness bounds, beta2, L and gamma* (Chu et al. Theorem 1). train: a "
                  "training run writing --run_dir. eval: FID/KID or mode coverage of a run. "
                  "train_classifier: the feature classifier of --dataset. nk_toy: Nagarajan-"
                  "Kolter's toy system (Figure 3) for one --loss (minimax or wgan) and --eta: "
                  "streamlines and Jacobian eigenvalues into --run_dir. sweep: a multi-run "
                  "experiment (--experiment) into --sweep_dir. spectrum: the eigenvalues of the "
                  "game's Jacobian at a checkpoint of --run_dir (Nagarajan-Kolter Section 3), "
                  "into --run_dir/spectrum.json.")
flags.DEFINE_string("output_json", "", "constants: also write the report as JSON to this file.")

# What the registries hold, listed in the help of the flags that name their entries.
_REGISTRY_HELP = {
    "loss": "; ".join(f"{spec.name}: {spec.description}" for spec in losses.LOSSES.values()),
    "penalty": "; ".join(f"{name}: {description}"
                         for name, description in losses.describe_penalties().items()),
    "dataset": "; ".join(f"{name}: {description}"
                         for name, description in data.describe_datasets().items()),
}


def _define(name: str, field: dataclasses.Field) -> None:
  """The flag of one config field, typed by the field's annotation."""
  meta = field.metadata
  help_text = meta["help"] + (f": {_REGISTRY_HELP[name]}." if name in _REGISTRY_HELP else "")
  kind = field.type
  if isinstance(kind, types.UnionType):  # `float | None`: an optional value
    kind = next(t for t in typing.get_args(kind) if t is not type(None))
  if meta["choices"]:
    flags.DEFINE_enum(name, field.default, meta["choices"], help_text)
  elif kind is bool:
    flags.DEFINE_boolean(name, field.default, help_text)
  elif kind is int:
    flags.DEFINE_integer(name, field.default, help_text, lower_bound=meta["lower_bound"])
  elif kind is float:
    flags.DEFINE_float(name, field.default, help_text)
    # inf and nan pass every range check written as a comparison; refuse them first.
    flags.register_validator(name, lambda v: v is None or math.isfinite(v),
                             message="must be a finite number")
  elif kind is str:
    flags.DEFINE_string(name, field.default, help_text)
  elif typing.get_origin(kind) is tuple:
    flags.DEFINE_list(name, [str(v) for v in field.default], help_text)
  else:
    raise TypeError(f"--{name}: no flag type for a config field of type {field.type}")


for _name, _field in config.flag_fields().items():
  _define(_name, _field)


def _positive(name):
  flags.register_validator(name, lambda v: v is None or v > 0, message="must be > 0")


def _non_negative(name):
  flags.register_validator(name, lambda v: v is None or v >= 0, message="must be >= 0")


for _name in ("alpha", "penalty_lambda", "kernel_sigma", "d_lr", "g_lr", "g_lr_ratio",
              "particle_init_std"):
  _positive(_name)
for _name in ("generator_a", "generator_b", "eta", "output_penalty_weight",
              "gradient_penalty_weight", "gp_weight", "r_gamma"):
  _non_negative(_name)
flags.register_validator(
    "output_json", lambda v: not v or os.path.isdir(os.path.dirname(os.path.abspath(v))),
    message="its directory does not exist")
flags.register_validator("n_particles", lambda v: v >= 1, message="must be >= 1")
# NumPy's seeds: 32-bit, unsigned.
for _name in ("seed", "classifier_seed", "sweep_seed", "spectrum_seed"):
  flags.register_validator(_name, lambda v: 0 <= v < 2**32, message="must be in [0, 2^32)")


def _int_list(values, minimum: int | None = 1):
  try:
    numbers = [int(v) for v in values]
  except ValueError:
    return None
  return numbers if numbers and all(minimum is None or n >= minimum for n in numbers) else None


flags.register_validator("input_shape", lambda v: _int_list(v) is not None,
                         message="must be a comma-separated list of positive integers")
for _name in ("hidden_units", "g_hidden_units"):
  flags.register_validator(_name, lambda v: _int_list(v) is not None,
                           message="must be a comma-separated list of positive integers")
for _name in ("d_beta1", "d_beta2", "g_beta1", "g_beta2", "g_ema"):
  flags.register_validator(_name, lambda v: 0 <= v < 1, message="must be in [0, 1)")
flags.register_validator("member_cpus", lambda v: 0 < v < float("inf"), message="must be > 0")
flags.register_validator("member_gpus", lambda v: 0 <= v < float("inf"), message="must be >= 0")
flags.register_validator("loss", lambda v: v in losses.LOSSES,
                         message=f"must be one of {', '.join(losses.LOSSES)}")
flags.register_validator("penalty", lambda v: v in losses.penalty_names(),
                         message=f"must be one of {', '.join(losses.penalty_names())}")


def _is_finite_list(values, low: float) -> bool:
  try:
    numbers = [float(v) for v in values]
  except ValueError:
    return False
  return bool(numbers) and all(low <= n < float("inf") for n in numbers)


def _is_range(values) -> bool:
  try:
    low, high = (float(v) for v in values)
  except ValueError:
    return False
  return 0 < low <= high < float("inf")


for _name in ("sweep_alpha", "sweep_penalty_lambda", "sweep_kernel_sigma", "sweep_n_particles",
              "sweep_g_lr_ratio"):
  flags.register_validator(_name, _is_range, message="must be LOW,HIGH with 0 < LOW <= HIGH")


def _is_ratio_list(values) -> bool:
  """Distinct numbers > 0, distinct also as member names (``ratio_{value:g}``)."""
  if not _is_finite_list(values, low=0.0):
    return False
  numbers = [float(v) for v in values]
  return min(numbers) > 0 and len({f"{n:g}" for n in numbers}) == len(numbers)


flags.register_validator("sweep_g_lr_ratios", lambda v: not v or _is_ratio_list(v),
                         message="must be a comma-separated list of distinct numbers > 0")


@flags.multi_flags_validator(["mode", "sweep_dir"], message="--mode=sweep needs --sweep_dir")
def _check_sweep(values):
  return values["mode"] != "sweep" or bool(values["sweep_dir"])


@flags.multi_flags_validator(["mode", "experiment", "g_lr_ratio"],
                             message="--experiment=chu_fig1 needs --g_lr_ratio (the sweep draws "
                             "gamma/gamma*)")
def _check_chu_sweep(values):
  return (values["mode"] != "sweep" or values["experiment"] != "chu_fig1"
          or bool(values["g_lr_ratio"]))


@flags.multi_flags_validator(["mode", "experiment", "nk_methods"])
def _check_methods(values):
  if values["mode"] != "sweep" or values["experiment"] != "nk_mog":
    return True
  missing = nk_mog.missing_method(values["nk_methods"])
  if missing:
    raise flags.ValidationError(f"--nk_methods: no flagfile tfsmooth/runs/{missing}.flags")
  return True
flags.register_validator(
    "stacked_methods", lambda v: bool(v) and nk_stacked.invalid_method(v) is None,
    message="must be a comma-separated list of plain, eta<value > 0> and unrolled<K > 0> "
    "(e.g. plain,eta0.5,unrolled5)")
flags.register_validator(
    "stacked_sizes", lambda v: bool(v) and all(size in nk_stacked.SIZES for size in v),
    message=f"must be a comma-separated list of {', '.join(nk_stacked.SIZES)}")
flags.register_validator("sweep_seeds", lambda v: _int_list(v, minimum=0) is not None and all(
    int(s) < 2**32 for s in v), message="must be a comma-separated list of integers in [0, 2^32)")
flags.register_validator("nk_etas", lambda v: _is_finite_list(v, low=0.0),
                         message="must be a comma-separated list of numbers >= 0")


@flags.multi_flags_validator(["mode", "loss"], message="--mode=nk_toy needs --loss=minimax or "
                             "--loss=wgan (the toy system's GAN and WGAN)")
def _check_toy_loss(values):
  return values["mode"] != "nk_toy" or values["loss"] in ("minimax", "wgan")


@flags.multi_flags_validator(
    ["mode", "toy", "penalty"],
    message="--mode=nk_toy --toy=dirac takes --penalty="
    f"{'/'.join(config.TOY_PENALTIES['dirac'])} (the N&K toy takes none and ignores --penalty)")
def _check_toy_penalty(values):
  return (values["mode"] != "nk_toy" or values["toy"] != "dirac"
          or values["penalty"] in config.TOY_PENALTIES["dirac"])


def _trains_discriminator(loss: str) -> bool:
  return loss not in losses.LOSSES or losses.LOSSES[loss].trains_discriminator


@flags.multi_flags_validator(["mode", "run_dir"],
                             message="--mode=train, eval, nk_toy and spectrum need --run_dir")
def _check_run_dir(values):
  return values["mode"] not in ("train", "eval", "nk_toy", "spectrum") or bool(values["run_dir"])


@flags.multi_flags_validator(
    ["g_lr_ratio", "generator", "discriminator", "activation", "loss"],
    message="--g_lr_ratio (gamma/gamma*) needs --generator=particle, an SN discriminator "
    f"(--discriminator={'/'.join(config.SN_DISCRIMINATORS)}) with a smooth --activation, and a "
    "loss with a discriminator; otherwise give --g_lr")
def _check_gamma_ratio(values):
  if values["g_lr_ratio"] is None:
    return True
  return (values["generator"] == "particle" and values["discriminator"] in config.SN_DISCRIMINATORS
          and values["activation"] not in ("relu", "leaky_relu")
          and _trains_discriminator(values["loss"]))


@flags.multi_flags_validator(["generator", "discriminator", "dataset"],
                             message="--generator=dcgan and --discriminator="
                             f"{'/'.join(config.IMAGE_NETWORKS)} need an image --dataset")
def _check_image_networks(values):
  try:
    images = data.is_image_dataset(values["dataset"])
  except ValueError:  # an unknown name: refused by the dataset check, with the known names
    return True
  return images or (values["generator"] not in config.IMAGE_NETWORKS and
                    values["discriminator"] not in config.IMAGE_NETWORKS)


@flags.multi_flags_validator(["mode", "discriminator"],
                             message="--mode=constants needs --discriminator="
                             f"{'/'.join(config.SN_DISCRIMINATORS)} (the others are not "
                             "spectrally normalised)")
def _check_constants_discriminator(values):
  return values["mode"] != "constants" or values["discriminator"] in config.SN_DISCRIMINATORS


@flags.multi_flags_validator(["mode", "discriminator", "input_shape"],
                             message="--input_shape must be H,W,C for --discriminator=conv7 "
                             "and D for --discriminator=mlp")
def _check_input_rank(values):
  if values["mode"] != "constants" or values["discriminator"] not in config.SN_DISCRIMINATORS:
    return True
  shape = _int_list(values["input_shape"]) or []
  return len(shape) == config.INPUT_RANK[values["discriminator"]]


@flags.multi_flags_validator(["generator_a", "generator_b"],
                             message="--generator_a and --generator_b must be given together")
def _check_generator(values):
  return (values["generator_a"] is None) == (values["generator_b"] is None)


@flags.multi_flags_validator(
    ["unroll_steps", "eta", "loss", "penalty"],
    message="--unroll_steps needs --eta=0 (two different generator objectives), a loss with a "
    "discriminator (not mmd) and --penalty=none (a penalty would need third derivatives)")
def _check_unrolling(values):
  no_penalty = values["penalty"] == losses.NO_PENALTY
  return values["unroll_steps"] == 0 or (values["eta"] == 0 and no_penalty
                                         and _trains_discriminator(values["loss"]))


def _values() -> dict:
  return {name: FLAGS[name].value for name in FLAGS}


def constants_config() -> config.ConstantsConfig:
  """The parsed flags as the frozen config ``report.run_constants`` takes."""
  return config.from_flags(config.ConstantsConfig, _values())


def train_config() -> config.TrainConfig:
  """The parsed flags as the frozen config ``tfsmooth.app.train.train`` takes."""
  return config.from_flags(config.TrainConfig, _values())


def sweep_config() -> config.SweepConfig:
  """The parsed flags as the frozen config ``tfsmooth.experiments.chu_fig1.run`` takes."""
  return config.from_flags(config.SweepConfig, _values())


def toy_config() -> config.ToyConfig:
  """The --toy flag as the frozen config ``tfsmooth.app.nk_toy.run`` takes."""
  return config.from_flags(config.ToyConfig, _values())


def spectrum_config() -> config.SpectrumConfig:
  """The spectrum flags as the frozen config ``tfsmooth.app.spectrum.run`` takes."""
  return config.from_flags(config.SpectrumConfig, _values())


def eval_config() -> config.EvalConfig:
  """The evaluation flags as the frozen config ``tfsmooth.app.evaluate`` takes."""
  return config.from_flags(config.EvalConfig, _values())
