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
                  "smoothness bounds, beta2, L and gamma* (Chu et al. Theorem 1). train: a "
                  "training run writing --run_dir. eval: FID/KID or mode coverage of a run. "
                  "train_classifier: the feature classifier of --dataset. nk_toy: Nagarajan-"
                  "Kolter's toy system (Figure 3): streamlines and Jacobian eigenvalues into "
                  "--run_dir.")
flags.DEFINE_integer("seed", 0, "Random seed (weights, data order, latents, verification).")

# Discriminator.
flags.DEFINE_enum("discriminator", "conv7", config.DISCRIMINATORS,
                  "Discriminator: conv7 (the 7-layer SN conv net of Chu et al. Section 7), mlp "
                  "(spectrally normalised MLP), nk_mlp (Nagarajan-Kolter's ReLU MLP on x/4), "
                  "dcgan (plain DCGAN conv net). constants mode: conv7 or mlp.")
flags.DEFINE_list("input_shape", ["32", "32", "3"],
                  "constants mode: discriminator input shape, H,W,C for conv7, D for mlp "
                  "(train mode takes the shape from --dataset).")
flags.DEFINE_integer("base_channels", 64, "conv7/dcgan: channels of the first convolution "
                     "(the paper's 64 gives 64..512).", lower_bound=1)
flags.DEFINE_list("hidden_units", ["128", "128"], "mlp/nk_mlp: hidden layer widths.")
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


# Training run (--mode=train).
flags.DEFINE_string("run_dir", None, "train: the run directory (manifest, TensorBoard logs, "
                    "samples, checkpoints, SavedModels).")
flags.DEFINE_string("dataset", "mnist", f"train: dataset, one of {config.DATASETS_HELP}.")
flags.DEFINE_string("data_dir", "", "train: TFDS data directory for tfds:NAME datasets.")
flags.DEFINE_integer("steps", 1000, "train: generator steps in total (a resumed run continues "
                     "to this step).", lower_bound=1)
flags.DEFINE_integer("batch_size", 64, "train: real/fake examples per discriminator step.",
                     lower_bound=1)
flags.DEFINE_enum("generator", "particle", config.GENERATORS,
                  "train: particle (Chu et al. Section 6: n x d trainable samples), mlp "
                  "(Nagarajan-Kolter MoG generator) or dcgan.")
flags.DEFINE_integer("particle_batch", 0, "train: particles per generator step; 0 = all "
                     "(the full gradient of Chu et al.'s analysis).", lower_bound=0)
flags.DEFINE_float("particle_init_std", 1.0, "train: particles start from N(0, std^2).")
flags.DEFINE_integer("noise_dim", 64, "train: latent dimension of mlp/dcgan generators.",
                     lower_bound=1)
flags.DEFINE_list("g_hidden_units", ["128", "128"], "train: mlp generator hidden widths.")
flags.DEFINE_integer("g_base_channels", 64, "train: dcgan generator channels.", lower_bound=1)
flags.DEFINE_enum("loss", "indicator", config.BASE_LOSSES,
                  "train: base loss. indicator: Chu et al.'s chi{mu = mu0} + penalty; minimax, "
                  "non_saturating, wgan; mmd: closed-form Gaussian-kernel MMD (no "
                  "discriminator training).")
flags.DEFINE_enum("penalty", "rkhs", config.PENALTIES,
                  "train: discriminator penalty. rkhs: E[phi^2 + sigma^2/2 |grad phi|^2] / "
                  "(2 lambda) on random interpolates (Chu et al. Section 5.3); gp: WGAN-GP.")
flags.DEFINE_float("output_penalty_weight", 1.0, "train: weight of the rkhs output term phi^2.")
flags.DEFINE_float("gradient_penalty_weight", 1.0,
                   "train: weight of the rkhs gradient term sigma^2/2 |grad phi|^2.")
flags.DEFINE_float("gp_weight", 10.0, "train: WGAN-GP weight (--penalty=gp).")
flags.DEFINE_integer("n_disc", 2, "train: discriminator steps per generator step.",
                     lower_bound=1)
flags.DEFINE_enum("update", "alternating", config.UPDATES,
                  "train: alternating (D steps, then G sees the new D) or simultaneous (the "
                  "last D step and the G step at the same parameters; Nagarajan-Kolter).")
flags.DEFINE_float("eta", 0.0, "train: Nagarajan-Kolter generator regulariser eta * "
                   "|grad_{theta_D} V|^2 (0 = off).")
flags.DEFINE_integer("unroll_steps", 0, "train: unrolled GAN (Metz et al. 2017), the baseline "
                     "of Nagarajan-Kolter: the generator descends V at the discriminator after "
                     "K differentiable optimiser steps on its batch (0 = off).", lower_bound=0)
flags.DEFINE_enum("d_optimizer", "adam", config.OPTIMIZERS, "train: discriminator optimiser.")
flags.DEFINE_float("d_lr", 1e-4, "train: discriminator learning rate.")
flags.DEFINE_float("d_beta1", 0.5, "train: discriminator Adam beta_1.")
flags.DEFINE_float("d_beta2", 0.999, "train: discriminator Adam beta_2.")
flags.DEFINE_enum("g_optimizer", "sgd", config.OPTIMIZERS, "train: generator optimiser.")
flags.DEFINE_float("g_lr", 1e-4, "train: generator learning rate (unless --g_lr_ratio).")
flags.DEFINE_float("g_lr_ratio", None, "train: generator learning rate in units of gamma* "
                   "(gamma/gamma*; particle generator with an SN discriminator).")
flags.DEFINE_float("g_beta1", 0.5, "train: generator Adam beta_1.")
flags.DEFINE_float("g_beta2", 0.999, "train: generator Adam beta_2.")
flags.DEFINE_integer("log_every", 10, "train: TensorBoard scalars every N steps.", lower_bound=1)
flags.DEFINE_integer("sample_every", 200, "train: sample grid every N steps.", lower_bound=1)
flags.DEFINE_integer("checkpoint_every", 200, "train: checkpoint every N steps.", lower_bound=1)
flags.DEFINE_integer("keep_checkpoints", 3, "train: checkpoints kept.", lower_bound=1)
# Evaluation (--mode=eval, and training runs at the end / every --eval_every steps).
flags.DEFINE_enum("features", "classifier", config.FEATURES,
                  "Features for FID/KID: classifier (a small conv net tfsmooth trains on the "
                  "dataset, cached; offline default) or inception (TF-GAN's Inception pool_3 "
                  "from --inception_module).")
flags.DEFINE_string("inception_module", "", "A local SavedModel directory of TF-GAN's Inception "
                    "module, or a TF-Hub handle already in the TF-Hub cache (default handle: "
                    "TF-GAN's INCEPTION_TFHUB). Nothing is downloaded.")
flags.DEFINE_integer("eval_samples", 10000, "Samples per FID/KID draw (capped at the size of the "
                     "real test split).", lower_bound=2)
flags.DEFINE_integer("eval_repeats", 1, "Independent sample draws; mean and std are reported.",
                     lower_bound=1)
flags.DEFINE_integer("classifier_seed", 0, "Seed of the feature classifier "
                     "(--mode=train_classifier trains it; eval loads it from the cache).")
flags.DEFINE_string("classifier_cache", "", "Classifier cache directory (default "
                    "$TFSMOOTH_CACHE or ~/.cache/tfsmooth/classifiers).")
flags.DEFINE_boolean("train_classifier_if_missing", True, "train/eval: train and cache the "
                     "feature classifier if it is not cached yet (a few minutes).")
flags.DEFINE_boolean("eval_at_end", True, "train: evaluate the final generator (FID/KID or mode "
                     "coverage) into manifest.json and metrics.json.")
flags.DEFINE_integer("eval_every", 0, "train: also evaluate every N steps into TensorBoard "
                     "(0 = only at the end).", lower_bound=0)
flags.DEFINE_boolean("resume", False, "train: continue the run in --run_dir from its latest "
                     "checkpoint (flags other than --steps must match).")


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
  return (values["generator"] == "particle" and values["discriminator"] in config.INPUT_RANK
          and values["activation"] not in ("relu", "leaky_relu") and values["loss"] != "mmd")


@flags.multi_flags_validator(["generator", "discriminator", "dataset"],
                             message="--generator=dcgan and --discriminator=conv7/dcgan need an "
                             "image --dataset")
def _check_image_networks(values):
  images = values["dataset"] not in ("mog_ring", "mog_grid", "uniform1d")
  return images or (values["generator"] != "dcgan" and
                    values["discriminator"] not in ("conv7", "dcgan"))


@flags.multi_flags_validator(["mode", "discriminator"],
                             message="--mode=constants needs --discriminator=conv7 or mlp "
                             "(the others are not spectrally normalised)")
def _check_constants_discriminator(values):
  return values["mode"] != "constants" or values["discriminator"] in config.INPUT_RANK


@flags.multi_flags_validator(["mode", "discriminator", "input_shape"],
                             message="--input_shape must be H,W,C for --discriminator=conv7 "
                             "and D for --discriminator=mlp")
def _check_input_rank(values):
  if values["mode"] != "constants" or values["discriminator"] not in config.INPUT_RANK:
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
  return values["unroll_steps"] == 0 or (values["eta"] == 0 and values["loss"] != "mmd" and
                                         values["penalty"] == "none")


def constants_config() -> config.ConstantsConfig:
  """The parsed flags as the frozen config ``report.run_constants`` takes."""
  return config.ConstantsConfig(
      discriminator=FLAGS.discriminator, input_shape=tuple(_int_list(FLAGS.input_shape)),
      base_channels=FLAGS.base_channels, hidden_units=tuple(_int_list(FLAGS.hidden_units)),
      activation=FLAGS.activation, alpha=FLAGS.alpha, sn_norm=FLAGS.sn_norm,
      converge_spectral_norms=FLAGS.converge_spectral_norms, penalty_lambda=FLAGS.penalty_lambda,
      kernel_sigma=FLAGS.kernel_sigma, n_particles=FLAGS.n_particles,
      generator_a=FLAGS.generator_a, generator_b=FLAGS.generator_b, verify=FLAGS.verify,
      verify_starts=FLAGS.verify_starts, verify_steps=FLAGS.verify_steps, seed=FLAGS.seed)


def train_config() -> config.TrainConfig:
  """The parsed flags as the frozen config ``tfsmooth.train.train`` takes."""
  gan = config.GANConfig(
      loss=FLAGS.loss, penalty=FLAGS.penalty, penalty_lambda=FLAGS.penalty_lambda,
      kernel_sigma=FLAGS.kernel_sigma, output_penalty_weight=FLAGS.output_penalty_weight,
      gradient_penalty_weight=FLAGS.gradient_penalty_weight, gp_weight=FLAGS.gp_weight,
      n_disc=FLAGS.n_disc, update=FLAGS.update, eta=FLAGS.eta,
      unroll_steps=FLAGS.unroll_steps, particle_batch=FLAGS.particle_batch, seed=FLAGS.seed)
  return config.TrainConfig(
      run_dir=FLAGS.run_dir, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir, steps=FLAGS.steps,
      batch_size=FLAGS.batch_size, generator=FLAGS.generator, n_particles=FLAGS.n_particles,
      particle_init_std=FLAGS.particle_init_std, noise_dim=FLAGS.noise_dim,
      g_hidden_units=tuple(_int_list(FLAGS.g_hidden_units)),
      g_base_channels=FLAGS.g_base_channels, discriminator=FLAGS.discriminator,
      base_channels=FLAGS.base_channels, hidden_units=tuple(_int_list(FLAGS.hidden_units)),
      activation=FLAGS.activation, alpha=FLAGS.alpha, sn_norm=FLAGS.sn_norm, gan=gan,
      d_optimizer=FLAGS.d_optimizer, d_lr=FLAGS.d_lr, d_beta1=FLAGS.d_beta1,
      d_beta2=FLAGS.d_beta2, g_optimizer=FLAGS.g_optimizer, g_lr=FLAGS.g_lr,
      g_lr_ratio=FLAGS.g_lr_ratio, g_beta1=FLAGS.g_beta1, g_beta2=FLAGS.g_beta2,
      log_every=FLAGS.log_every, sample_every=FLAGS.sample_every,
      checkpoint_every=FLAGS.checkpoint_every, keep_checkpoints=FLAGS.keep_checkpoints,
      resume=FLAGS.resume, seed=FLAGS.seed, eval_at_end=FLAGS.eval_at_end,
      eval_every=FLAGS.eval_every, evaluation=eval_config())


def eval_config() -> config.EvalConfig:
  """The evaluation flags as the frozen config ``tfsmooth.evaluate`` takes."""
  return config.EvalConfig(
      features=FLAGS.features, inception_module=FLAGS.inception_module,
      num_samples=FLAGS.eval_samples, repeats=FLAGS.eval_repeats,
      classifier_seed=FLAGS.classifier_seed, classifier_cache=FLAGS.classifier_cache,
      train_classifier_if_missing=FLAGS.train_classifier_if_missing)
