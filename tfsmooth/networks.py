"""Discriminator and generator architectures of both papers, and Chu et al.'s particle
generator. The command line builds them by name from a run configuration
(``tfsmooth.app.build``); a researcher calls these functions, or brings their own networks.

Discriminators are built from tfsmooth layers so that ``tfsmooth.theory.model_bounds`` can
state their Lipschitz and smoothness constants: ``keras.Sequential`` chains, or a functional
model whose branches meet in sums (``resnet_discriminator``).
"""

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfsmooth import layers as tfs_layers

# (kernel size, stride, channel multiplier) of the 7 convolutions of the standard CNN
# discriminator of Miyato et al. (2018, Table 3), used by Chu et al. (Section 7) with spectral
# normalisation, ELU activations and a final scale alpha.
CONV7_LAYOUT = ((3, 1, 1), (4, 2, 1), (3, 1, 2), (4, 2, 2), (3, 1, 4), (4, 2, 4), (3, 1, 8))


def conv7_discriminator(input_shape: Sequence[int] = (32, 32, 3), base_channels: int = 64,
                        activation: str = "elu", alpha: float = 1.0, sn_norm: str = "exact",
                        name: str = "conv7_discriminator") -> keras.Sequential:
  """The 7-layer spectrally normalised conv discriminator of Chu et al. Section 7:
  channels ``base * (1, 1, 2, 2, 4, 4, 8)``, a dense output and the scale ``alpha``.

  Args:
    input_shape: ``(H, W, C)`` of one image.
    base_channels: ``base``, the channels of the first convolution.
    activation: a registered activation (``tfsmooth.layers.register_activation``) after every
      convolution.
    alpha: the final scale: the model's Lipschitz bound (D1).
    sn_norm: ``SNConv2D``'s ``norm``, ``"exact"`` or ``"kernel"``.
    name: the model's name.

  Returns:
    A built ``keras.Sequential`` from ``(batch, H, W, C)`` to ``(batch, 1)``.
  """
  model = keras.Sequential(name=name)
  model.add(keras.Input(tuple(input_shape)))
  for kernel_size, stride, multiplier in CONV7_LAYOUT:
    model.add(tfs_layers.SNConv2D(base_channels * multiplier, kernel_size, strides=stride,
                                  padding="same", norm=sn_norm))
    model.add(tfs_layers.SmoothActivation(activation))
  model.add(keras.layers.Flatten())
  model.add(tfs_layers.SNDense(1))
  model.add(tfs_layers.AlphaScale(alpha))
  return model


def mlp_discriminator(input_dim: int, hidden_units: Sequence[int] = (128, 128),
                      activation: str = "elu", alpha: float = 1.0,
                      name: str = "mlp_discriminator") -> keras.Sequential:
  """A spectrally normalised MLP discriminator with smooth activations and final scale alpha.

  Args:
    input_dim: the width of one (flat) sample.
    hidden_units: the width of each hidden ``SNDense`` layer, input to output.
    activation: a registered activation (``tfsmooth.layers.register_activation``) after every
      hidden layer.
    alpha: the final scale: the model's Lipschitz bound (D1).
    name: the model's name.

  Returns:
    A built ``keras.Sequential`` from ``(batch, input_dim)`` to ``(batch, 1)``.
  """
  model = keras.Sequential(name=name)
  model.add(keras.Input((int(input_dim),)))
  for units in hidden_units:
    model.add(tfs_layers.SNDense(units))
    model.add(tfs_layers.SmoothActivation(activation))
  model.add(tfs_layers.SNDense(1))
  model.add(tfs_layers.AlphaScale(alpha))
  return model


def nk_mlp_discriminator(input_dim: int, hidden_units: Sequence[int] = (128,),
                         input_scale: float = 0.25, init_gain: float = 0.8,
                         name: str = "nk_mlp_discriminator") -> keras.Sequential:
  """The mixture-of-Gaussians discriminator of Nagarajan and Kolter's public code: an MLP with
  one ReLU layer of 128 units on ``x / 4``, orthogonal initialisation with gain 0.8. Not
  spectrally normalised (their analysis does not need it).

  Args:
    input_dim: the width of one (flat) sample.
    hidden_units: the width of each hidden ReLU layer, input to output.
    input_scale: the factor the input is multiplied by first (0.25: ``x / 4``).
    init_gain: the gain of the orthogonal initialisation of every dense layer.
    name: the model's name.

  Returns:
    A built ``keras.Sequential`` from ``(batch, input_dim)`` to ``(batch, 1)``.
  """
  init = keras.initializers.Orthogonal(gain=init_gain)
  model = keras.Sequential(name=name)
  model.add(keras.Input((int(input_dim),)))
  model.add(keras.layers.Rescaling(input_scale))
  for units in hidden_units:
    model.add(keras.layers.Dense(units, activation="relu", kernel_initializer=init))
  model.add(keras.layers.Dense(1, kernel_initializer=init))
  return model


def dcgan_discriminator(input_shape: Sequence[int], base_channels: int = 64,
                        name: str = "dcgan_discriminator") -> keras.Sequential:
  """A small DCGAN discriminator (Radford et al. 2016): stride-2 4x4 convolutions with
  LeakyReLU(0.2), then a dense output; for stacked MNIST (Nagarajan and Kolter Section 6).

  Args:
    input_shape: ``(H, W, C)`` of one image.
    base_channels: the channels of the first convolution (then 2x and 4x).
    name: the model's name.

  Returns:
    A built ``keras.Sequential`` from ``(batch, H, W, C)`` to ``(batch, 1)``.
  """
  model = keras.Sequential(name=name)
  model.add(keras.Input(tuple(input_shape)))
  for multiplier in (1, 2, 4):
    model.add(keras.layers.Conv2D(base_channels * multiplier, 4, strides=2, padding="same"))
    model.add(keras.layers.LeakyReLU(0.2))
  model.add(keras.layers.Flatten())
  model.add(keras.layers.Dense(1))
  return model


def _metz_batch_norm(synchronized: bool) -> keras.layers.BatchNormalization:
  """Batch norm as the TF1 code of Metz et al.'s setting has it (momentum 0.9, epsilon 1e-5)."""
  return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=synchronized)


def metz_discriminator(input_shape: Sequence[int] = (28, 28, 3), base_channels: int = 2,
                       batch_norm: bool = True, synchronized_bn: bool = False,
                       name: str = "metz_discriminator") -> keras.Sequential:
  """The small stacked-MNIST discriminator of Metz et al. (2017, Table 2), as PacGAN's public
  reproduction of that table builds it: three stride-2 3x3 convolutions of ``base``, ``2 base``
  and ``4 base`` channels, each with batch norm and LeakyReLU(0.3), then a dense output.
  ``base`` 2 is the discriminator "1/4 the size" of ``metz_generator`` (whose layers have 8..64
  channels), 4 the one of half its size. Weights start N(0, 0.02) as in DCGAN. With batch norm,
  ``SmoothGAN`` shows it real and generated batches separately (as DCGAN code does).

  Args:
    input_shape: ``(H, W, C)`` of one image.
    base_channels: ``base``, the channels of the first convolution.
    batch_norm: batch norm after each convolution (without it, docs/nagarajan_kolter.md: the
      1/4-size discriminator cannot tell the samples apart).
    synchronized_bn: batch statistics over the global batch under a multi-replica strategy.
    name: the model's name.

  Returns:
    A built ``keras.Sequential`` from ``(batch, H, W, C)`` to ``(batch, 1)``.
  """
  init = keras.initializers.RandomNormal(stddev=0.02)
  model = keras.Sequential(name=name)
  model.add(keras.Input(tuple(input_shape)))
  for multiplier in (1, 2, 4):
    model.add(keras.layers.Conv2D(base_channels * multiplier, 3, strides=2, padding="same",
                                  kernel_initializer=init))
    if batch_norm:
      model.add(_metz_batch_norm(synchronized_bn))
    model.add(keras.layers.LeakyReLU(0.3))
  model.add(keras.layers.Flatten())
  model.add(keras.layers.Dense(1, kernel_initializer=init))
  return model


def _resnet_block(x, channels: int, activation: str, sn_norm: str, downsample: bool,
                  first: bool, name: str):
  """One block of Miyato et al.'s ResNet discriminator: a main branch
  ``[act] -> SNConv 3x3 -> act -> SNConv 3x3 [-> avgpool 2x2]`` plus a shortcut that is the
  identity, or ``SNConv 1x1 [-> avgpool]`` when the block downsamples or changes the channels.
  The first block (``first``) reads the image, so its main branch starts with the convolution.
  With unit-norm convolutions a downsampling block is 1/2 + 1/2 = 1-Lipschitz and an identity
  block 1 + 1 = 2-Lipschitz (docs/theory.md 1.4.1)."""
  main = x
  if not first:
    main = tfs_layers.SmoothActivation(activation, name=f"{name}_act1")(main)
  main = tfs_layers.SNConv2D(channels, 3, padding="same", norm=sn_norm,
                             name=f"{name}_conv1")(main)
  main = tfs_layers.SmoothActivation(activation, name=f"{name}_act2")(main)
  main = tfs_layers.SNConv2D(channels, 3, padding="same", norm=sn_norm,
                             name=f"{name}_conv2")(main)
  shortcut = x
  if downsample or int(x.shape[-1]) != channels:
    shortcut = tfs_layers.SNConv2D(channels, 1, padding="valid", norm=sn_norm,
                                   name=f"{name}_shortcut_conv")(shortcut)
  if downsample:
    main = keras.layers.AveragePooling2D(2, name=f"{name}_pool")(main)
    shortcut = keras.layers.AveragePooling2D(2, name=f"{name}_shortcut_pool")(shortcut)
  return keras.layers.Add(name=f"{name}_add")([main, shortcut])


def resnet_discriminator(input_shape: Sequence[int] = (32, 32, 3), base_channels: int = 128,
                         activation: str = "elu", alpha: float = 1.0, sn_norm: str = "exact",
                         name: str = "resnet_discriminator") -> keras.Model:
  """A small ResNet discriminator in the style of SNGAN (Miyato et al. 2018, CIFAR-10):
  three residual blocks of ``base_channels`` (the first two halve the resolution by 2x2 average
  pooling, the third keeps it and has an identity shortcut), then an activation, global average
  pooling, a dense output and the scale ``alpha``. Miyato et al. use ReLU, four blocks and a
  global sum; smooth activations, three blocks and an average keep D2 and a small bound.
  A functional model; ``tfsmooth.theory.model_bounds`` bounds it by the sum rule. Needs H and W
  divisible by 4."""
  height, width = int(input_shape[0]), int(input_shape[1])
  if height % 4 or width % 4:
    raise ValueError(f"resnet_discriminator needs height and width divisible by 4, got "
                     f"{tuple(input_shape)}")
  inputs = keras.Input(tuple(input_shape))
  x = _resnet_block(inputs, base_channels, activation, sn_norm, downsample=True, first=True,
                    name="block1")
  x = _resnet_block(x, base_channels, activation, sn_norm, downsample=True, first=False,
                    name="block2")
  x = _resnet_block(x, base_channels, activation, sn_norm, downsample=False, first=False,
                    name="block3")
  x = tfs_layers.SmoothActivation(activation, name="head_act")(x)
  x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
  x = tfs_layers.SNDense(1, name="head_dense")(x)
  outputs = tfs_layers.AlphaScale(alpha, name="head_alpha")(x)
  return keras.Model(inputs, outputs, name=name)


def mlp_generator(noise_dim: int, output_dim: int, hidden_units: Sequence[int] = (128, 128),
                  init_gain: float = 0.8, name: str = "mlp_generator") -> keras.Sequential:
  """The mixture-of-Gaussians generator of Nagarajan and Kolter's public code: 2x128 ReLU MLP
  from the noise, orthogonal initialisation with gain 0.8, linear output.

  Args:
    noise_dim: the width of the latent noise.
    output_dim: the width of one (flat) sample.
    hidden_units: the width of each hidden ReLU layer, input to output.
    init_gain: the gain of the orthogonal initialisation of every dense layer.
    name: the model's name.

  Returns:
    A built ``keras.Sequential`` from ``(batch, noise_dim)`` to ``(batch, output_dim)``.
  """
  init = keras.initializers.Orthogonal(gain=init_gain)
  model = keras.Sequential(name=name)
  model.add(keras.Input((int(noise_dim),)))
  for units in hidden_units:
    model.add(keras.layers.Dense(units, activation="relu", kernel_initializer=init))
  model.add(keras.layers.Dense(int(output_dim), kernel_initializer=init))
  return model


def dcgan_generator(noise_dim: int, output_shape: Sequence[int], base_channels: int = 64,
                    synchronized_bn: bool = False,
                    name: str = "dcgan_generator") -> keras.Sequential:
  """A small DCGAN generator: dense to (H/4, W/4, 2*base), two stride-2 transposed convolutions
  with batch norm and ReLU, tanh output in [-1, 1]. Needs H and W divisible by 4.

  Args:
    noise_dim: the width of the latent noise.
    output_shape: ``(H, W, C)`` of one generated image.
    base_channels: ``base``: the dense layer gives ``2*base`` channels, the first transposed
      convolution ``base``.
    synchronized_bn: batch statistics over the global batch under a multi-replica strategy
      (all-reduced moments), so N replicas normalise as one device does.
    name: the model's name.

  Returns:
    A built ``keras.Sequential`` from ``(batch, noise_dim)`` to ``(batch, H, W, C)``.

  Raises:
    ValueError: H or W is not divisible by 4.
  """
  height, width, channels = (int(v) for v in output_shape)
  if height % 4 or width % 4:
    raise ValueError(f"dcgan_generator needs height and width divisible by 4, got "
                     f"{tuple(output_shape)}")
  model = keras.Sequential(name=name)
  model.add(keras.Input((int(noise_dim),)))
  model.add(keras.layers.Dense(height // 4 * width // 4 * base_channels * 2, use_bias=False))
  model.add(keras.layers.BatchNormalization(synchronized=synchronized_bn))
  model.add(keras.layers.ReLU())
  model.add(keras.layers.Reshape((height // 4, width // 4, base_channels * 2)))
  model.add(keras.layers.Conv2DTranspose(base_channels, 4, strides=2, padding="same",
                                         use_bias=False))
  model.add(keras.layers.BatchNormalization(synchronized=synchronized_bn))
  model.add(keras.layers.ReLU())
  model.add(keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same",
                                         activation="tanh"))
  return model


def metz_generator(noise_dim: int = 256, output_shape: Sequence[int] = (28, 28, 3),
                   synchronized_bn: bool = False,
                   name: str = "metz_generator") -> keras.Sequential:
  """The stacked-MNIST generator of Metz et al. (2017, Table 2), as PacGAN's public reproduction
  builds it: dense to 4x4x64, stride-2 3x3 transposed convolutions to 7x7x32, 14x14x16 and
  28x28x8, each with batch norm and ReLU, then a 3x3 convolution to the channels and tanh.
  Weights start N(0, 0.02) as in DCGAN.

  Args:
    noise_dim: the width of the latent noise (256 in Metz et al.).
    output_shape: ``(28, 28, C)``, one generated image.
    synchronized_bn: batch statistics over the global batch under a multi-replica strategy.
    name: the model's name.

  Returns:
    A built ``keras.Sequential`` from ``(batch, noise_dim)`` to ``(batch, 28, 28, C)``.

  Raises:
    ValueError: the output is not 28x28.
  """
  height, width, channels = (int(v) for v in output_shape)
  if (height, width) != (28, 28):
    raise ValueError(f"metz_generator makes 28x28 images, not {tuple(output_shape)}")
  init = keras.initializers.RandomNormal(stddev=0.02)
  model = keras.Sequential(name=name)
  model.add(keras.Input((int(noise_dim),)))
  model.add(keras.layers.Dense(4 * 4 * 64, kernel_initializer=init))
  model.add(keras.layers.Reshape((4, 4, 64)))
  model.add(_metz_batch_norm(synchronized_bn))
  model.add(keras.layers.ReLU())
  # 4 -> 7 -> 14 -> 28: "same" padding gives 2 * size - 1, the output padding the rest.
  for filters, output_padding in ((32, 0), (16, 1), (8, 1)):
    model.add(keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same",
                                           output_padding=output_padding,
                                           kernel_initializer=init))
    model.add(_metz_batch_norm(synchronized_bn))
    model.add(keras.layers.ReLU())
  model.add(keras.layers.Conv2D(channels, 3, padding="same", activation="tanh",
                                kernel_initializer=init))
  return model


@keras.saving.register_keras_serializable(package="tfsmooth")
class ParticleGenerator(keras.Model):
  """Chu et al.'s particle generator (Section 7): ``theta`` is an ``n x d`` trainable matrix and
  ``X_theta(z) = theta[z]`` for ``z`` uniform on ``{0..n-1}``; its inputs are row indices.
  A = 1/sqrt(n), B = 0 (``tfsmooth.theory.particle_generator_constants``).

  Args:
    num_particles: n, the number of particles.
    sample_shape: the shape of one particle (one sample), e.g. ``(2,)`` or ``(28, 28, 1)``.
    init_std: the standard deviation of the particles' N(0, std^2) initialisation.
    **kwargs: passed to ``keras.Model``.
  """

  def __init__(self, num_particles: int, sample_shape: Sequence[int], init_std: float = 1.0,
               **kwargs):
    super().__init__(**kwargs)
    self.num_particles = int(num_particles)
    self.sample_shape = tuple(int(v) for v in sample_shape)
    self.init_std = float(init_std)
    self.particles = self.add_weight(
        name="particles", shape=(self.num_particles, *self.sample_shape),
        initializer=keras.initializers.RandomNormal(stddev=self.init_std))
    self.built = True  # the weights do not depend on the input

  def call(self, indices):
    return tf.gather(self.particles, tf.cast(indices, tf.int32))

  def sample_latent(self, batch_size, seed):
    """``batch_size`` particle indices, uniform on ``{0..n-1}`` (stateless in ``seed``): the
    particle generator's latent sampler (``tfsmooth.gan.latent_sampler``)."""
    return tf.random.stateless_uniform([batch_size], seed=seed, minval=0,
                                       maxval=self.num_particles, dtype=tf.int32)

  def all_latents(self):
    """Every particle's index: the full-gradient generator step of Chu et al.'s analysis."""
    return tf.range(self.num_particles)

  def get_config(self):
    return {**super().get_config(), "num_particles": self.num_particles,
            "sample_shape": self.sample_shape, "init_std": self.init_std}
