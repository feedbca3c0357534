"""Every command-line flag of ``python -m tfsmooth.main``, with help text and validators.

Defaults come from the config dataclasses (``tfsmooth.config``, the one place a default is
written) and ``constants_config`` / ``train_config`` / ``eval_config`` turn the parsed flags back
into them. Validators run when the flags are parsed, so a bad value is refused with one line
naming the flag before TensorFlow loads or any model is built.
"""

import os

from absl import flags

from tfsmooth import config
from tfsmooth import data
from tfsmooth import losses

FLAGS = flags.FLAGS
_DEFAULTS = {name: [str(v) for v in value] if isinstance(value, tuple) else value
             for name, value in config.flag_defaults().items()}

flags.DEFINE_enum("mode", "constants", config.MODES,
                  "What to run. constants: build the discriminator and print its Lipschitz and "
                  "smoothness bounds, beta2, L and gamma* (Chu et al. Theorem 1). train: a "
                  "training run writing --run_dir. eval: FID/KID or mode coverage of a run. "
                  "train_classifier: the feature classifier of --dataset. nk_toy: Nagarajan-"
                  "Kolter's toy system (Figure 3): streamlines and Jacobian eigenvalues into "
                  "--run_dir.")
flags.DEFINE_integer(
    "seed", _DEFAULTS["seed"],
    "Random seed (weights, data order, latents, verification).")

# Discriminator.
flags.DEFINE_enum("discriminator", _DEFAULTS["discriminator"], config.DISCRIMINATORS,
                  "Discriminator: conv7 (the 7-layer SN conv net of Chu et al. Section 7), mlp "
                  "(spectrally normalised MLP), nk_mlp (Nagarajan-Kolter's ReLU MLP on x/4), "
                  "dcgan (plain DCGAN conv net). constants mode: conv7 or mlp.")
flags.DEFINE_list("input_shape", _DEFAULTS["input_shape"],
                  "constants mode: discriminator input shape, H,W,C for conv7, D for mlp "
                  "(train mode takes the shape from --dataset).")
flags.DEFINE_integer(
    "base_channels", _DEFAULTS["base_channels"],
    "conv7/dcgan: channels of the first convolution (the paper's 64 gives 64..512).", lower_bound=1)
flags.DEFINE_list("hidden_units", _DEFAULTS["hidden_units"], "mlp/nk_mlp: hidden layer widths.")
flags.DEFINE_enum("activation", _DEFAULTS["activation"], config.BUILTIN_ACTIVATIONS,
                  "Discriminator activation; its (Lipschitz, smoothness) constants enter the "
                  "bounds. relu/leaky_relu are not smooth (beta1 = inf).")
flags.DEFINE_float(
    "alpha", _DEFAULTS["alpha"],
    "Final scale alpha of the discriminator (its Lipschitz constant, condition D1).")
flags.DEFINE_enum("sn_norm", _DEFAULTS["sn_norm"], config.SN_NORMS,
                  "Spectral normalisation of convolutions: exact (operator norm of the "
                  "convolution on its input shape) or kernel (Miyato et al.'s reshaped kernel; "
                  "the convolution's norm can then exceed 1).")
flags.DEFINE_boolean("converge_spectral_norms", _DEFAULTS["converge_spectral_norms"],
                     "Converge every spectral norm's power-iteration vector (SVD / Lanczos) "
                     "before reporting; off reports the layers as initialised, with the random "
                     "u a fresh layer starts from.")

# Penalty (condition D3) and generator (G1, G2).
flags.DEFINE_float(
    "penalty_lambda", _DEFAULTS["penalty_lambda"],
    "lambda of the RKHS penalty: beta2 = lambda/sigma^2.")
flags.DEFINE_float(
    "kernel_sigma", _DEFAULTS["kernel_sigma"],
    "Gaussian kernel bandwidth sigma of the RKHS penalty.")
flags.DEFINE_integer(
    "n_particles", _DEFAULTS["n_particles"],
    "Particle generator size n (A = 1/sqrt(n), B = 0).")
flags.DEFINE_float(
    "generator_a", _DEFAULTS["generator_a"],
    "A (G1) of a parametric generator; give with --generator_b instead of using the particle "
    "generator.")
flags.DEFINE_float("generator_b", _DEFAULTS["generator_b"], "B (G2) of a parametric generator.")

# Verification.
flags.DEFINE_boolean(
    "verify", _DEFAULTS["verify"],
    "Also estimate the true Lipschitz constant and smoothness numerically and print them next to "
    "the bounds.")
flags.DEFINE_integer(
    "verify_starts", _DEFAULTS["verify_starts"],
    "Verification: random starting points.", lower_bound=1)
flags.DEFINE_integer(
    "verify_steps", _DEFAULTS["verify_steps"],
    "Verification: ascent steps per start.", lower_bound=0)
flags.DEFINE_string("output_json", "", "If set, also write the report as JSON to this file.")


# Training run (--mode=train).
flags.DEFINE_string("run_dir", None, "train: the run directory (manifest, TensorBoard logs, "
                    "samples, checkpoints, SavedModels).")
flags.DEFINE_string("dataset", _DEFAULTS["dataset"], "train: dataset, one of "
                    f"{', '.join(data.DATASET_NAMES)} or {data.TFDS_PREFIX}NAME.")
flags.DEFINE_string(
    "data_dir", _DEFAULTS["data_dir"],
    "train: TFDS data directory for tfds:NAME datasets.")
flags.DEFINE_integer(
    "steps", _DEFAULTS["steps"],
    "train: generator steps in total (a resumed run continues to this step).", lower_bound=1)
flags.DEFINE_integer(
    "batch_size", _DEFAULTS["batch_size"],
    "train: real/fake examples per discriminator step.", lower_bound=1)
flags.DEFINE_enum("generator", _DEFAULTS["generator"], config.GENERATORS,
                  "train: particle (Chu et al. Section 6: n x d trainable samples), mlp "
                  "(Nagarajan-Kolter MoG generator) or dcgan.")
flags.DEFINE_integer(
    "particle_batch", _DEFAULTS["particle_batch"],
    "train: particles per generator step; 0 = all (the full gradient of Chu et al.'s analysis).",
    lower_bound=0)
flags.DEFINE_float(
    "particle_init_std", _DEFAULTS["particle_init_std"],
    "train: particles start from N(0, std^2).")
flags.DEFINE_integer(
    "noise_dim", _DEFAULTS["noise_dim"],
    "train: latent dimension of mlp/dcgan generators.", lower_bound=1)
flags.DEFINE_list(
    "g_hidden_units", _DEFAULTS["g_hidden_units"],
    "train: mlp generator hidden widths.")
flags.DEFINE_integer(
    "g_base_channels", _DEFAULTS["g_base_channels"],
    "train: dcgan generator channels.", lower_bound=1)
flags.DEFINE_string("loss", _DEFAULTS["loss"],
                    "train: base loss, a name in tfsmooth.losses.LOSSES: " +
                    "; ".join(f"{spec.name}: {spec.description}"
                              for spec in losses.LOSSES.values()))
flags.DEFINE_string("penalty", _DEFAULTS["penalty"],
                    "train: discriminator penalty, a name in tfsmooth.losses.PENALTIES: " +
                    "; ".join(f"{spec.name}: {spec.description}"
                              for spec in losses.PENALTIES.values()))
flags.DEFINE_float(
    "output_penalty_weight", _DEFAULTS["output_penalty_weight"],
    "train: weight of the rkhs output term phi^2.")
flags.DEFINE_float("gradient_penalty_weight", _DEFAULTS["gradient_penalty_weight"],
                   "train: weight of the rkhs gradient term sigma^2/2 |grad phi|^2.")
flags.DEFINE_float("gp_weight", _DEFAULTS["gp_weight"], "train: WGAN-GP weight (--penalty=gp).")
flags.DEFINE_integer(
    "n_disc", _DEFAULTS["n_disc"],
    "train: discriminator steps per generator step.", lower_bound=1)
flags.DEFINE_enum("update", _DEFAULTS["update"], config.UPDATES,
                  "train: alternating (D steps, then G sees the new D) or simultaneous (the "
                  "last D step and the G step at the same parameters; Nagarajan-Kolter).")
flags.DEFINE_float("eta", _DEFAULTS["eta"], "train: Nagarajan-Kolter generator regulariser eta * "
                   "|grad_{theta_D} V|^2 (0 = off).")
flags.DEFINE_integer(
    "unroll_steps", _DEFAULTS["unroll_steps"],
    "train: unrolled GAN (Metz et al. 2017), the baseline of Nagarajan-Kolter: the generator "
    "descends V at the discriminator after K differentiable optimiser steps on its batch (0 = "
    "off).", lower_bound=0)
flags.DEFINE_enum(
    "d_optimizer", _DEFAULTS["d_optimizer"], config.OPTIMIZERS,
    "train: discriminator optimiser.")
flags.DEFINE_float("d_lr", _DEFAULTS["d_lr"], "train: discriminator learning rate.")
flags.DEFINE_float("d_beta1", _DEFAULTS["d_beta1"], "train: discriminator Adam beta_1.")
flags.DEFINE_float("d_beta2", _DEFAULTS["d_beta2"], "train: discriminator Adam beta_2.")
flags.DEFINE_enum(
    "g_optimizer", _DEFAULTS["g_optimizer"], config.OPTIMIZERS,
    "train: generator optimiser.")
flags.DEFINE_float(
    "g_lr", _DEFAULTS["g_lr"],
    "train: generator learning rate (unless --g_lr_ratio).")
flags.DEFINE_float(
    "g_lr_ratio", _DEFAULTS["g_lr_ratio"],
    "train: generator learning rate in units of gamma* (gamma/gamma*; particle generator with an "
    "SN discriminator).")
flags.DEFINE_float("g_beta1", _DEFAULTS["g_beta1"], "train: generator Adam beta_1.")
flags.DEFINE_float("g_beta2", _DEFAULTS["g_beta2"], "train: generator Adam beta_2.")
flags.DEFINE_integer(
    "log_every", _DEFAULTS["log_every"],
    "train: TensorBoard scalars every N steps.", lower_bound=1)
flags.DEFINE_integer(
    "sample_every", _DEFAULTS["sample_every"],
    "train: sample grid every N steps.", lower_bound=1)
flags.DEFINE_integer(
    "checkpoint_every", _DEFAULTS["checkpoint_every"],
    "train: checkpoint every N steps.", lower_bound=1)
flags.DEFINE_integer(
    "keep_checkpoints", _DEFAULTS["keep_checkpoints"],
    "train: checkpoints kept.", lower_bound=1)
# Evaluation (--mode=eval, and training runs at the end / every --eval_every steps).
flags.DEFINE_enum("features", _DEFAULTS["features"], config.FEATURES,
                  "Features for FID/KID: classifier (a small conv net tfsmooth trains on the "
                  "dataset, cached; offline default) or inception (TF-GAN's Inception pool_3 "
                  "from --inception_module).")
flags.DEFINE_string(
    "inception_module", _DEFAULTS["inception_module"],
    "A local SavedModel directory of TF-GAN's Inception module, or a TF-Hub handle already in the "
    "TF-Hub cache (default handle: TF-GAN's INCEPTION_TFHUB). Nothing is downloaded.")
flags.DEFINE_integer(
    "eval_samples", _DEFAULTS["eval_samples"],
    "Samples per FID/KID draw (capped at the size of the real test split).", lower_bound=2)
flags.DEFINE_integer(
    "eval_repeats", _DEFAULTS["eval_repeats"],
    "Independent sample draws; mean and std are reported.", lower_bound=1)
flags.DEFINE_integer(
    "classifier_seed", _DEFAULTS["classifier_seed"],
    "Seed of the feature classifier (--mode=train_classifier trains it; eval loads it from the "
    "cache).")
flags.DEFINE_string(
    "classifier_cache", _DEFAULTS["classifier_cache"],
    "Classifier cache directory (default $TFSMOOTH_CACHE or ~/.cache/tfsmooth/classifiers).")
flags.DEFINE_boolean(
    "train_classifier_if_missing", _DEFAULTS["train_classifier_if_missing"],
    "train/eval: train and cache the feature classifier if it is not cached yet (a few minutes).")
flags.DEFINE_boolean(
    "eval_at_end", _DEFAULTS["eval_at_end"],
    "train: evaluate the final generator (FID/KID or mode coverage) into manifest.json and "
    "metrics.json.")
flags.DEFINE_integer(
    "eval_every", _DEFAULTS["eval_every"],
    "train: also evaluate every N steps into TensorBoard (0 = only at the end).", lower_bound=0)
flags.DEFINE_boolean("resume", _DEFAULTS["resume"], "train: continue the run in --run_dir from "
                     "its latest checkpoint. Flags that change the trained weights must match "
                     "the run; --steps, logging, checkpoint and evaluation flags may differ.")


def _positive(name):
  flags.register_validator(name, lambda v: v is None or v > 0, message="must be > 0")


def _non_negative(name):
  flags.register_validator(name, lambda v: v is None or v >= 0, message="must be >= 0")


for _name in ("alpha", "penalty_lambda", "kernel_sigma", "d_lr", "g_lr", "g_lr_ratio",
              "particle_init_std"):
  _positive(_name)
for _name in ("generator_a", "generator_b", "eta", "output_penalty_weight",
              "gradient_penalty_weight", "gp_weight"):
  _non_negative(_name)
flags.register_validator(
    "output_json", lambda v: not v or os.path.isdir(os.path.dirname(os.path.abspath(v))),
    message="its directory does not exist")
flags.register_validator("n_particles", lambda v: v >= 1, message="must be >= 1")


def _int_list(values):
  try:
    numbers = [int(v) for v in values]
  except ValueError:
    return None
  return numbers if numbers and all(n >= 1 for n in numbers) else None


flags.register_validator("input_shape", lambda v: _int_list(v) is not None,
                         message="must be a comma-separated list of positive integers")
for _name in ("hidden_units", "g_hidden_units"):
  flags.register_validator(_name, lambda v: _int_list(v) is not None,
                           message="must be a comma-separated list of positive integers")
for _name in ("d_beta1", "d_beta2", "g_beta1", "g_beta2"):
  flags.register_validator(_name, lambda v: 0 <= v < 1, message="must be in [0, 1)")
flags.register_validator("loss", lambda v: v in losses.LOSSES,
                         message=f"must be one of {', '.join(losses.LOSSES)}")
flags.register_validator("penalty", lambda v: v in losses.PENALTIES,
                         message=f"must be one of {', '.join(losses.PENALTIES)}")


def _trains_discriminator(loss: str) -> bool:
  return loss not in losses.LOSSES or losses.LOSSES[loss].trains_discriminator


@flags.multi_flags_validator(["mode", "run_dir"],
                             message="--mode=train, eval and nk_toy need --run_dir")
def _check_run_dir(values):
  return values["mode"] not in ("train", "eval", "nk_toy") or bool(values["run_dir"])


@flags.multi_flags_validator(
    ["g_lr_ratio", "generator", "discriminator", "activation", "loss"],
    message="--g_lr_ratio (gamma/gamma*) needs --generator=particle, an SN discriminator "
    "(--discriminator=conv7 or mlp) with a smooth --activation, and a loss with a "
    "discriminator; otherwise give --g_lr")
def _check_gamma_ratio(values):
  if values["g_lr_ratio"] is None:
    return True
  return (values["generator"] == "particle" and values["discriminator"] in config.SN_DISCRIMINATORS
          and values["activation"] not in ("relu", "leaky_relu")
          and _trains_discriminator(values["loss"]))


@flags.multi_flags_validator(["generator", "discriminator", "dataset"],
                             message="--generator=dcgan and --discriminator=conv7/dcgan need an "
                             "image --dataset")
def _check_image_networks(values):
  try:
    images = data.is_image_dataset(values["dataset"])
  except ValueError:  # an unknown name: refused by the dataset check, with the known names
    return True
  return images or (values["generator"] not in config.IMAGE_NETWORKS and
                    values["discriminator"] not in config.IMAGE_NETWORKS)


@flags.multi_flags_validator(["mode", "discriminator"],
                             message="--mode=constants needs --discriminator=conv7 or mlp "
                             "(the others are not spectrally normalised)")
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
  return values["unroll_steps"] == 0 or (values["eta"] == 0 and values["penalty"] == "none"
                                         and _trains_discriminator(values["loss"]))


def _values() -> dict:
  return {name: FLAGS[name].value for name in FLAGS}


def constants_config() -> config.ConstantsConfig:
  """The parsed flags as the frozen config ``report.run_constants`` takes."""
  return config.from_flags(config.ConstantsConfig, _values())


def train_config() -> config.TrainConfig:
  """The parsed flags as the frozen config ``tfsmooth.train.train`` takes."""
  return config.from_flags(config.TrainConfig, _values())


def eval_config() -> config.EvalConfig:
  """The evaluation flags as the frozen config ``tfsmooth.evaluate`` takes."""
  return config.from_flags(config.EvalConfig, _values())
