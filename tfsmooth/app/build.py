"""What a run configuration builds, by name: the networks (``DISCRIMINATOR_BUILDERS``,
``GENERATOR_BUILDERS``), the loss and penalty objects, the optimisers and the compiled
``SmoothGAN``. The constants report, a training run and the benchmark build through here; each
piece is a library call a researcher makes directly (README, "Your own networks").
"""

from collections.abc import Sequence
import math

import keras
import tensorflow as tf

from tfsmooth import gan
from tfsmooth import layers as tfs_layers
from tfsmooth import losses
from tfsmooth import networks
from tfsmooth import theory
from tfsmooth.app import config as tfs_config
from tfsmooth.app.config import DiscriminatorConfig
from tfsmooth.app.config import GANConfig
from tfsmooth.app.config import GeneratorConfig
from tfsmooth.app.config import TrainConfig
from tfsmooth.errors import UserError

# kind -> fn(config, shape of one example) -> model.
DISCRIMINATOR_BUILDERS = {
    "conv7": lambda c, shape: networks.conv7_discriminator(shape, c.base_channels, c.activation,
                                                           c.alpha, c.sn_norm),
    "mlp": lambda c, shape: networks.mlp_discriminator(math.prod(shape), c.hidden_units,
                                                       c.activation, c.alpha),
    "nk_mlp": lambda c, shape: networks.nk_mlp_discriminator(math.prod(shape), c.hidden_units),
    "dcgan": lambda c, shape: networks.dcgan_discriminator(shape, c.base_channels),
    "metz": lambda c, shape, **options: networks.metz_discriminator(shape, c.base_channels,
                                                                    **options),
    "resnet": lambda c, shape: networks.resnet_discriminator(shape, c.base_channels,
                                                             c.activation, c.alpha, c.sn_norm),
}
GENERATOR_BUILDERS = {
    "particle": lambda c, shape: networks.ParticleGenerator(c.n_particles, shape,
                                                            c.particle_init_std),
    "mlp": lambda c, shape: networks.mlp_generator(c.noise_dim, math.prod(shape),
                                                   c.hidden_units),
    "dcgan": lambda c, shape, **options: networks.dcgan_generator(c.noise_dim, shape,
                                                                  c.base_channels, **options),
    "metz": lambda c, shape, **options: networks.metz_generator(c.noise_dim, shape, **options),
}


# The networks with batch norm: under a multi-replica strategy their batch statistics are those
# of the global batch (all-reduced moments), so N replicas normalise as one device does.
BATCH_NORM_DISCRIMINATORS = ("metz",)
BATCH_NORM_GENERATORS = ("dcgan", "metz")


def _batch_norm_options(kind: str, replicas: int, kinds) -> dict:
  return {"synchronized_bn": True} if replicas > 1 and kind in kinds else {}


def build_discriminator(config: DiscriminatorConfig, input_shape: Sequence[int],
                        replicas: int = 1) -> keras.Model:
  """The discriminator ``config`` describes, for examples of shape ``input_shape``, for
  training on ``replicas`` replicas."""
  return DISCRIMINATOR_BUILDERS[config.kind](config, tuple(int(v) for v in input_shape),
                                             **_batch_norm_options(config.kind, replicas,
                                                                   BATCH_NORM_DISCRIMINATORS))


def build_generator(config: GeneratorConfig, sample_shape: Sequence[int],
                    replicas: int = 1) -> keras.Model:
  """The generator ``config`` describes, producing examples of shape ``sample_shape``, for
  training on ``replicas`` replicas (batch norm then uses the global batch's statistics)."""
  return GENERATOR_BUILDERS[config.kind](config, tuple(int(v) for v in sample_shape),
                                         **_batch_norm_options(config.kind, replicas,
                                                               BATCH_NORM_GENERATORS))


def objective(config: GANConfig):
  """``(loss, penalty)`` objects named by ``config``, with its hyperparameters."""
  settings = tfs_config.settings(config)
  return (losses.get_loss(config.loss, **settings), losses.get_penalty(config.penalty, **settings))


def smooth_gan(generator, discriminator, config: GANConfig, noise_dim: int | None = None,
               seed: int = 0) -> gan.SmoothGAN:
  """The ``SmoothGAN`` of ``config`` on the two networks."""
  loss, penalty = objective(config)
  return gan.SmoothGAN(generator, discriminator, loss=loss, penalty=penalty,
                       n_disc=config.n_disc, update=config.update, eta=config.eta,
                       unroll_steps=config.unroll_steps, particle_batch=config.particle_batch,
                       noise_dim=noise_dim, seed=seed)


def check_replica_split(config: TrainConfig, replicas: int) -> None:
  """Refuses batches that ``replicas`` replicas cannot share equally (every mean over the global
  batch assumes equal local batches: tfsmooth.distribute.global_mean)."""
  if config.batch_size % replicas:
    raise UserError(f"--batch_size={config.batch_size} (the global batch) is not divisible by "
                    f"the {replicas} replicas of --strategy={config.strategy}")
  if config.generator.kind == "particle":
    name, rows = (("particle_batch", config.gan.particle_batch) if config.gan.particle_batch
                  else ("n_particles", config.generator.n_particles))
    if rows % replicas:
      raise UserError(f"--{name}={rows} (particles per generator step) is not divisible by the "
                      f"{replicas} replicas of --strategy={config.strategy}")


def optimizer(name, learning_rate, beta_1, beta_2, ema: float = 0.0):
  """``--{d,g}_optimizer``; ``ema > 0``: it also keeps the average of the weights with that
  momentum (Keras's ``use_ema``; ``SmoothGAN.generator_ema``)."""
  options = {"use_ema": True, "ema_momentum": ema} if ema else {}
  if name == "sgd":
    return keras.optimizers.SGD(learning_rate=learning_rate, **options)
  return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                               **options)


def generator_learning_rate(config: TrainConfig, discriminator) -> tuple[float, dict]:
  """``--g_lr``, or ``--g_lr_ratio * gamma*`` with gamma* from Chu et al.'s Theorem 1 for the
  built discriminator and the particle generator (``theory.generator_learning_rate``); also
  returns the constants."""
  if config.g_lr_ratio is None:
    return config.g_lr, {}
  try:
    g_lr, constants = theory.generator_learning_rate(
        discriminator, config.g_lr_ratio, penalty_lambda=config.gan.penalty_lambda,
        kernel_sigma=config.gan.kernel_sigma, n_particles=config.generator.n_particles)
  except ValueError as error:
    raise UserError(f"--g_lr_ratio: {error}; use a smooth activation or give --g_lr") from None
  summary = {"alpha": constants.alpha, "beta1": constants.beta1, "beta2": constants.beta2,
             "A": constants.generator_a, "B": constants.generator_b, "L": constants.smoothness,
             "gamma_star": constants.gamma_star, "g_lr_ratio": config.g_lr_ratio}
  return g_lr, summary


def check_sample_shapes(config: TrainConfig, model: gan.SmoothGAN, sample_shape) -> None:
  """Refuses, in one line naming the flags, networks whose samples are not the dataset's."""
  try:
    networks_shape = model.sample_shape
  except ValueError:
    return
  generated = model.generated_shape
  if generated != tuple(sample_shape) or networks_shape != tuple(sample_shape):
    raise UserError(
        f"--dataset={config.dataset} has samples of shape {tuple(sample_shape)}, but "
        f"--generator={config.generator.kind} makes {generated} and "
        f"--discriminator={config.discriminator.kind} takes {networks_shape}; choose networks "
        "for this dataset (mlp networks take vectors, conv7 and dcgan images)")


def build_gan(config: TrainConfig, sample_shape, strategy=None):
  """The seeded, compiled ``SmoothGAN`` of a run (networks, optimisers built), and ``(g_lr,
  constants)`` (``generator_learning_rate``): what a run trains and what the benchmark times
  (benchmarks/vs_pytorch.py)."""
  strategy = strategy or tf.distribute.get_strategy()
  keras.utils.set_random_seed(config.seed)
  tf.config.experimental.enable_op_determinism()
  with strategy.scope():  # networks and optimisers live on the strategy's devices
    discriminator = build_discriminator(config.discriminator, sample_shape,
                                        strategy.num_replicas_in_sync)
    tfs_layers.converge_spectral_norms(discriminator)
    generator = build_generator(config.generator, sample_shape, strategy.num_replicas_in_sync)
    g_lr, constants = generator_learning_rate(config, discriminator)
    model = smooth_gan(generator, discriminator, config.gan, config.generator.noise_dim,
                       config.seed)
    model.compile(
        d_optimizer=optimizer(config.d_optimizer, config.d_lr, config.d_beta1, config.d_beta2),
        g_optimizer=optimizer(config.g_optimizer, g_lr, config.g_beta1, config.g_beta2,
                              config.g_ema))
  return model, g_lr, constants
