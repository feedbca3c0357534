"""tfsmooth.layers: activation constants, spectral norms, serialisation."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import layers as tfs_layers
from tfsmooth import verify

SMOOTH = ("elu", "softplus", "tanh", "sigmoid")


@pytest.mark.parametrize("name", SMOOTH + ("linear",))
def test_activation_constants_match_grid_estimates(name):
  spec = tfs_layers.get_activation(name)
  lipschitz, smoothness = verify.activation_constants(spec.fn)
  assert lipschitz == pytest.approx(spec.lipschitz, rel=1e-6, abs=1e-9)
  # ELU's s'' = e^x on x < 0 tends to 1 at 0 without being attained; the grid comes within 1e-4.
  assert smoothness == pytest.approx(spec.smoothness, rel=1e-4, abs=1e-9)


def test_builtin_activation_list_matches_the_registry():
  from tfsmooth.app import config  # pylint: disable=g-import-not-at-top
  assert set(config.BUILTIN_ACTIVATIONS) <= set(tfs_layers.activation_names())


def test_spectral_norm_flag_choices_are_the_layers():
  from tfsmooth.app import config  # pylint: disable=g-import-not-at-top
  assert config.SN_NORMS == tfs_layers.SNConv2D.NORMS


def test_table_values_are_the_closed_forms():
  assert tfs_layers.get_activation("tanh").smoothness == pytest.approx(0.7698, abs=1e-4)
  assert tfs_layers.get_activation("sigmoid").smoothness == pytest.approx(0.0962, abs=1e-4)
  assert tfs_layers.get_activation("softplus").smoothness == 0.25


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_kinked_activations_report_infinite_smoothness_and_are_not_smooth(name):
  spec = tfs_layers.get_activation(name)
  assert spec.lipschitz == 1.0 and math.isinf(spec.smoothness)
  # The derivative jumps at 0 (by 1 for relu, 0.8 for leaky_relu), so its difference quotient
  # jump / (2h) grows without bound as h -> 0.
  for h in (1e-2, 1e-4, 1e-6):
    x = tf.constant([-h, h], tf.float64)
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = spec.fn(x)
    slope = tape.gradient(y, x).numpy()
    assert (slope[1] - slope[0]) / (2 * h) >= 0.35 / h


def test_register_custom_activation_and_use_it_in_a_layer():
  tfs_layers.register_activation("scaled_tanh_test", lambda x: 0.5 * tf.tanh(x), 0.5,
                                 0.5 * 4 / (3 * math.sqrt(3)))
  layer = tfs_layers.SmoothActivation("scaled_tanh_test")
  assert layer.bounds() == tfs_layers.Bounds(0.5, 0.5 * 4 / (3 * math.sqrt(3)))
  lipschitz, smoothness = verify.activation_constants(layer.spec.fn)
  assert (lipschitz, smoothness) == pytest.approx((0.5, 0.3849), abs=1e-4)
  with pytest.raises(ValueError, match="already registered"):
    tfs_layers.register_activation("scaled_tanh_test", tf.tanh, 1.0, 1.0)


def test_unknown_activation_is_a_clear_error():
  with pytest.raises(ValueError, match=r"unknown activation 'swish'.*known: elu"):
    tfs_layers.SmoothActivation("swish")


def test_alpha_must_be_positive():
  with pytest.raises(ValueError, match="alpha must be > 0"):
    tfs_layers.AlphaScale(0.0)


def test_bounds_composition_is_the_chain_rule():
  inner, outer = tfs_layers.Bounds(2.0, 3.0), tfs_layers.Bounds(5.0, 7.0)
  # L = 5*2, beta = 7*2^2 + 5*3
  assert inner.then(outer) == tfs_layers.Bounds(10.0, 43.0)
  assert tfs_layers.Bounds(0.0, 0.0).then(tfs_layers.Bounds(1.0, math.inf)).smoothness == 0.0


def _explicit_matrix(fn, input_shape):
  """The matrix of a linear map on inputs of ``input_shape`` (one example)."""
  x = tf.zeros((1, *input_shape))
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  jacobian = tape.jacobian(y, x).numpy()
  return jacobian.reshape(int(np.prod(y.shape)), int(np.prod(input_shape)))


CONV_CASES = [  # input (H, W, C), filters, kernel, stride, padding
    ((8, 8, 3), 4, 3, 1, "same"),
    ((8, 8, 2), 5, 4, 2, "same"),
    ((7, 9, 2), 3, 3, 2, "valid"),
    ((4, 4, 6), 3, 3, 1, "same"),
]


@pytest.mark.parametrize("input_shape,filters,kernel,stride,padding", CONV_CASES)
def test_conv_operator_norm_equals_svd_of_explicit_matrix(input_shape, filters, kernel, stride,
                                                          padding):
  layer = tfs_layers.SNConv2D(filters, kernel, strides=stride, padding=padding, norm="exact")
  layer.build((None, *input_shape))
  matrix = _explicit_matrix(
      lambda x: tfs_layers.conv2d(layer.kernel, x, layer.strides, padding), input_shape)
  exact = np.linalg.norm(matrix.astype(np.float64), ord=2)
  assert layer.operator_norm() == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("input_shape,filters,kernel,stride,padding", CONV_CASES)
def test_exact_mode_normalises_the_true_operator_norm_to_one(input_shape, filters, kernel,
                                                             stride, padding):
  layer = tfs_layers.SNConv2D(filters, kernel, strides=stride, padding=padding, norm="exact")
  layer.build((None, *input_shape))
  layer.converge()
  normalized = layer.kernel / layer.sigma()
  matrix = _explicit_matrix(
      lambda x: tfs_layers.conv2d(normalized, x, layer.strides, padding), input_shape)
  true_norm = np.linalg.norm(matrix.astype(np.float64), ord=2)
  assert true_norm <= 1.0 + 1e-4
  assert true_norm >= 1.0 - 1e-4  # normalised, not shrunk
  assert layer.bounds().lipschitz == pytest.approx(true_norm, rel=1e-5)


def test_kernel_mode_norm_is_not_the_operator_norm_but_its_bound_holds():
  layer = tfs_layers.SNConv2D(8, 3, norm="kernel")
  layer.build((None, 8, 8, 4))
  layer.converge(500)
  normalized = layer.kernel / layer.sigma()
  reshaped = np.linalg.norm(np.reshape(normalized, (-1, 8)), ord=2)
  matrix = _explicit_matrix(lambda x: tfs_layers.conv2d(normalized, x, (1, 1), "same"),
                            (8, 8, 4))
  true_norm = np.linalg.norm(matrix.astype(np.float64), ord=2)
  assert reshaped == pytest.approx(1.0, abs=1e-4)
  assert true_norm > 1.2  # Miyato's normalisation leaves the convolution above 1
  assert layer.bounds().lipschitz == pytest.approx(true_norm, rel=1e-5)
  tsuzuku = verify.conv_norms(keras.Sequential([keras.Input((8, 8, 4)), layer]))[0]
  assert true_norm <= tsuzuku.kernel_mode_bound <= 3.0 + 1e-4  # sqrt(3*3) * 1


def test_kernel_mode_with_dynamic_size_reports_the_size_free_bound():
  layer = tfs_layers.SNConv2D(8, 3, strides=2, norm="kernel")
  layer.build((None, None, None, 4))
  layer.converge()
  # ceil(3/2)^2 = 4 patches per pixel: sqrt(4) * |reshaped normalised kernel| = 2.
  assert layer.bounds().lipschitz == pytest.approx(2.0, rel=1e-5)


def test_sn_dense_bound_is_exact_spectral_norm():
  layer = tfs_layers.SNDense(7)
  layer.build((None, 5))
  layer.converge()
  normalized = np.asarray(layer.kernel) / float(layer.sigma())
  assert layer.bounds().lipschitz == pytest.approx(np.linalg.norm(normalized, ord=2), rel=1e-6)
  assert layer.bounds().lipschitz == pytest.approx(1.0, abs=1e-5)


def test_training_call_updates_power_vector_and_inference_does_not():
  layer = tfs_layers.SNDense(6)
  x = tf.random.normal((3, 4))
  layer(x)
  before = np.array(layer.u)
  layer(x, training=False)
  np.testing.assert_array_equal(before, np.array(layer.u))
  layer(x, training=True)
  assert not np.allclose(before, np.array(layer.u))
  for _ in range(300):
    layer(x, training=True)
  assert float(layer.sigma()) == pytest.approx(np.linalg.norm(np.array(layer.kernel), 2),
                                               rel=1e-5)


def test_gradient_flows_through_sigma():
  """At a converged u, d/dW of sum(x W / sigma(W)) equals autodiff through W / |W|_2."""
  layer = tfs_layers.SNDense(3, use_bias=False)
  x = tf.random.normal((5, 4))
  layer(x)
  layer.converge(2000)
  with tf.GradientTape() as tape:
    y = tf.reduce_sum(layer(x, training=False) * tf.range(1.0, 4.0))
  ours = tape.gradient(y, layer.kernel).numpy()
  kernel = tf.Variable(np.array(layer.kernel, np.float64))
  with tf.GradientTape() as tape:
    s = tf.linalg.svd(kernel, compute_uv=False)[0]
    weights = tf.range(1.0, 4.0, dtype=tf.float64)
    y = tf.reduce_sum(tf.matmul(tf.cast(x, tf.float64), kernel / s) * weights)
  reference = tape.gradient(y, kernel).numpy()
  # float32 rounding, not an approximation, is all that separates the two: the forward and
  # backward passes are a few float32 products and sums of 4-5 terms, and sigma from 2000 power
  # iterations is |W|_2 to rounding. The error is absolute in the gradient's scale (the sigma
  # term, -(x^T w) u v^T / sigma, cancels part of each element, so small elements carry the
  # rounding of large ones): measured at most 2.2 eps * max|reference| over 31 seeds (this one
  # and 0..29). 16 eps leaves room for other CPUs' summation order; dropping sigma's gradient
  # would err by O(max|reference|).
  scale = np.finfo(np.float32).eps * np.abs(reference).max()
  np.testing.assert_allclose(ours, reference, rtol=0, atol=16 * scale)


def test_exact_mode_needs_known_spatial_size():
  layer = tfs_layers.SNConv2D(4, 3, norm="exact")
  with pytest.raises(ValueError, match="known input height and width"):
    layer.build((None, None, None, 3))


def _model(norm):
  return keras.Sequential([
      keras.Input((8, 8, 3)),
      tfs_layers.SNConv2D(4, 3, norm=norm), tfs_layers.SmoothActivation("softplus"),
      tfs_layers.SNConv2D(4, 4, strides=2, norm=norm), tfs_layers.SmoothActivation("tanh"),
      keras.layers.Flatten(), tfs_layers.SNDense(1), tfs_layers.AlphaScale(2.5)])


@pytest.mark.parametrize("norm", ["exact", "kernel"])
def test_save_and_load_gives_identical_outputs(tmp_path, norm):
  model = _model(norm)
  x = tf.random.normal((4, 8, 8, 3))
  for _ in range(3):
    model(x, training=True)  # move u away from its initial value
  path = str(tmp_path / "model.keras")
  model.save(path)
  restored = keras.models.load_model(path)
  np.testing.assert_array_equal(model(x).numpy(), restored(x).numpy())
  np.testing.assert_array_equal(np.array(model.layers[0].u), np.array(restored.layers[0].u))
  assert restored.layers[0].get_config()["norm"] == norm
  assert restored.layers[-1].alpha == 2.5
  assert restored.layers[1].spec.name == "softplus"


def test_saved_model_export_round_trip(tmp_path):
  model = _model("exact")
  x = tf.random.normal((4, 8, 8, 3))
  model(x)
  model.export(str(tmp_path / "saved"), verbose=False)
  reloaded = tf.saved_model.load(str(tmp_path / "saved"))
  np.testing.assert_array_equal(model(x).numpy(), reloaded.serve(x).numpy())
