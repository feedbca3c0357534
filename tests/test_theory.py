"""tfsmooth.theory: bounds of built models, beta2, L and gamma*."""

import math

import keras
import numpy as np
import pytest

from tfsmooth import layers as tfs_layers
from tfsmooth import networks
from tfsmooth import theory


def _converged(model):
  tfs_layers.converge_spectral_norms(model)
  return model


@pytest.mark.parametrize("activation", ["elu", "softplus", "tanh", "sigmoid"])
def test_conv7_bounds_are_alpha_and_alpha_times_sum_of_activation_smoothness(activation):
  model = _converged(networks.conv7_discriminator((8, 8, 3), 2, activation, alpha=3.0))
  bounds = theory.model_bounds(model)
  spec = tfs_layers.get_activation(activation)
  # Seven activations, all other layers of norm 1 (Section 5.1). With lipschitz L_s < 1
  # (sigmoid) the chain rule gives alpha * L_s^7 and a geometric sum for beta1.
  expected_lipschitz = 3.0 * spec.lipschitz**7
  expected_beta1 = 3.0 * sum(spec.smoothness * spec.lipschitz**(2 * k) * spec.lipschitz**(6 - k)
                             for k in range(7))
  assert bounds.lipschitz == pytest.approx(expected_lipschitz, rel=1e-4)
  assert bounds.beta1 == pytest.approx(expected_beta1, rel=1e-4)
  assert len(bounds.layers) == 7 * 2 + 3


def test_relu_discriminator_has_infinite_beta1():
  model = _converged(networks.mlp_discriminator(3, (8,), "relu", alpha=1.0))
  bounds = theory.model_bounds(model)
  assert bounds.lipschitz == pytest.approx(1.0, rel=1e-5)
  assert math.isinf(bounds.beta1)


def test_gamma_star_matches_hand_computation_particle_generator():
  model = _converged(networks.conv7_discriminator((8, 8, 3), 2, "elu", alpha=2.0))
  constants = theory.stability_constants(model, penalty_lambda=0.5, kernel_sigma=0.5,
                                         n_particles=100)
  # alpha = 2; beta1 = 2 * 7 * 1 = 14; beta2 = 0.5 / 0.5^2 = 2; A = 1/sqrt(100) = 0.1, B = 0;
  # L = 2*0 + 0.01 * (14 + 2) = 0.16; gamma* = 1/0.16 = 6.25 = n / (beta1 + beta2).
  assert constants.alpha == pytest.approx(2.0, rel=1e-4)
  assert constants.beta1 == pytest.approx(14.0, rel=1e-4)
  assert constants.beta2 == 2.0
  assert (constants.generator_a, constants.generator_b) == (0.1, 0.0)
  assert constants.smoothness == pytest.approx(0.16, rel=1e-4)
  assert constants.gamma_star == pytest.approx(6.25, rel=1e-4)


def test_gamma_star_matches_hand_computation_parametric_generator():
  model = _converged(networks.mlp_discriminator(2, (16, 16), "softplus", alpha=1.5))
  constants = theory.stability_constants(model, penalty_lambda=1.0, kernel_sigma=2.0,
                                         generator_a=2.0, generator_b=0.5)
  # alpha = 1.5; beta1 = 1.5 * 2 * 0.25 = 0.75; beta2 = 1/4; L = 1.5*0.5 + 4*(0.75+0.25) = 4.75.
  assert constants.smoothness == pytest.approx(4.75, rel=1e-4)
  assert constants.gamma_star == pytest.approx(1 / 4.75, rel=1e-4)


def test_beta2_and_particle_constants():
  assert theory.rkhs_beta2(3.0, 0.5) == 12.0
  assert theory.particle_generator_constants(4) == (0.5, 0.0)
  assert theory.gamma_star(0.25) == 4.0
  assert theory.gamma_star(math.inf) == 0.0


@pytest.mark.parametrize("call,message", [
    (lambda: theory.rkhs_beta2(1.0, 0.0), "kernel_sigma must be > 0"),
    (lambda: theory.rkhs_beta2(-1.0, 1.0), "penalty_lambda must be > 0"),
    (lambda: theory.particle_generator_constants(0), "n_particles must be >= 1"),
])
def test_bad_parameters_are_refused(call, message):
  with pytest.raises(ValueError, match=message):
    call()


def test_generator_must_be_specified_once():
  model = _converged(networks.mlp_discriminator(2, (4,), "elu"))
  with pytest.raises(ValueError, match="either n_particles"):
    theory.stability_constants(model, 1.0, 1.0, n_particles=10, generator_a=1.0,
                               generator_b=0.0)
  with pytest.raises(ValueError, match="either n_particles"):
    theory.stability_constants(model, 1.0, 1.0)


def test_plain_conv_layer_is_refused_with_its_name():
  model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="plain_conv"),
                            keras.layers.Flatten(), tfs_layers.SNDense(1)])
  with pytest.raises(theory.UnboundedLayerError, match=r"'plain_conv' \(Conv2D\).*SNConv2D"):
    theory.model_bounds(model)


def test_unknown_keras_activation_is_refused():
  model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="selu",
                                                                   name="selu_dense")])
  with pytest.raises(theory.UnboundedLayerError, match=r"'selu_dense'.*activation 'selu'"):
    theory.model_bounds(model)


def test_branching_model_is_refused():
  inputs = keras.Input((3,))
  outputs = keras.layers.Add()([tfs_layers.SNDense(3)(inputs), inputs])
  model = keras.Model(inputs, outputs, name="residual")
  with pytest.raises(theory.UnboundedLayerError, match=r"model 'residual'.*branching"):
    theory.model_bounds(model)


def test_keras_layers_with_known_bounds():
  model = keras.Sequential([
      keras.Input((8, 8, 2)), keras.layers.AveragePooling2D(2), keras.layers.ELU(),
      keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="tanh"),
      keras.layers.Activation("softplus"), keras.layers.Dropout(0.5)])
  bounds = theory.model_bounds(model)
  dense_norm = float(np.linalg.norm(model.layers[3].kernel.numpy(), 2))
  # pool 2x2: 1/2; global pool over 4x4: 1/4; ELU (1, 1); Dense norm then tanh; softplus.
  assert bounds.lipschitz == pytest.approx(0.5 * 0.25 * dense_norm, rel=1e-6)
  lipschitz_before_tanh = 0.125 * dense_norm
  beta_after_elu = 1.0 * 0.5**2
  beta_after_pool_dense = beta_after_elu * 0.25 * dense_norm
  beta_after_tanh = 0.7698003589 * lipschitz_before_tanh**2 + beta_after_pool_dense
  beta_after_softplus = 0.25 * lipschitz_before_tanh**2 + beta_after_tanh
  assert bounds.beta1 == pytest.approx(beta_after_softplus, rel=1e-6)


def test_unbuilt_model_is_refused():
  model = keras.Sequential([tfs_layers.SNDense(1)])
  with pytest.raises(ValueError, match="not built"):
    theory.model_bounds(model)
