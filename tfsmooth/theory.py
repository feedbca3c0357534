"""The constants of Chu, Minami, Fukumizu (ICLR 2020) computed from a built discriminator.

Theorem 1: if the optimal discriminator ``Phi_mu`` is alpha-Lipschitz (D1), has a
beta1-Lipschitz gradient in x (D2) and a beta2-Lipschitz gradient in mu w.r.t. Wasserstein-1
(D3), and the generator map is A-Lipschitz in expectation (G1) with a B-Lipschitz Jacobian (G2),
then ``theta -> J(mu_theta)`` is L-smooth with ``L = alpha*B + A^2*(beta1 + beta2)`` and gradient
descent with step ``gamma <= gamma* = 1/L`` converges to a stationary point.

``alpha`` and ``beta1`` come from walking the layer graph of the built discriminator (a
Sequential or functional model; residual sums allowed) and composing each layer's ``Bounds``
(``tfsmooth.layers``); ``beta2`` comes from the RKHS penalty; A and B from the generator
(particle generator: A = 1/sqrt(n), B = 0; Section 7).
"""

import dataclasses
import math

import keras
from keras.src.ops import numpy as keras_numpy_ops
import numpy as np

from tfsmooth import layers as tfs_layers

Bounds = tfs_layers.Bounds


class UnboundedLayerError(ValueError):
  """A layer whose Lipschitz or smoothness bound tfsmooth cannot state."""


# Layers that are the identity or an isometry on the function the model computes at inference.
_ISOMETRIES = (keras.layers.InputLayer, keras.layers.Flatten, keras.layers.Reshape,
               keras.layers.Permute, keras.layers.Dropout, keras.layers.GaussianNoise,
               keras.layers.Identity)

# keras.layers.Activation / Dense(activation=...) functions by their __name__.
_KERAS_ACTIVATION_NAMES = {"elu": "elu", "softplus": "softplus", "tanh": "tanh",
                           "sigmoid": "sigmoid", "relu": "relu", "linear": "linear",
                           "leaky_relu": "leaky_relu"}


def _keras_activation_bounds(function, layer_name: str) -> Bounds:
  name = getattr(function, "__name__", repr(function))
  if name not in _KERAS_ACTIVATION_NAMES:
    raise UnboundedLayerError(
        f"cannot bound layer '{layer_name}': activation '{name}' has no registered constants "
        f"(register it with tfsmooth.layers.register_activation and use SmoothActivation)")
  if name == "leaky_relu":  # Keras's default slope differs from ours; only the constants matter
    return Bounds(1.0, math.inf)
  return tfs_layers.get_activation(_KERAS_ACTIVATION_NAMES[name]).bounds


def layer_bounds(layer: keras.layers.Layer) -> Bounds:
  """The ``Bounds`` of one built layer, or ``UnboundedLayerError``."""
  if hasattr(layer, "bounds"):
    return layer.bounds()
  if isinstance(layer, _ISOMETRIES):
    return tfs_layers.IDENTITY_BOUNDS
  if isinstance(layer, keras.layers.Activation):
    return _keras_activation_bounds(layer.activation, layer.name)
  if isinstance(layer, keras.layers.ELU) and float(layer.alpha) == 1.0:
    return tfs_layers.get_activation("elu").bounds
  if isinstance(layer, keras.layers.ReLU):
    return tfs_layers.get_activation("relu").bounds
  if isinstance(layer, keras.layers.LeakyReLU):
    return Bounds(max(1.0, abs(float(layer.negative_slope))), math.inf)
  if type(layer) is keras.layers.Dense:  # pylint: disable=unidiomatic-typecheck
    # An unconstrained dense layer: its current spectral norm (exact, by SVD) is a valid bound
    # for the current weights, though nothing keeps it there during training.
    norm = float(np.linalg.norm(np.asarray(layer.kernel, np.float64), ord=2))
    return Bounds(norm, 0.0).then(_keras_activation_bounds(layer.activation, layer.name))
  if isinstance(layer, (keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D)):
    return _average_pool_bounds(layer)
  raise UnboundedLayerError(
      f"cannot bound layer '{layer.name}' ({type(layer).__name__}): tfsmooth states bounds for "
      f"its own layers (SNDense, SNConv2D, SmoothActivation, AlphaScale), Dense, activations, "
      f"non-overlapping average pooling and reshapes; use tfsmooth.layers.SNConv2D for a "
      f"convolution")


def _average_pool_bounds(layer) -> Bounds:
  """A mean of k inputs has norm 1/sqrt(k) when every input enters exactly one window."""
  if isinstance(layer, keras.layers.GlobalAveragePooling2D):
    _, height, width, _ = layer.input.shape
    return Bounds(1.0 / math.sqrt(height * width), 0.0)
  if tuple(layer.pool_size) != tuple(layer.strides) or layer.padding != "valid":
    raise UnboundedLayerError(
        f"cannot bound layer '{layer.name}' (AveragePooling2D): only non-overlapping pooling "
        f"(strides == pool_size, padding='valid') is supported")
  return Bounds(1.0 / math.sqrt(layer.pool_size[0] * layer.pool_size[1]), 0.0)


@dataclasses.dataclass(frozen=True)
class LayerBound:
  """One layer of a bounded model: its own ``Bounds`` and those of the model up to its output.

  For a sum of k branches (``keras.layers.Add`` or ``+``), ``layer`` is the bound of the sum as a
  map of its k stacked inputs, ``(sqrt(k), 0)``; ``cumulative`` adds the branches' bounds instead
  (docs/theory.md 1.4.1), which is tighter.
  """

  name: str
  kind: str
  layer: Bounds
  cumulative: Bounds  # bounds of the model up to and including this layer


@dataclasses.dataclass(frozen=True)
class ModelBounds:
  """``lipschitz`` (alpha of D1) and ``beta1`` (D2) of a model, with the per-layer breakdown
  (layers in topological order, nested models flattened)."""

  lipschitz: float
  beta1: float
  layers: tuple[LayerBound, ...]


def _is_sum(operation) -> bool:
  """``keras.layers.Add``, or the ``+`` operator applied to Keras tensors in a functional model."""
  return isinstance(operation, (keras.layers.Add, keras_numpy_ops.Add))


def _refuse_graph(model: keras.Model, reason: str):
  raise UnboundedLayerError(
      f"cannot bound model '{model.name}' ({type(model).__name__}): {reason}; tfsmooth bounds "
      f"models with one input and one output built as a chain of layers in which branches only "
      f"meet in a sum (keras.layers.Add or +) of same-shape tensors")


def _interpret(model: keras.Model, value, on_layer, on_sum, seen: set[int]):
  """Runs the graph of ``model`` on an abstract ``value`` of its input and returns that of its
  output: ``on_layer(layer, value)`` for each layer, ``on_sum(operation, values)`` where
  branches are added. Nested models are entered with the value of their input, so their layers
  are visited as if flattened into ``model``; layers are visited in topological order.

  Anything the rules of docs/theory.md 1.4 do not cover is refused here, before any bound is
  stated: several inputs or outputs, any merge but a same-shape sum, a layer applied twice.
  """
  if isinstance(model, keras.Sequential):
    for layer in model.layers:
      value = _visit(model, layer, [value], on_layer, on_sum, seen)
    return value
  # A functional model exposes its graph as Keras's own summary does (``_nodes_by_depth``);
  # a subclassed model has no graph, only Python code, and cannot be walked.
  nodes_by_depth = getattr(model, "_nodes_by_depth", None)
  if nodes_by_depth is None:
    _refuse_graph(model, "a subclassed model has no layer graph to walk")
  if len(model.inputs) != 1 or len(model.outputs) != 1:
    _refuse_graph(model, f"it has {len(model.inputs)} inputs and {len(model.outputs)} outputs")
  values = {id(model.inputs[0]): value}
  # A node's depth is its distance from the output, so deepest first is a topological order.
  for depth in sorted(nodes_by_depth, reverse=True):
    for node in nodes_by_depth[depth]:
      if node.operation is None or node.is_input:
        continue
      if len(node.outputs) != 1:
        _refuse_graph(model, f"layer '{node.operation.name}' has {len(node.outputs)} outputs")
      if _is_sum(node.operation):
        _check_same_shapes(model, node)
      output = _visit(model, node.operation, [values[id(t)] for t in node.input_tensors],
                      on_layer, on_sum, seen)
      values[id(node.outputs[0])] = output
  return values[id(model.outputs[0])]


def _check_same_shapes(model: keras.Model, node):
  """A sum that broadcasts copies a branch: ``x -> (x, x, x)`` has norm sqrt(3), not 1."""
  output_shape = tuple(node.outputs[0].shape[1:])
  for tensor in node.input_tensors:
    if tuple(tensor.shape[1:]) != output_shape:
      _refuse_graph(model, f"'{node.operation.name}' broadcasts a tensor of shape "
                           f"{tuple(tensor.shape)} to {tuple(node.outputs[0].shape)}")


def _visit(model, operation, values, on_layer, on_sum, seen):
  if id(operation) in seen:
    # Its per-layer row and, for SN layers and pooling, its input shape would be ambiguous.
    _refuse_graph(model, f"layer '{operation.name}' is applied more than once")
  seen.add(id(operation))
  if _is_sum(operation):
    return on_sum(operation, values)
  if len(values) != 1:
    _refuse_graph(model, f"layer '{operation.name}' ({type(operation).__name__}) merges "
                         f"{len(values)} tensors and is not a sum")
  if isinstance(operation, keras.Model):
    return _interpret(operation, values[0], on_layer, on_sum, seen)
  return on_layer(operation, values[0])


def model_layers(model: keras.Model) -> list[keras.layers.Layer]:
  """The layers of ``model`` in topological order, nested models flattened and sums left out,
  or ``UnboundedLayerError`` for a graph ``model_bounds`` cannot walk."""
  result = []

  def on_layer(layer, value):
    result.append(layer)
    return value

  _interpret(model, None, on_layer, lambda operation, values: None, set())
  return result


def sum_bounds(branches) -> Bounds:
  """Bounds of ``x -> g_1(x) + ... + g_k(x)`` from those of the ``g_i``: both the Lipschitz
  constants and the Jacobians' Lipschitz constants add (triangle inequality, docs/theory.md
  1.4.1)."""
  return Bounds(math.fsum(b.lipschitz for b in branches),
                math.fsum(b.smoothness for b in branches))


def model_bounds(model: keras.Model) -> ModelBounds:
  """Composes the bounds of every layer of a built model (Section 5.1 of Chu et al.).

  ``model`` is a ``keras.Sequential`` or a functional ``keras.Model`` with one input and one
  output, nested models allowed. Along a chain the bounds compose by ``Bounds.then``; where
  branches meet in a sum (a residual block) they add (``sum_bounds``). Every tensor's bounds are
  those of the map from the model's input to it.

  For ``alpha * W_k s(W_{k-1} ... s(W_1 x))`` with unit operator norms and 1-Lipschitz
  activations this gives ``lipschitz = alpha`` and ``beta1 = alpha * sum(beta_s)``.

  Args:
    model: a built ``keras.Sequential`` or functional ``keras.Model`` of layers tfsmooth can
      bound (``layer_bounds``), as it computes at inference.

  Returns:
    ``ModelBounds``: ``lipschitz`` (alpha, D1), ``beta1`` (D2) and one ``LayerBound`` per layer
    and sum, in topological order.

  Raises:
    ValueError: ``model`` is not built.
    UnboundedLayerError: a layer whose bounds tfsmooth cannot state, or a graph it cannot walk
      (several inputs or outputs, a merge that is not a same-shape sum, a layer applied twice,
      a subclassed model).
  """
  if not model.built:
    raise ValueError(f"model '{model.name}' is not built; call it on an input first")
  rows = []

  def on_layer(layer, running):
    bounds = layer_bounds(layer)
    running = running.then(bounds)
    rows.append(LayerBound(layer.name, type(layer).__name__, bounds, running))
    return running

  def on_sum(operation, branches):
    running = sum_bounds(branches)
    rows.append(LayerBound(operation.name, "Add", Bounds(math.sqrt(len(branches)), 0.0),
                           running))
    return running

  result = _interpret(model, tfs_layers.IDENTITY_BOUNDS, on_layer, on_sum, set())
  return ModelBounds(result.lipschitz, result.smoothness, tuple(rows))


def rkhs_beta2(penalty_lambda: float, kernel_sigma: float) -> float:
  """Nominal beta2 (D3) of the truncated Gaussian-RKHS penalty: ``lambda / sigma^2``.

  Derived for ``J = lambda/2 * MMD^2`` with kernel ``exp(-|x-y|^2 / (2 sigma^2))``: the gradient
  of the witness is ``sup_r |1/sigma^2 - r^2/sigma^4| exp(-r^2/(2 sigma^2)) = 1/sigma^2``
  Lipschitz (at r = 0). The two-term truncation drops the kernel's normalising constant, so this
  value is nominal, not a guarantee for the truncated penalty.
  """
  if not penalty_lambda > 0:
    raise ValueError(f"penalty_lambda must be > 0, got {penalty_lambda}")
  if not kernel_sigma > 0:
    raise ValueError(f"kernel_sigma must be > 0, got {kernel_sigma}")
  return penalty_lambda / kernel_sigma**2


def particle_generator_constants(n_particles: int) -> tuple[float, float]:
  """(A, B) of the particle generator X_theta(z) = theta[z], z uniform on {1..n} (Section 7):
  ``E_z |theta[z] - theta'[z]| <= |theta - theta'|_F / sqrt(n)`` and the map is linear."""
  if n_particles < 1:
    raise ValueError(f"n_particles must be >= 1, got {n_particles}")
  return 1.0 / math.sqrt(n_particles), 0.0


def smoothness_constant(alpha: float, beta1: float, beta2: float, generator_a: float,
                        generator_b: float) -> float:
  """``L = alpha*B + A^2*(beta1 + beta2)`` (Theorem 1)."""
  return (tfs_layers.product_or_zero(alpha, generator_b) +
          tfs_layers.product_or_zero(generator_a**2, beta1 + beta2))


def gamma_star(smoothness: float) -> float:
  """The theoretical generator learning rate ``1/L`` (0 when L is infinite)."""
  return math.inf if smoothness == 0 else 1.0 / smoothness


@dataclasses.dataclass(frozen=True)
class StabilityConstants:
  """Every constant of Theorem 1 for one discriminator + penalty + generator.

  Attributes:
    alpha: the discriminator's Lipschitz constant (D1).
    beta1: the Lipschitz constant of its gradient in x (D2); ``inf`` with a non-smooth
      activation.
    beta2: the Lipschitz constant of its gradient in mu (D3), ``lambda / sigma^2`` from the RKHS
      penalty (``rkhs_beta2``).
    generator_a: A, the generator's Lipschitz constant in expectation (G1).
    generator_b: B, the Lipschitz constant of its Jacobian (G2).
    smoothness: ``L = alpha*B + A^2*(beta1 + beta2)``.
    gamma_star: ``1/L``, the largest generator learning rate of Theorem 1 (0 when L is
      infinite, ``inf`` when L is 0).
    discriminator: the discriminator's ``ModelBounds``, with the per-layer breakdown.
  """

  alpha: float
  beta1: float
  beta2: float
  generator_a: float
  generator_b: float
  smoothness: float  # L
  gamma_star: float
  discriminator: ModelBounds


def stability_constants(discriminator: keras.Model, penalty_lambda: float, kernel_sigma: float,
                        n_particles: int | None = None, generator_a: float | None = None,
                        generator_b: float | None = None) -> StabilityConstants:
  """The constants for a particle generator (give ``n_particles``) or a parametric generator
  whose A and B the user states (give ``generator_a`` and ``generator_b``).

  Args:
    discriminator: a built discriminator of bounded layers (``model_bounds``).
    penalty_lambda: lambda of the RKHS penalty (> 0).
    kernel_sigma: sigma of the RKHS penalty's Gaussian kernel (> 0).
    n_particles: n of a particle generator: A = 1/sqrt(n), B = 0 (Section 7).
    generator_a: A (G1) of a parametric generator (>= 0).
    generator_b: B (G2) of a parametric generator (>= 0).

  Returns:
    ``StabilityConstants``.

  Raises:
    ValueError: neither ``n_particles`` nor both of ``generator_a`` and ``generator_b`` (or all
      three) given, a negative A or B, ``n_particles`` < 1, ``penalty_lambda`` or
      ``kernel_sigma`` not > 0, or ``discriminator`` not built.
    UnboundedLayerError: a layer of ``discriminator`` that tfsmooth cannot bound
      (``model_bounds``).
  """
  if (n_particles is None) == (generator_a is None or generator_b is None):
    raise ValueError("give either n_particles (particle generator) or both generator_a and "
                     "generator_b (parametric generator)")
  if n_particles is not None:
    generator_a, generator_b = particle_generator_constants(n_particles)
  elif not (generator_a >= 0 and generator_b >= 0):
    raise ValueError(f"generator A and B must be >= 0, got A={generator_a}, B={generator_b}")
  bounds = model_bounds(discriminator)
  beta2 = rkhs_beta2(penalty_lambda, kernel_sigma)
  smoothness = smoothness_constant(bounds.lipschitz, bounds.beta1, beta2, generator_a,
                                   generator_b)
  return StabilityConstants(alpha=bounds.lipschitz, beta1=bounds.beta1, beta2=beta2,
                            generator_a=generator_a, generator_b=generator_b,
                            smoothness=smoothness, gamma_star=gamma_star(smoothness),
                            discriminator=bounds)


def generator_learning_rate(discriminator: keras.Model, ratio: float = 1.0, penalty=None, *,
                            penalty_lambda: float | None = None,
                            kernel_sigma: float | None = None, generator=None,
                            n_particles: int | None = None, generator_a: float | None = None,
                            generator_b: float | None = None) -> tuple[float, StabilityConstants]:
  """The generator's learning rate ``ratio * gamma*`` for a built discriminator (Theorem 1).

  Args:
    discriminator: a built discriminator of bounded layers (``model_bounds``).
    ratio: the learning rate in units of gamma* (``gamma / gamma*``; Chu et al. Figure 1).
    penalty: the penalty (or MMD loss) that gives beta2: any object with ``penalty_lambda`` and
      ``kernel_sigma`` (``tfsmooth.RKHSPenalty``, ``tfsmooth.losses.MMDLoss``); or give
      ``penalty_lambda`` and ``kernel_sigma`` themselves.
    penalty_lambda: lambda of the RKHS penalty, if no ``penalty`` is given.
    kernel_sigma: sigma of the RKHS penalty, if no ``penalty`` is given.
    generator: a particle generator (an object with ``num_particles``: A = 1/sqrt(n), B = 0);
      or give ``n_particles``, or ``generator_a`` and ``generator_b``, the bounds (G1), (G2)
      of your generator.
    n_particles: the size of a particle generator, if no ``generator`` is given.
    generator_a: A of a parametric generator.
    generator_b: B of a parametric generator.

  Returns:
    ``(ratio * gamma*, StabilityConstants)``.

  Raises:
    ValueError: gamma* is not finite and positive (a non-smooth activation: beta1 = inf), or the
      arguments do not say what beta2 or the generator's bounds are.
  """
  if penalty is not None:
    if not (hasattr(penalty, "penalty_lambda") and hasattr(penalty, "kernel_sigma")):
      raise ValueError(f"gamma*: beta2 comes from the RKHS penalty (Chu et al. Section 6.1); "
                       f"{type(penalty).__name__} has no penalty_lambda and kernel_sigma")
    penalty_lambda, kernel_sigma = penalty.penalty_lambda, penalty.kernel_sigma
  if penalty_lambda is None or kernel_sigma is None:
    raise ValueError("gamma*: give penalty= (an RKHS penalty) or penalty_lambda and "
                     "kernel_sigma")
  if generator is not None:
    n_particles = getattr(generator, "num_particles", None)
  if generator is not None and n_particles is None:
    raise ValueError(f"gamma*: the bounds A, B of {type(generator).__name__} are not known; "
                     "give generator_a and generator_b instead")
  constants = stability_constants(discriminator, penalty_lambda, kernel_sigma,
                                  n_particles=n_particles, generator_a=generator_a,
                                  generator_b=generator_b)
  if not constants.gamma_star > 0 or math.isinf(constants.gamma_star):
    raise ValueError(f"gamma* = {constants.gamma_star} (beta1 = {constants.beta1}): a finite "
                     "learning rate needs smooth activations")
  return ratio * constants.gamma_star, constants
