"""Numerical estimates of the quantities ``tfsmooth.theory`` bounds.

Every estimate here is a lower estimate of a supremum (the largest value found by search), so a
correct bound must lie above it; how far above says how tight the bound is.

- Lipschitz constant of a scalar ``f``: ``sup_x |grad f(x)|``, by normalised gradient ascent on
  ``|grad f(x)|^2`` from many random starts at several scales.
- Smoothness (Lipschitz constant of ``grad f``): ``sup_x |Hess f(x)|_2``, by Hessian-vector-product
  power iteration at each point, with the points moved by gradient ascent on ``|v^T H(x) v|``
  (a third derivative, through autodiff).
- Activations: ``sup|s'|`` and ``sup|s''|`` on a fine float64 grid.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfsmooth import layers as tfs_layers
from tfsmooth import theory

# A linear model has no second derivative: autodiff returns None, which means zero here.
_ZERO = tf.UnconnectedGradients.ZERO
_START_SCALES = (0.1, 1.0, 4.0)  # starts drawn from N(0, scale^2), cycled across starts


def activation_constants(fn, low: float = -30.0, high: float = 30.0,
                         num: int = 600_001) -> tuple[float, float]:
  """``(max|s'|, max|s''|)`` of an elementwise activation on a float64 grid of [low, high]."""
  x = tf.constant(np.linspace(low, high, num), tf.float64)
  with tf.GradientTape() as outer:
    outer.watch(x)
    with tf.GradientTape() as inner:
      inner.watch(x)
      y = fn(x)
    first = inner.gradient(y, x, unconnected_gradients=_ZERO)
  second = outer.gradient(first, x, unconnected_gradients=_ZERO)
  return float(tf.reduce_max(tf.abs(first))), float(tf.reduce_max(tf.abs(second)))


def _scalar_sum(fn, x):
  # Examples are independent, so the gradient of the batch sum is each example's gradient.
  return tf.reduce_sum(fn(x))


def _per_example_norm(t):
  return tf.sqrt(tf.reduce_sum(tf.square(t), axis=tf.range(1, tf.rank(t))))


def _unit_per_example(t):
  norm = _per_example_norm(t)
  return t / tf.reshape(norm + 1e-30, (-1,) + (1,) * (len(t.shape) - 1))


def _starts(input_shape, num_starts, seed):
  rng = np.random.default_rng(seed)
  scales = np.array([_START_SCALES[i % len(_START_SCALES)] for i in range(num_starts)])
  points = rng.standard_normal((num_starts, *input_shape)) * scales.reshape(
      (-1,) + (1,) * len(input_shape))
  return tf.constant(points, tf.float32), tf.constant(scales, tf.float32)


def _gradient_norms(fn, x):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = _scalar_sum(fn, x)
  return _per_example_norm(tape.gradient(y, x, unconnected_gradients=_ZERO))


def estimate_lipschitz(fn, input_shape, num_starts: int = 32, steps: int = 50,
                       step_size: float = 0.05, seed: int = 0) -> float:
  """Largest ``|grad f(x)|`` found by normalised gradient ascent from ``num_starts`` starts."""
  x, scales = _starts(input_shape, num_starts, seed)
  step_scale = tf.reshape(scales * step_size, (-1,) + (1,) * len(input_shape))

  @tf.function
  def ascent_step(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      norms = _gradient_norms(fn, x)
      objective = tf.reduce_sum(tf.square(norms))
    direction = _unit_per_example(tape.gradient(objective, x, unconnected_gradients=_ZERO))
    return x + step_scale * direction, tf.reduce_max(norms)

  best = 0.0
  for _ in range(steps):
    x, found = ascent_step(x)
    best = max(best, float(found))
  return max(best, float(tf.reduce_max(_gradient_norms(fn, x))))


def _hessian_vector_product(fn, x, v):
  with tf.GradientTape() as outer:
    outer.watch(x)
    with tf.GradientTape() as inner:
      inner.watch(x)
      y = _scalar_sum(fn, x)
    gradient_dot_v = tf.reduce_sum(inner.gradient(y, x, unconnected_gradients=_ZERO) * v)
  return outer.gradient(gradient_dot_v, x, unconnected_gradients=_ZERO)


def estimate_smoothness(fn, input_shape, num_points: int = 32, power_iterations: int = 20,
                        ascent_steps: int = 20, step_size: float = 0.05, seed: int = 0) -> float:
  """Largest Hessian spectral norm found: power iteration at each point, then ascent steps that
  move the points up ``|v^T H(x) v|`` while refining ``v`` by one power step each."""
  x, scales = _starts(input_shape, num_points, seed)
  v = _unit_per_example(tf.constant(
      np.random.default_rng(seed + 1).standard_normal((num_points, *input_shape)), tf.float32))
  step_scale = tf.reshape(scales * step_size, (-1,) + (1,) * len(input_shape))

  @tf.function
  def power_step(x, v):
    hv = _hessian_vector_product(fn, x, v)
    return _unit_per_example(hv), tf.reduce_max(_per_example_norm(hv))

  @tf.function
  def ascent_step(x, v):
    with tf.GradientTape() as tape:
      tape.watch(x)
      hv = _hessian_vector_product(fn, x, v)
      rayleigh = tf.reduce_sum(tf.abs(tf.reduce_sum(hv * v, axis=tf.range(1, tf.rank(v)))))
    direction = _unit_per_example(tape.gradient(rayleigh, x, unconnected_gradients=_ZERO))
    return x + step_scale * direction, _unit_per_example(hv), tf.reduce_max(_per_example_norm(hv))

  best = 0.0
  for _ in range(power_iterations):
    v, found = power_step(x, v)
    best = max(best, float(found))
  for _ in range(ascent_steps):
    x, v, found = ascent_step(x, v)
    best = max(best, float(found))
  for _ in range(power_iterations):
    v, found = power_step(x, v)
    best = max(best, float(found))
  return best


@dataclasses.dataclass(frozen=True)
class Verification:
  """Bounds of a built discriminator next to numerical estimates of the true quantities."""

  lipschitz_bound: float
  lipschitz_estimate: float
  smoothness_bound: float  # beta1
  smoothness_estimate: float

  @property
  def holds(self) -> bool:
    return (self.lipschitz_estimate <= self.lipschitz_bound and
            self.smoothness_estimate <= self.smoothness_bound)


def verify_model(model: keras.Model, num_starts: int = 32, steps: int = 50,
                 power_iterations: int = 20, seed: int = 0) -> Verification:
  """Estimates the Lipschitz constant and smoothness of ``model`` (at inference) and returns them
  next to the bounds of ``theory.model_bounds``. ``model`` is any model that function accepts
  (Sequential or functional, one input, residual sums); only calling it is needed here.

  Both estimates are lower estimates of a supremum, so a correct bound lies above them.

  Args:
    model: a built model with one scalar output per example.
    num_starts: random starts for the Lipschitz search, and points for the smoothness search.
    steps: gradient-ascent steps of the Lipschitz search; the smoothness search takes
      ``steps // 2``.
    power_iterations: Hessian-vector power-iteration steps at each point of the smoothness
      search, before and after its ascent.
    seed: the seed of the random starts.

  Returns:
    ``Verification``: ``lipschitz_bound`` and ``smoothness_bound`` (alpha and beta1 of
    ``model_bounds``) next to ``lipschitz_estimate`` and ``smoothness_estimate``; ``holds`` is
    whether both estimates lie below their bounds.

  Raises:
    ValueError: ``model`` is not built.
    UnboundedLayerError: a layer or graph ``theory.model_bounds`` cannot bound.
  """
  bounds = theory.model_bounds(model)
  input_shape = tuple(model.inputs[0].shape[1:])

  def fn(x):
    return model(x, training=False)

  lipschitz = estimate_lipschitz(fn, input_shape, num_starts=num_starts, steps=steps, seed=seed)
  smoothness = estimate_smoothness(fn, input_shape, num_points=num_starts,
                                   power_iterations=power_iterations, ascent_steps=steps // 2,
                                   seed=seed)
  return Verification(bounds.lipschitz, lipschitz, bounds.beta1, smoothness)


@dataclasses.dataclass(frozen=True)
class ConvNorm:
  """One convolution of a model: its normalised kernel as Miyato et al. measure it (reshaped to a
  matrix) next to the operator norm of the convolution itself on the layer's input shape."""

  name: str
  norm_mode: str
  reshaped_kernel_norm: float
  operator_norm: float
  kernel_mode_bound: float  # sqrt(patch overlap) * reshaped norm (Tsuzuku et al. 2018)


def conv_norms(model: keras.Model) -> list[ConvNorm]:
  """The normalised-kernel norms of every ``SNConv2D`` in ``model`` (reshaped vs operator)."""
  rows = []
  for layer in theory.model_layers(model):
    if not isinstance(layer, tfs_layers.SNConv2D) or layer.input_hw is None:
      continue
    kernel = tf.convert_to_tensor(layer.kernel) / layer.sigma()
    reshaped = float(np.linalg.norm(np.reshape(kernel, (-1, layer.filters)), ord=2))
    operator = tfs_layers.conv2d_operator_norm(kernel, layer.input_hw, layer.strides,
                                               layer.padding)
    rows.append(ConvNorm(layer.name, layer.norm, reshaped, operator,
                         float(np.sqrt(layer.patch_overlap())) * reshaped))
  return rows
