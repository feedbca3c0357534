"""Keras layers that know their own Lipschitz and smoothness bounds.

Chu, Minami, Fukumizu, *Smoothness and Stability in GANs* (ICLR 2020), Section 5.1: a discriminator
``f(x) = alpha * W_k s(W_{k-1} ... s(W_1 x))`` with every ``|W_i|_2 <= 1`` (the true operator norm)
and 1-Lipschitz, beta_s-smooth activations ``s`` is alpha-Lipschitz (condition D1) and has an
alpha * sum(beta_s)-Lipschitz gradient (condition D2). Every layer here reports a ``Bounds``
(its Lipschitz constant and the Lipschitz constant of its Jacobian); ``tfsmooth.theory`` composes
them over a built model.

Spectral normalisation follows Miyato et al. (2018): a persistent vector ``u`` is refined by one
power-iteration step per training call and the kernel is divided by the resulting estimate
``sigma``. Unlike ``keras.layers.SpectralNormalization`` (which writes ``W / sigma`` into the
kernel and passes no gradient through ``sigma``), the gradient here flows through ``W / sigma``
with ``u`` and ``v`` held constant, as in Miyato et al.'s own code and PyTorch's
``spectral_norm``: the optimiser then sees the function it actually trains.

For a convolution the reshaped-kernel norm Miyato et al. use is not the operator norm of the
convolution; ``SNConv2D(norm="exact")`` runs the power iteration with ``conv2d`` and its adjoint
``conv2d_transpose`` on the layer's real input shape, so the normalised layer has operator norm 1.
"""

from collections.abc import Callable
import dataclasses
import math

import keras
import numpy as np
import scipy.sparse.linalg
import tensorflow as tf

_PACKAGE = "tfsmooth"


@dataclasses.dataclass(frozen=True)
class Bounds:
  """Global bounds of a map ``g``: ``|g(x) - g(y)| <= lipschitz * |x - y|`` and
  ``|Dg(x) - Dg(y)|_op <= smoothness * |x - y|`` (Euclidean norms; ``inf`` = no bound)."""

  lipschitz: float
  smoothness: float

  def then(self, outer: "Bounds") -> "Bounds":
    """Bounds of ``outer(self(x))``.

    Chain rule: ``D(g o h) = Dg(h) Dh`` and
    ``D^2(g o h)[u, v] = D^2 g[Dh u, Dh v] + Dg D^2 h[u, v]``,
    so ``L = L_g L_h`` and ``beta = beta_g L_h^2 + L_g beta_h``.
    """
    return Bounds(
        lipschitz=product_or_zero(outer.lipschitz, self.lipschitz),
        smoothness=(product_or_zero(outer.smoothness, self.lipschitz**2) +
                    product_or_zero(outer.lipschitz, self.smoothness)))


IDENTITY_BOUNDS = Bounds(lipschitz=1.0, smoothness=0.0)


def product_or_zero(a: float, b: float) -> float:
  """``a * b`` with ``0 * inf = 0``: a constant map composed with anything is constant."""
  return 0.0 if a == 0.0 or b == 0.0 else a * b


# --------------------------------------------------------------------------------------------
# Activations


@dataclasses.dataclass(frozen=True)
class ActivationSpec:
  """An elementwise activation with ``lipschitz = sup|s'|`` and ``smoothness = sup|s''|``."""

  name: str
  fn: Callable[[tf.Tensor], tf.Tensor]
  lipschitz: float
  smoothness: float

  @property
  def bounds(self) -> Bounds:
    return Bounds(self.lipschitz, self.smoothness)


_ACTIVATIONS: dict[str, ActivationSpec] = {}


def register_activation(name: str, fn: Callable[[tf.Tensor], tf.Tensor], lipschitz: float,
                        smoothness: float, overwrite: bool = False) -> ActivationSpec:
  """Registers an elementwise activation with its constants (``sup|s'|``, ``sup|s''|``).

  The constants are the user's claim; ``tfsmooth.verify.activation_constants`` estimates both
  on a grid so a test can check them. ``smoothness=math.inf`` marks a non-smooth activation
  (condition D2 of Chu et al. then fails and ``beta1`` is infinite).

  Args:
    name: the name ``SmoothActivation`` and ``get_activation`` know it by.
    fn: the activation, applied elementwise to a tensor.
    lipschitz: ``sup|s'|``, the activation's Lipschitz constant (>= 0).
    smoothness: ``sup|s''|``, the Lipschitz constant of its derivative (>= 0; ``math.inf`` if
      it has none).
    overwrite: replace an activation already registered as ``name``.

  Returns:
    The registered ``ActivationSpec``.

  Raises:
    ValueError: ``name`` is already registered and ``overwrite`` is False, or a constant is
      negative or NaN.
  """
  if name in _ACTIVATIONS and not overwrite:
    raise ValueError(f"activation '{name}' is already registered (pass overwrite=True)")
  if not lipschitz >= 0 or not smoothness >= 0:
    raise ValueError(f"activation '{name}': constants must be >= 0, got "
                     f"lipschitz={lipschitz}, smoothness={smoothness}")
  spec = ActivationSpec(name, fn, float(lipschitz), float(smoothness))
  _ACTIVATIONS[name] = spec
  return spec


def get_activation(name: str) -> ActivationSpec:
  try:
    return _ACTIVATIONS[name]
  except KeyError:
    raise ValueError(f"unknown activation '{name}'; known: "
                     f"{', '.join(activation_names())}") from None


def activation_names() -> list[str]:
  return sorted(_ACTIVATIONS)


def _leaky_relu(x):
  return tf.nn.leaky_relu(x, alpha=0.2)


# Constants from docs/theory.md section 1; tests/test_layers.py checks each on a grid.
# ELU is TensorFlow's fused op: its gradient (EluGrad) and that gradient's gradient are
# registered, so every order verify.py takes exists and stays finite, and the train step runs
# 1.25-1.9x faster than with ELU spelled as where/expm1/minimum (docs/performance.md).
register_activation("elu", tf.nn.elu, 1.0, 1.0)
register_activation("softplus", tf.nn.softplus, 1.0, 0.25)
register_activation("tanh", tf.math.tanh, 1.0, 4.0 / (3.0 * math.sqrt(3.0)))
register_activation("sigmoid", tf.math.sigmoid, 0.25, 1.0 / (6.0 * math.sqrt(3.0)))
register_activation("relu", tf.nn.relu, 1.0, math.inf)
register_activation("leaky_relu", _leaky_relu, 1.0, math.inf)
register_activation("linear", tf.identity, 1.0, 0.0)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SmoothActivation(keras.layers.Layer):
  """Elementwise activation from the registry, e.g. ``SmoothActivation("elu")``.

  Its bounds are the registered constants: ``(sup|s'|, sup|s''|)``.

  Args:
    activation: the name of a registered activation (``register_activation``).
    **kwargs: passed to ``keras.layers.Layer``.

  Raises:
    ValueError: ``activation`` is not registered.
  """

  def __init__(self, activation: str = "elu", **kwargs):
    super().__init__(**kwargs)
    self.spec = get_activation(activation)

  def call(self, inputs):
    return self.spec.fn(inputs)

  def compute_output_shape(self, input_shape):
    return input_shape

  def bounds(self) -> Bounds:
    return self.spec.bounds

  def get_config(self):
    return {**super().get_config(), "activation": self.spec.name}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AlphaScale(keras.layers.Layer):
  """Multiplies by the fixed constant ``alpha > 0``: the final scale of Chu et al. Section 7,
  which sets the discriminator's Lipschitz constant (D1) once every other layer is 1-Lipschitz.

  Args:
    alpha: the scale (not trained); the layer's bounds are ``(alpha, 0)``.
    **kwargs: passed to ``keras.layers.Layer``.

  Raises:
    ValueError: ``alpha`` is not > 0.
  """

  def __init__(self, alpha: float = 1.0, **kwargs):
    super().__init__(**kwargs)
    if not alpha > 0:
      raise ValueError(f"AlphaScale: alpha must be > 0, got {alpha}")
    self.alpha = float(alpha)

  def call(self, inputs):
    return inputs * self.alpha

  def compute_output_shape(self, input_shape):
    return input_shape

  def bounds(self) -> Bounds:
    return Bounds(self.alpha, 0.0)

  def get_config(self):
    return {**super().get_config(), "alpha": self.alpha}


# --------------------------------------------------------------------------------------------
# Spectral normalisation


def _normalize(x, eps=1e-12):
  return x / (tf.norm(x) + eps)


# Set by ``differentiable_sigma``: power iterations that sigma() runs with the derivative flowing
# through them (0: the training form, u and v constants for the gradient).
_DIFFERENTIABLE_SIGMA_ITERATIONS = [0]
CONVERGE_ITERATIONS = 100  # power steps without a derivative before those (differentiable_sigma)


class differentiable_sigma:  # noqa: N801  (a context manager, named as the mode it sets)
  """Within this context (at trace time), every spectrally normalised layer computes ``sigma``
  from its stored ``u`` by ``CONVERGE_ITERATIONS`` power-iteration steps without a derivative
  and then ``iterations`` steps *with* the derivative flowing through them; ``u`` is left as it
  was.

  Training holds ``u`` and ``v`` constant, which gives the exact first derivative of the top
  singular value at convergence (``u v^T``) but not its second: a derivative of the gradient
  (the game's Jacobian, ``tfsmooth.spectrum``) needs ``du / dW`` too, which the iterations'
  own derivative approaches as they converge (for a top singular value that is simple).
  """

  def __init__(self, iterations: int = 10):
    if iterations < 1:
      raise ValueError(f"iterations must be >= 1, got {iterations}")
    self.iterations = int(iterations)

  def __enter__(self):
    self._outer = _DIFFERENTIABLE_SIGMA_ITERATIONS[0]
    _DIFFERENTIABLE_SIGMA_ITERATIONS[0] = self.iterations
    return self

  def __exit__(self, *unused):
    _DIFFERENTIABLE_SIGMA_ITERATIONS[0] = self._outer


class _SpectralNormalized(keras.layers.Layer):
  """Shared power-iteration machinery; subclasses define the linear map and its adjoint."""

  def __init__(self, power_iterations: int = 1, use_bias: bool = True,
               kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
    super().__init__(**kwargs)
    if power_iterations < 1:
      raise ValueError(f"power_iterations must be >= 1, got {power_iterations}")
    self.power_iterations = int(power_iterations)
    self.use_bias = bool(use_bias)
    self.kernel_initializer = keras.initializers.get(kernel_initializer)
    self.bias_initializer = keras.initializers.get(bias_initializer)

  # Subclasses: the linear map A (on u's space <- v's space), its adjoint, and vector shapes.
  def _apply(self, kernel, v):
    raise NotImplementedError

  def _adjoint(self, kernel, u):
    raise NotImplementedError

  def _add_power_vector(self, shape):
    # ``mean`` aggregation: every replica computes the same u from the same kernel.
    self.u = self.add_weight(
        name="power_u", shape=shape, trainable=False, aggregation="mean",
        initializer=keras.initializers.RandomNormal(seed=None))

  def _power_step(self, kernel, u):
    v = _normalize(self._adjoint(kernel, u))
    u = _normalize(self._apply(kernel, v))
    return u, v

  def sigma(self, kernel=None, update: bool = False, iterations: int | None = None):
    """Estimate of the largest singular value of the linear map, differentiable in ``kernel``.

    ``u`` and ``v`` are constants for the gradient, so ``d sigma / dW = u v^T``: the derivative
    of the top singular value at convergence.
    """
    kernel = self.kernel if kernel is None else kernel
    u = tf.convert_to_tensor(self.u)
    if _DIFFERENTIABLE_SIGMA_ITERATIONS[0]:
      # Converge first without a derivative (a loop, cheap to trace), then a few steps with it:
      # from a converged start the derivative of u converges as fast as u itself did.
      frozen = tf.stop_gradient(kernel)
      _, u = tf.while_loop(lambda i, _: i < CONVERGE_ITERATIONS,
                           lambda i, u: (i + 1, self._power_step(frozen, u)[0]), (0, u))
      u = tf.stop_gradient(u)
      for _ in range(_DIFFERENTIABLE_SIGMA_ITERATIONS[0]):
        u, v = self._power_step(kernel, u)
      return tf.reduce_sum(u * self._apply(kernel, v))
    if update:
      for _ in range(iterations or self.power_iterations):
        u, _ = self._power_step(tf.stop_gradient(kernel), u)
      self.u.assign(u)
    v = tf.stop_gradient(_normalize(self._adjoint(kernel, u)))
    u = tf.stop_gradient(u)
    return tf.reduce_sum(u * self._apply(kernel, v))

  def normalized_kernel(self, training=False):
    return self.kernel / self.sigma(update=bool(training))

  def converge(self, iterations: int = 200):
    """Brings ``u`` to the top singular vector (e.g. after init or before reporting constants);
    returns the resulting ``sigma``. Generic version: ``iterations`` power-iteration steps."""
    return float(self.sigma(update=True, iterations=iterations))

  def operator_norm(self, kernel=None) -> float:
    """The operator norm of ``kernel``'s linear map (the layer's own kernel by default)."""
    raise NotImplementedError

  def bounds(self) -> Bounds:
    """Bounds of the layer as it acts at inference: ``W / sigma`` with the stored ``u``.

    The operator norm of ``W / sigma`` is computed (not assumed to be 1): with an unconverged
    ``u`` it exceeds 1 and the reported bound says so.
    """
    normalized = tf.convert_to_tensor(self.kernel) / self.sigma()
    return Bounds(self.operator_norm(normalized), 0.0)

  def _base_config(self):
    return {
        **super().get_config(),
        "power_iterations": self.power_iterations,
        "use_bias": self.use_bias,
        "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        "bias_initializer": keras.initializers.serialize(self.bias_initializer),
    }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SNDense(_SpectralNormalized):
  """Dense layer with spectral normalisation: ``y = x W / sigma(W) + b``.

  For a dense layer the kernel matrix is the operator, so its spectral norm is exact;
  ``bounds()`` uses an SVD.

  Args:
    units: the output width.
    power_iterations: power-iteration steps that refine ``u`` per training call (>= 1).
    use_bias: add a trainable bias after the normalised map.
    kernel_initializer: the kernel's Keras initializer (name or object).
    bias_initializer: the bias's Keras initializer (name or object).
    **kwargs: passed to ``keras.layers.Layer``.

  Raises:
    ValueError: ``power_iterations`` < 1.
  """

  def __init__(self, units: int, **kwargs):
    super().__init__(**kwargs)
    self.units = int(units)

  def build(self, input_shape):
    in_dim = int(input_shape[-1])
    self.kernel = self.add_weight(name="kernel", shape=(in_dim, self.units),
                                  initializer=self.kernel_initializer)
    self.bias = (self.add_weight(name="bias", shape=(self.units,),
                                 initializer=self.bias_initializer) if self.use_bias else None)
    self._add_power_vector((1, self.units))

  def _apply(self, kernel, v):
    return tf.matmul(v, kernel)

  def _adjoint(self, kernel, u):
    return tf.matmul(u, kernel, transpose_b=True)

  def operator_norm(self, kernel=None) -> float:
    return _matrix_norm(self.kernel if kernel is None else kernel)

  def converge(self, iterations: int = 200):
    """Sets ``u`` to the kernel's top singular vector (by SVD); ``iterations`` is unused."""
    del iterations
    self.u.assign(_top_output_singular_vector(self.kernel))
    return float(self.sigma())

  def call(self, inputs, training=None):
    outputs = tf.matmul(inputs, self.normalized_kernel(training))
    return outputs + self.bias if self.use_bias else outputs

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], self.units)

  def get_config(self):
    return {**self._base_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SNConv2D(_SpectralNormalized):
  """Conv2D (NHWC) with spectral normalisation.

  ``norm="exact"`` (default) normalises by the operator norm of the convolution itself on the
  layer's input shape: the power iteration applies ``conv2d`` and its adjoint
  ``conv2d_transpose``, so ``u`` has the layer's output shape. The normalised layer is then
  1-Lipschitz, as Chu et al.'s D1/D2 bounds assume.

  ``norm="kernel"`` is Miyato et al.'s normalisation of the kernel reshaped to a
  ``(kh*kw*c_in, c_out)`` matrix. That matrix norm ``|M|`` does not bound the convolution: the
  normalised layer's operator norm is typically 1.2-2.3 (see docs/constants.md), and
  ``bounds()`` reports it. Each input pixel enters at most ``ceil(kh/sh)*ceil(kw/sw)`` patches,
  so the norm is at most ``sqrt(ceil(kh/sh)*ceil(kw/sw)) * |M|`` (Tsuzuku et al. 2018).

  Args:
    filters: output channels.
    kernel_size: ``kh`` and ``kw``: an int for a square kernel, or a pair.
    strides: ``sh`` and ``sw``: an int or a pair.
    padding: ``"same"`` or ``"valid"`` (either case).
    norm: ``"exact"`` (the convolution's operator norm on the input shape) or ``"kernel"``
      (Miyato et al.'s reshaped kernel).
    power_iterations: power-iteration steps that refine ``u`` per training call (>= 1).
    use_bias: add a trainable bias after the normalised map.
    kernel_initializer: the kernel's Keras initializer (name or object).
    bias_initializer: the bias's Keras initializer (name or object).
    **kwargs: passed to ``keras.layers.Layer``.

  Raises:
    ValueError: an unknown ``norm`` or ``padding``, ``power_iterations`` < 1; when built,
      ``norm="exact"`` on an input of unknown height or width.
  """

  NORMS = ("exact", "kernel")  # tfsmooth.app.config.SN_NORMS names the same (a test checks)

  def __init__(self, filters: int, kernel_size=3, strides=1, padding: str = "same",
               norm: str = "exact", **kwargs):
    super().__init__(**kwargs)
    if norm not in self.NORMS:
      raise ValueError(f"SNConv2D: norm must be one of {self.NORMS}, got '{norm}'")
    padding = padding.lower()
    if padding not in ("same", "valid"):
      raise ValueError(f"SNConv2D: padding must be 'same' or 'valid', got '{padding}'")
    self.filters = int(filters)
    self.kernel_size = _pair(kernel_size)
    self.strides = _pair(strides)
    self.padding = padding
    self.norm = norm
    self._top_vector = None  # the last bounds() call's top singular vector (its warm start)

  def build(self, input_shape):
    height, width, channels = input_shape[1], input_shape[2], int(input_shape[3])
    if self.norm == "exact" and (height is None or width is None):
      raise ValueError(
          f"SNConv2D '{self.name}' with norm='exact' needs a known input height and width "
          f"(the operator norm depends on them); got input shape {tuple(input_shape)}")
    self.kernel = self.add_weight(name="kernel", shape=(*self.kernel_size, channels, self.filters),
                                  initializer=self.kernel_initializer)
    self.bias = (self.add_weight(name="bias", shape=(self.filters,),
                                 initializer=self.bias_initializer) if self.use_bias else None)
    # (H, W, C) of one input; None when the spatial size is dynamic (kernel mode only).
    self.input_hw = (None if height is None or width is None else
                      (int(height), int(width), channels))
    if self.norm == "exact":
      out_h, out_w = self._output_hw(height, width)
      self._add_power_vector((1, out_h, out_w, self.filters))
    else:
      self._add_power_vector((1, self.filters))

  def _output_hw(self, height, width):
    (kh, kw), (sh, sw) = self.kernel_size, self.strides
    if self.padding == "same":
      return -(-height // sh), -(-width // sw)
    return (height - kh) // sh + 1, (width - kw) // sw + 1

  def _apply(self, kernel, v):
    if self.norm == "exact":
      return conv2d(kernel, v, self.strides, self.padding)
    return tf.matmul(v, tf.reshape(kernel, (-1, self.filters)))

  def _adjoint(self, kernel, u):
    if self.norm == "exact":
      return conv2d_adjoint(kernel, u, self.input_hw, self.strides, self.padding)
    return tf.matmul(u, tf.reshape(kernel, (-1, self.filters)), transpose_b=True)

  def converge(self, iterations: int = 200):
    """Sets ``u`` from the top singular vector: by Lanczos iteration in exact mode (power
    iteration converges slowly on convolutions), by SVD of the reshaped kernel in kernel mode;
    ``iterations`` is unused."""
    del iterations
    if self.norm == "kernel":
      self.u.assign(_top_output_singular_vector(tf.reshape(self.kernel, (-1, self.filters))))
      return float(self.sigma())
    _, v = conv2d_top_singular(self.kernel, self.input_hw, self.strides, self.padding)
    self.u.assign(_normalize(conv2d(tf.convert_to_tensor(self.kernel),
                                    tf.constant(v, tf.float32), self.strides, self.padding)))
    return float(self.sigma())

  def patch_overlap(self) -> int:
    """The most output patches one input pixel enters: ``ceil(kh/sh) * ceil(kw/sw)``."""
    (kh, kw), (sh, sw) = self.kernel_size, self.strides
    return -(-kh // sh) * -(-kw // sw)

  def operator_norm(self, kernel=None) -> float:
    """``norm="exact"``: the convolution's operator norm on the input shape
    (``conv2d_operator_norm``). ``norm="kernel"``: the reshaped kernel's norm, by SVD."""
    kernel = self.kernel if kernel is None else kernel
    if self.norm == "kernel":
      return _matrix_norm(tf.reshape(kernel, (-1, self.filters)))
    return conv2d_operator_norm(kernel, self.input_hw, self.strides, self.padding)

  def bounds(self) -> Bounds:
    """The operator norm of the normalised convolution on the layer's input shape, in either
    mode (about 1 in exact mode; in kernel mode whatever Miyato's normalisation leaves). A
    kernel-mode layer built for a dynamic spatial size reports Tsuzuku et al.'s bound
    ``sqrt(patch overlap) * |reshaped kernel|``, which holds for every input size."""
    normalized = tf.convert_to_tensor(self.kernel) / self.sigma()
    if self.input_hw is not None:
      # Lanczos from the last call's top vector: the same value to the solver's tolerance, with
      # fewer products after a small change of the weights (the live monitors' repeated calls;
      # 10-30% fewer on conv7 after a 1% change, docs/performance.md).
      norm, self._top_vector = conv2d_top_singular(normalized, self.input_hw, self.strides,
                                                   self.padding, start=self._top_vector)
      return Bounds(norm, 0.0)
    return Bounds(math.sqrt(self.patch_overlap()) * self.operator_norm(normalized), 0.0)

  def call(self, inputs, training=None):
    outputs = conv2d(self.normalized_kernel(training), inputs, self.strides, self.padding)
    return outputs + self.bias if self.use_bias else outputs

  def compute_output_shape(self, input_shape):
    height, width = input_shape[1], input_shape[2]
    if height is None or width is None:
      return (input_shape[0], None, None, self.filters)
    return (input_shape[0], *self._output_hw(height, width), self.filters)

  def get_config(self):
    return {**self._base_config(), "filters": self.filters, "kernel_size": self.kernel_size,
            "strides": self.strides, "padding": self.padding, "norm": self.norm}


def conv2d(kernel, inputs, strides, padding):
  return tf.nn.conv2d(inputs, kernel, strides=(1, *strides, 1), padding=padding.upper())


def conv2d_adjoint(kernel, outputs, input_hw, strides, padding):
  """The adjoint of ``conv2d`` on inputs of shape ``(batch, *input_hw)``: ``conv2d_transpose``
  with the forward op's shape, strides and padding."""
  return tf.nn.conv2d_transpose(outputs, kernel, output_shape=(tf.shape(outputs)[0], *input_hw),
                                strides=(1, *strides, 1), padding=padding.upper())


def conv2d_operator_norm(kernel, input_hw, strides=(1, 1), padding="same") -> float:
  """Operator norm (largest singular value) of ``x -> conv2d(kernel, x)`` on inputs of shape
  ``input_hw = (H, W, C)``. Tested against the SVD of the explicit matrix in
  tests/test_layers.py."""
  return conv2d_top_singular(kernel, input_hw, strides, padding)[0]


def conv2d_top_singular(kernel, input_hw, strides=(1, 1), padding="same", start=None):
  """``(sigma, v)``: top singular value and right singular vector (shape ``(1, *input_hw)``) of
  the convolution, as the top eigenpair of ``A^T A`` by ARPACK's Lanczos iteration to
  ``tol=1e-10``, from ``start`` (a vector of that shape) or a fixed random vector, so reports
  are reproducible. Plain power iteration converges slowly here: a convolution's top singular
  values are clustered."""
  kernel = tf.convert_to_tensor(kernel, tf.float32)
  shape = (1, *input_hw)

  def gram(flat):
    v = tf.constant(flat.reshape(shape), tf.float32)
    out = conv2d_adjoint(kernel, conv2d(kernel, v, strides, padding), input_hw, strides, padding)
    return out.numpy().astype(np.float64).ravel()

  size = int(np.prod(shape))
  operator = scipy.sparse.linalg.LinearOperator((size, size), matvec=gram, dtype=np.float64)
  if start is None:
    start = np.random.default_rng(0).standard_normal(size)
  start = np.asarray(start, np.float64).ravel()
  values, vectors = scipy.sparse.linalg.eigsh(operator, k=1, which="LA", v0=start, tol=1e-10)
  return math.sqrt(max(float(values[0]), 0.0)), vectors[:, 0].reshape(shape)


def _top_output_singular_vector(matrix):
  """For ``y = x @ matrix``: the unit output vector ``u`` (shape ``(1, out)``) of the top
  singular value."""
  _, _, vt = np.linalg.svd(np.asarray(matrix, np.float64), full_matrices=False)
  return vt[:1].astype(np.float32)


def _matrix_norm(matrix) -> float:
  return float(np.linalg.norm(np.asarray(matrix, np.float64), ord=2))


def _pair(value) -> tuple[int, int]:
  if isinstance(value, int):
    return (value, value)
  pair = tuple(int(v) for v in value)
  if len(pair) != 2:
    raise ValueError(f"expected an int or a pair, got {value!r}")
  return pair


def converge_spectral_norms(model: keras.Model, iterations: int = 200) -> None:
  """Converges ``u`` in every spectrally normalised layer of ``model`` (e.g. right after
  building it, before reporting its constants).

  Args:
    model: a built Keras model; the layers of nested models are included.
    iterations: power-iteration steps per layer, for a layer that converges by power iteration
      (``SNDense`` and ``SNConv2D`` set ``u`` by SVD or Lanczos iteration and ignore it).
  """
  for layer in all_layers(model):
    if isinstance(layer, _SpectralNormalized):
      layer.converge(iterations)


def all_layers(model):
  """The layers of ``model``, those of the models inside it included (not the inner models)."""
  for layer in model.layers:
    if isinstance(layer, keras.Model):
      yield from all_layers(layer)
    else:
      yield layer
