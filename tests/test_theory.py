"""tfsmooth.theory: bounds of built models, beta2, L and gamma*."""

import math

import keras
import numpy as np
import pytest

from tfsmooth import layers as tfs_layers
from tfsmooth import networks
from tfsmooth import theory
from tfsmooth import verify


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


def _functional_twin(sequential, nested):
  """The same layers (fresh objects, copied weights) as a functional model; with ``nested`` the
  middle layers sit in a nested Sequential and a nested functional model."""
  layers = [type(layer).from_config(layer.get_config()) for layer in sequential.layers]
  inputs = keras.Input(sequential.inputs[0].shape[1:])
  x = inputs
  if nested:
    inner_input = keras.Input(tuple(sequential.layers[1].output.shape[1:]))
    inner = keras.Model(inner_input, layers[2](inner_input), name="inner_functional")
    x = layers[0](x)
    x = keras.Sequential([layers[1]], name="inner_sequential")(x)
    x = inner(x)
    rest = layers[3:]
  else:
    rest = layers
  for layer in rest:
    x = layer(x)
  twin = keras.Model(inputs, x, name="twin")
  for source, copy in zip(sequential.layers, layers):
    copy.set_weights(source.get_weights())
  return twin


@pytest.mark.parametrize("nested", [False, True])
def test_functional_chain_gives_bit_identical_bounds_to_its_sequential_twin(nested):
  sequential = _converged(networks.conv7_discriminator((8, 8, 3), 2, "tanh", alpha=1.5))
  twin = _functional_twin(sequential, nested)
  x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
  np.testing.assert_array_equal(twin(x, training=False), sequential(x, training=False))
  ours, theirs = theory.model_bounds(twin), theory.model_bounds(sequential)
  assert (ours.lipschitz, ours.beta1) == (theirs.lipschitz, theirs.beta1)
  assert [(row.kind, row.layer, row.cumulative) for row in ours.layers] == [
      (row.kind, row.layer, row.cumulative) for row in theirs.layers]
  assert len(ours.layers) == 7 * 2 + 3


def _sn_dense_with_identity_kernel(width):
  layer = tfs_layers.SNDense(width)
  layer.build((None, width))
  layer.kernel.assign(np.eye(width, dtype=np.float32))
  layer.converge()
  return layer


def test_residual_mlp_bounds_are_the_hand_computed_sum_rule():
  inputs = keras.Input((4,))
  branch = tfs_layers.SmoothActivation("elu")(_sn_dense_with_identity_kernel(4)(inputs))
  residual = keras.layers.Add()([inputs, branch])
  model = keras.Model(inputs, tfs_layers.AlphaScale(3.0)(residual))
  bounds = theory.model_bounds(model)
  # x + elu(W x) with |W| = 1 (the identity): the identity is (1, 0), elu(W x) is (1, 1), so the
  # sum is (1 + 1, 0 + 1) = (2, 1); the scale 3 makes it (6, 3). Exact: W = I has norm exactly 1.
  assert (bounds.lipschitz, bounds.beta1) == (6.0, 3.0)
  assert [row.kind for row in bounds.layers] == ["SNDense", "SmoothActivation", "Add",
                                                 "AlphaScale"]
  add_row = bounds.layers[2]
  assert add_row.cumulative == tfs_layers.Bounds(2.0, 1.0)
  assert add_row.layer == tfs_layers.Bounds(math.sqrt(2.0), 0.0)


def test_plus_operator_and_nested_residual_blocks_use_the_sum_rule():
  inputs = keras.Input((3,))
  x = inputs
  for _ in range(2):
    # y = x + softplus(W x): bounds (L, b) -> (L, b) + (L, 0.25 L^2 + b) = (2L, 0.25 L^2 + 2b).
    x = x + tfs_layers.SmoothActivation("softplus")(_sn_dense_with_identity_kernel(3)(x))
  blocks = keras.Model(inputs, x, name="two_blocks")
  outer_input = keras.Input((3,))
  model = keras.Model(outer_input, blocks(outer_input))  # the blocks as a nested model
  bounds = theory.model_bounds(model)
  # Block 1 from (1, 0): (2, 0.25). Block 2 from (2, 0.25): (4, 0.25 * 4 + 0.5) = (4, 1.5).
  assert (bounds.lipschitz, bounds.beta1) == (4.0, 1.5)
  assert [row.kind for row in bounds.layers].count("Add") == 2


def test_resnet_discriminator_bounds_match_the_hand_computation():
  model = _converged(networks.resnet_discriminator((8, 8, 3), 4, "elu", alpha=1.5))
  bounds = theory.model_bounds(model)
  # Every SN layer has norm 1, ELU is (1, 1), a 2x2 pool (1/2, 0); bounds from the input:
  # block 1 (conv, act, conv, pool | conv 1x1, pool): (1/2, 1/2) + (1/2, 0) = (1, 1/2).
  # block 2 (act, conv, act, conv, pool | conv 1x1, pool) from (1, 1/2): the main branch is
  #   act (1, 3/2), act (1, 5/2), pool (1/2, 5/4); the shortcut pool (1/2, 1/4); sum (1, 3/2).
  # block 3 (act, conv, act, conv | identity) from (1, 3/2): main (1, 7/2), shortcut (1, 3/2),
  #   sum (2, 5). Head: act (2, 1*4 + 5) = (2, 9); global pool over 2x2 (1, 9/2); dense; alpha.
  assert bounds.lipschitz == pytest.approx(1.5, rel=1e-4)
  assert bounds.beta1 == pytest.approx(1.5 * 4.5, rel=1e-4)
  adds = [row for row in bounds.layers if row.kind == "Add"]
  assert [row.name for row in adds] == ["block1_add", "block2_add", "block3_add"]
  assert [row.cumulative.lipschitz for row in adds] == pytest.approx([1.0, 1.0, 2.0], rel=1e-4)
  assert [row.cumulative.smoothness for row in adds] == pytest.approx([0.5, 1.5, 5.0], rel=1e-4)


def test_converge_and_conv_norms_reach_layers_of_a_functional_model():
  model = networks.resnet_discriminator((8, 8, 3), 4, "elu", sn_norm="kernel")
  tfs_layers.converge_spectral_norms(model)
  names = [layer.name for layer in theory.model_layers(model)]
  assert "block1_add" not in names  # sums are visited, but are not layers with own bounds
  assert names.index("block1_conv2") < names.index("block2_act1")  # topological order
  assert names[-1] == "head_alpha"
  rows = verify.conv_norms(model)
  # Blocks 1 and 2: two convolutions and a 1x1 shortcut; block 3: two and the identity.
  assert [row.name for row in rows if "shortcut" in row.name] == ["block1_shortcut_conv",
                                                                   "block2_shortcut_conv"]
  assert len(rows) == 8
  assert all(row.reshaped_kernel_norm == pytest.approx(1.0, abs=1e-4) for row in rows)


def _refused(model, message):
  with pytest.raises(theory.UnboundedLayerError, match=message):
    theory.model_bounds(model)


def test_concatenate_is_refused():
  inputs = keras.Input((3,))
  merged = keras.layers.Concatenate(name="concat")([tfs_layers.SNDense(3)(inputs), inputs])
  _refused(keras.Model(inputs, tfs_layers.SNDense(1)(merged), name="dense_net"),
           r"model 'dense_net'.*'concat' \(Concatenate\) merges 2 tensors and is not a sum")


def test_multiply_is_refused():
  inputs = keras.Input((3,))
  merged = keras.layers.Multiply(name="product")([tfs_layers.SNDense(3)(inputs), inputs])
  _refused(keras.Model(inputs, merged), r"'product' \(Multiply\) merges 2 tensors")


def test_several_inputs_or_outputs_are_refused():
  first, second = keras.Input((3,)), keras.Input((3,))
  _refused(keras.Model([first, second], keras.layers.Add()([first, second]), name="two_in"),
           r"model 'two_in'.*2 inputs and 1 outputs")
  inputs = keras.Input((3,))
  _refused(keras.Model(inputs, [tfs_layers.SNDense(1)(inputs), tfs_layers.SNDense(1)(inputs)]),
           r"1 inputs and 2 outputs")


def test_broadcasting_sum_is_refused():
  inputs = keras.Input((3,))
  # Adding a (None, 1) tensor to a (None, 3) one copies it three times: norm sqrt(3), not 1.
  merged = keras.layers.Add(name="wide_add")([inputs, tfs_layers.SNDense(1)(inputs)])
  _refused(keras.Model(inputs, merged), r"'wide_add' broadcasts a tensor of shape \(None, 1\)")


def test_shared_layer_is_refused():
  inputs = keras.Input((3,))
  shared = tfs_layers.SNDense(3, name="shared")
  _refused(keras.Model(inputs, shared(shared(inputs))), r"'shared' is applied more than once")


def test_subclassed_model_is_refused():
  class Residual(keras.Model):
    def __init__(self):
      super().__init__(name="subclassed")
      self.dense = tfs_layers.SNDense(3)

    def call(self, inputs):
      return inputs + self.dense(inputs)

  model = Residual()
  model(np.zeros((1, 3), np.float32))
  _refused(model, r"model 'subclassed'.*subclassed model has no layer graph")


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
