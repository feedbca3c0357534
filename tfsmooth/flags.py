"""Every command-line flag of ``python -m tfsmooth.main``, with help text and validators.

Validators run when the flags are parsed, so a bad value is refused with one line naming the
flag before any model is built.
"""

import os

from absl import flags

from tfsmooth import config

FLAGS = flags.FLAGS

flags.DEFINE_enum("mode", "constants", config.MODES,
                  "What to run. constants: build the discriminator and print its Lipschitz and "
                  "smoothness bounds, beta2, L and gamma* (Chu et al. Theorem 1).")
flags.DEFINE_integer("seed", 0, "Random seed (weights, verification starts).")

# Discriminator.
flags.DEFINE_enum("architecture", "conv7", config.ARCHITECTURES,
                  "Discriminator: conv7 (the 7-layer SN conv net of Chu et al. Section 7) or mlp "
                  "(spectrally normalised MLP).")
flags.DEFINE_list("input_shape", ["32", "32", "3"],
                  "Discriminator input shape: H,W,C for conv7, D for mlp.")
flags.DEFINE_integer("base_channels", 64, "conv7: channels of the first convolution "
                     "(the paper's 64 gives 64..512).", lower_bound=1)
flags.DEFINE_list("hidden_units", ["128", "128"], "mlp: hidden layer widths.")
flags.DEFINE_enum("activation", "elu", config.BUILTIN_ACTIVATIONS,
                  "Discriminator activation; its (Lipschitz, smoothness) constants enter the "
                  "bounds. relu/leaky_relu are not smooth (beta1 = inf).")
flags.DEFINE_float("alpha", 1.0, "Final scale alpha of the discriminator (its Lipschitz "
                   "constant, condition D1).")
flags.DEFINE_enum("sn_norm", "exact", config.SN_NORMS,
                  "Spectral normalisation of convolutions: exact (operator norm of the "
                  "convolution on its input shape) or kernel (Miyato et al.'s reshaped kernel; "
                  "the convolution's norm can then exceed 1).")
flags.DEFINE_boolean("converge_spectral_norms", True,
                     "Converge every spectral norm's power-iteration vector (SVD / Lanczos) "
                     "before reporting; off reports the layers as initialised, with the random "
                     "u a fresh layer starts from.")

# Penalty (condition D3) and generator (G1, G2).
flags.DEFINE_float("penalty_lambda", 1.0, "lambda of the RKHS penalty: beta2 = lambda/sigma^2.")
flags.DEFINE_float("kernel_sigma", 1.0, "Gaussian kernel bandwidth sigma of the RKHS penalty.")
flags.DEFINE_integer("n_particles", 50000, "Particle generator size n (A = 1/sqrt(n), B = 0).")
flags.DEFINE_float("generator_a", None, "A (G1) of a parametric generator; give with "
                   "--generator_b instead of using the particle generator.")
flags.DEFINE_float("generator_b", None, "B (G2) of a parametric generator.")

# Verification.
flags.DEFINE_boolean("verify", False, "Also estimate the true Lipschitz constant and smoothness "
                     "numerically and print them next to the bounds.")
flags.DEFINE_integer("verify_starts", 16, "Verification: random starting points.", lower_bound=1)
flags.DEFINE_integer("verify_steps", 30, "Verification: ascent steps per start.", lower_bound=0)
flags.DEFINE_string("output_json", "", "If set, also write the report as JSON to this file.")


def _positive(name):
  flags.register_validator(name, lambda v: v is None or v > 0, message="must be > 0")


def _non_negative(name):
  flags.register_validator(name, lambda v: v is None or v >= 0, message="must be >= 0")


for _name in ("alpha", "penalty_lambda", "kernel_sigma"):
  _positive(_name)
for _name in ("generator_a", "generator_b"):
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
flags.register_validator("hidden_units", lambda v: _int_list(v) is not None,
                         message="must be a comma-separated list of positive integers")


@flags.multi_flags_validator(["architecture", "input_shape"],
                             message="--input_shape must be H,W,C for --architecture=conv7 "
                             "and D for --architecture=mlp")
def _check_input_rank(values):
  shape = _int_list(values["input_shape"]) or []
  return len(shape) == config.INPUT_RANK[values["architecture"]]


@flags.multi_flags_validator(["generator_a", "generator_b"],
                             message="--generator_a and --generator_b must be given together")
def _check_generator(values):
  return (values["generator_a"] is None) == (values["generator_b"] is None)


def constants_config() -> config.ConstantsConfig:
  """The parsed flags as the frozen config ``report.run_constants`` takes."""
  return config.ConstantsConfig(
      architecture=FLAGS.architecture, input_shape=tuple(_int_list(FLAGS.input_shape)),
      base_channels=FLAGS.base_channels, hidden_units=tuple(_int_list(FLAGS.hidden_units)),
      activation=FLAGS.activation, alpha=FLAGS.alpha, sn_norm=FLAGS.sn_norm,
      converge_spectral_norms=FLAGS.converge_spectral_norms, penalty_lambda=FLAGS.penalty_lambda,
      kernel_sigma=FLAGS.kernel_sigma, n_particles=FLAGS.n_particles,
      generator_a=FLAGS.generator_a, generator_b=FLAGS.generator_b, verify=FLAGS.verify,
      verify_starts=FLAGS.verify_starts, verify_steps=FLAGS.verify_steps, seed=FLAGS.seed)
