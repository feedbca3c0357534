"""Discriminator and generator architectures.

Discriminators are ``keras.Sequential`` chains of tfsmooth layers so that
``tfsmooth.theory.model_bounds`` can state their Lipschitz and smoothness constants.
"""

from typing import Sequence

import keras

from tfsmooth import layers as tfs_layers

# (kernel size, stride, channel multiplier) of the 7 convolutions of the standard CNN
# discriminator of Miyato et al. (2018, Table 3), used by Chu et al. (Section 7) with spectral
# normalisation, ELU activations and a final scale alpha.
CONV7_LAYOUT = ((3, 1, 1), (4, 2, 1), (3, 1, 2), (4, 2, 2), (3, 1, 4), (4, 2, 4), (3, 1, 8))


def conv7_discriminator(input_shape: Sequence[int] = (32, 32, 3), base_channels: int = 64,
                        activation: str = "elu", alpha: float = 1.0, sn_norm: str = "exact",
                        name: str = "conv7_discriminator") -> keras.Sequential:
  """The 7-layer spectrally normalised conv discriminator of Chu et al. Section 7:
  channels ``base * (1, 1, 2, 2, 4, 4, 8)``, a dense output and the scale ``alpha``."""
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
  """A spectrally normalised MLP discriminator with smooth activations and final scale alpha."""
  model = keras.Sequential(name=name)
  model.add(keras.Input((int(input_dim),)))
  for units in hidden_units:
    model.add(tfs_layers.SNDense(units))
    model.add(tfs_layers.SmoothActivation(activation))
  model.add(tfs_layers.SNDense(1))
  model.add(tfs_layers.AlphaScale(alpha))
  return model
