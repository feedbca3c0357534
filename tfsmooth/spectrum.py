"""The spectrum of the GAN game's Jacobian, on any ``SmoothGAN`` (Nagarajan and Kolter 2017,
Section 3).

The game's update field is each player's descent direction on what it minimises,

    F(theta) = (-grad_{theta_D} L_D(theta), -grad_{theta_G} L_G(theta)),

with ``L_D = -V + penalty`` and ``L_G`` the generator loss plus ``eta |grad_{theta_D} V|^2``:
exactly the gradients a training step takes (``SmoothGAN.discriminator_gradients`` and
``generator_gradients``), here both at the same point and on one fixed batch. Gradient flow
``d theta / dt = F(theta)`` is locally exponentially stable at an equilibrium when every
eigenvalue of the Jacobian ``J = dF / d theta`` has a negative real part (Nagarajan and Kolter,
Section 3, by Lyapunov's indirect method; their Theorem 3.2: ``eta > 0`` moves the real parts
left). Away from an equilibrium the spectrum still describes the linearised dynamics around the
current weights.

``J v`` is the forward-mode derivative of the two backward passes
(``tf.autodiff.ForwardAccumulator`` around the players' gradient tapes), about the cost of a few
gradient evaluations; ``J`` itself is never formed except by ``GameJacobian.dense`` (one product
per column, for small models). ``eigenvalues`` uses ARPACK's Arnoldi iteration (SciPy's ``eigs``
on a ``LinearOperator``) for the ``k`` eigenvalues of largest real part or of largest modulus,
and the dense eigensolver when the model is small; each eigenvalue comes with its residual
``|J v - lambda v| / |v|``.

State that a forward pass changes (batch-norm moving statistics) is restored around every
product, so ``J`` is one fixed linear map. A spectrally normalised layer's ``sigma`` is computed
here from its stored vector, converged, by power-iteration steps of which the last
``SIGMA_ITERATIONS`` pass the derivative (``tfsmooth.layers.differentiable_sigma``): training
holds the vectors constant, which is exact for the gradient at convergence but not for its
derivative, ``J``.
"""

import dataclasses

import numpy as np
import scipy.sparse.linalg
import tensorflow as tf

from tfsmooth import layers as tfs_layers

SIGMA_ITERATIONS = 10  # differentiable power steps per spectral norm (tfsmooth.layers)
DENSE_LIMIT = 2000  # parameters: up to this size, eigenvalues() forms J and solves densely
WHICH = {"real": "LR", "modulus": "LM"}  # eigenvalues(which=...) -> ARPACK's name
PLAYERS = (None, "discriminator", "generator")  # GameJacobian(player=...): J or a diagonal block


class GameJacobian:
  """The Jacobian of ``model``'s update field at its current weights, on one batch.

  Args:
    model: a built ``SmoothGAN``.
    real: one batch of real samples ``(batch, *sample_shape)``.
    latent: the generator's latents for the batch (``model.sample_latent(batch, seed)``).
    interpolation_seed: the stateless seed of the penalty's interpolates, shape (2,) int64.
    player: None for the whole game; ``"discriminator"`` or ``"generator"`` for that player's
      diagonal block of ``J`` (its own field against its own parameters, the other's held).

  Attributes:
    variables: the trainable variables, discriminator's then generator's (the discriminator's
      only if the loss trains one: with ``mmd`` the game has the generator alone).
    size: the number of parameters, the order of ``J``.
  """

  def __init__(self, model, real, latent, interpolation_seed=(0, 0), player: str | None = None):
    if player not in PLAYERS:
      raise ValueError(f"player={player!r}: expected one of {PLAYERS}")
    self.model = model
    self.real = tf.convert_to_tensor(real)
    self.latent = tf.convert_to_tensor(latent)
    self.seed = tf.constant(interpolation_seed, tf.int64)
    self.trains_discriminator = (model.game_loss.trains_discriminator
                                 and player != "generator")
    self.trains_generator = player != "discriminator"
    discriminator = (list(model.discriminator.trainable_variables)
                     if self.trains_discriminator else [])
    generator = list(model.generator.trainable_variables) if self.trains_generator else []
    self.variables = discriminator + generator
    self.shapes = [tuple(v.shape) for v in self.variables]
    self.sizes = [int(np.prod(s)) for s in self.shapes]
    self.size = sum(self.sizes)
    self.dtype = tf.as_dtype(self.variables[0].dtype)
    # The tf.Variables under Keras's variables: what ForwardAccumulator watches.
    self._watched = [getattr(v, "value", v) for v in self.variables]
    self._state = list(model.discriminator.non_trainable_variables +
                       model.generator.non_trainable_variables)
    self._saved = [tf.identity(v) for v in self._state]
    self.products = 0  # J v products so far (the cost of an eigenvalue computation)

  def _restore_state(self):
    for variable, value in zip(self._state, self._saved):
      variable.assign(value)

  def _field(self):
    with tfs_layers.differentiable_sigma(SIGMA_ITERATIONS):
      return self._field_in_context()

  def _field_in_context(self):
    gradients, g_gradients = [], []
    if self.trains_discriminator:
      gradients, _ = self.model.discriminator_gradients(self.real, self.latent, self.seed)
    if self.trains_generator:
      g_gradients, _ = self.model.generator_gradients(self.real, self.latent)
    return [-g for g in list(gradients) + list(g_gradients)]

  def _flatten(self, tensors):
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], 0)

  def _unflatten(self, flat):
    return [tf.reshape(part, shape)
            for part, shape in zip(tf.split(flat, self.sizes), self.shapes)]

  # Both functions restore the state before and after (assignments run in program order).

  @tf.function
  def _field_flat(self):
    self._restore_state()
    field = self._flatten(self._field())
    self._restore_state()
    return field

  @tf.function
  def _jvp(self, tangent):
    self._restore_state()
    with tf.autodiff.ForwardAccumulator(self._watched, self._unflatten(tangent)) as accumulator:
      field = self._field()
    products = self._flatten(
        accumulator.jvp(field, unconnected_gradients=tf.UnconnectedGradients.ZERO))
    self._restore_state()
    return products

  def field(self) -> np.ndarray:
    """``F(theta)`` at the current weights, flattened (discriminator's part first)."""
    return self._field_flat().numpy().astype(np.float64)

  def matvec(self, vector) -> np.ndarray:
    """``J v`` for a real vector ``v`` of length ``size`` (float64 out)."""
    tangent = tf.constant(np.asarray(vector, np.float64).reshape(-1), self.dtype)
    self.products += 1
    return self._jvp(tangent).numpy().astype(np.float64)

  def operator(self) -> scipy.sparse.linalg.LinearOperator:
    """``J`` as a SciPy ``LinearOperator`` (real; complex vectors by their two parts)."""
    def matvec(vector):
      vector = np.asarray(vector).reshape(-1)
      if np.iscomplexobj(vector):
        return self.matvec(vector.real) + 1j * self.matvec(vector.imag)
      return self.matvec(vector)
    return scipy.sparse.linalg.LinearOperator((self.size, self.size), matvec=matvec,
                                              dtype=np.float64)

  def dense(self) -> np.ndarray:
    """``J`` as an ``(size, size)`` array, one product per column."""
    columns = np.eye(self.size)
    return np.stack([self.matvec(column) for column in columns], axis=1)

  def residual(self, eigenvalue: complex, vector) -> float:
    """``|J v - lambda v| / |v|``."""
    vector = np.asarray(vector, np.complex128)
    product = self.operator().matvec(vector)
    return float(np.linalg.norm(product - eigenvalue * vector) / np.linalg.norm(vector))


@dataclasses.dataclass
class Spectrum:
  """Eigenvalues of ``J`` (sorted by the ``which`` order, largest first) with their residuals.

  Attributes:
    eigenvalues: complex array.
    residuals: ``|J v - lambda v| / |v|`` of each.
    which: ``"real"`` (largest real part) or ``"modulus"``.
    method: ``"dense"`` or ``"arnoldi"``.
    size: the order of ``J``.
  """

  eigenvalues: np.ndarray
  residuals: np.ndarray
  which: str
  method: str
  size: int

  @property
  def max_real(self) -> float:
    """The largest real part: < 0 means locally stable in continuous time."""
    return float(np.max(self.eigenvalues.real))

  def to_json(self) -> dict:
    return {"eigenvalues": [[float(v.real), float(v.imag)] for v in self.eigenvalues],
            "residuals": [float(r) for r in self.residuals], "which": self.which,
            "method": self.method, "parameters": self.size}


def _order(eigenvalues, which: str):
  """Largest first; ties (a conjugate pair, to rounding) by the imaginary part, positive first,
  so that a ``k`` which cuts a pair keeps the same member whichever solver found it."""
  key = eigenvalues.real if which == "real" else np.abs(eigenvalues)
  scale = float(np.max(np.abs(key))) or 1.0
  rounded = np.round(key / scale, 9)
  return np.lexsort((-eigenvalues.imag, -rounded))


def eigenvalues(jacobian: GameJacobian, k: int = 6, which: str = "real",
                method: str = "auto", tol: float = 1e-8, seed: int = 0,
                dense_matrix: np.ndarray | None = None) -> Spectrum:
  """The ``k`` eigenvalues of ``J`` of largest real part (``which="real"``) or largest modulus
  (``"modulus"``), each with its residual.

  ``method="dense"`` forms ``J`` and solves it (NumPy); ``"arnoldi"`` runs ARPACK on ``J v``
  products, which needs ``k < size - 1``; ``"auto"``: dense up to ``DENSE_LIMIT`` parameters.
  ``seed`` fixes ARPACK's start vector, so the result is reproducible. ``dense_matrix``: ``J``
  already formed (``jacobian.dense()``), for the dense method.
  """
  if which not in WHICH:
    raise ValueError(f"which={which!r}: expected one of {sorted(WHICH)}")
  if k < 1:
    raise ValueError(f"k={k}: expected k >= 1")
  method = resolve_method(jacobian.size, method)
  if method == "dense":
    values, vectors = np.linalg.eig(jacobian.dense() if dense_matrix is None else dense_matrix)
  elif method == "arnoldi":
    if k >= jacobian.size - 1:
      raise ValueError(f"k={k}: Arnoldi needs k < {jacobian.size - 1} (the number of "
                       "parameters - 1); use method='dense'")
    start = np.random.default_rng(seed).standard_normal(jacobian.size)
    # One more than asked where possible: ARPACK may return one member of a conjugate pair at
    # the cut; with both, the order below keeps the one the dense solve keeps.
    values, vectors = scipy.sparse.linalg.eigs(
        jacobian.operator(), k=min(k + 1, jacobian.size - 2), which=WHICH[which], tol=tol,
        v0=start)
  else:
    raise ValueError(f"method={method!r}: expected 'auto', 'dense' or 'arnoldi'")
  order = _order(values, which)[:k]
  values, vectors = values[order], vectors[:, order]
  residuals = np.array([jacobian.residual(v, vectors[:, i]) for i, v in enumerate(values)])
  return Spectrum(values, residuals, which, method, jacobian.size)


def game_latent(model, batch_size: int, seed: int = 0):
  """The generator's latents for a Jacobian on a batch of ``batch_size`` real samples: a particle
  generator's every particle (the full generator gradient of Chu et al.'s analysis), otherwise
  ``batch_size`` latents drawn with ``seed``."""
  if model.own_generator_batch:
    return model.generator.all_latents()
  return model.sample_latent(batch_size, tf.constant([seed, -2], tf.int64))


def game_spectrum(model, real, k: int = 6, seed: int = 0, method: str = "auto",
                  latent=None) -> dict[str, Spectrum]:
  """The ``k`` eigenvalues of largest real part and the ``k`` of largest modulus of the Jacobian
  of ``model``'s update field at its current weights, on the batch ``real``.

  Args:
    model: a built ``SmoothGAN``.
    real: real samples ``(batch, *sample_shape)``, held fixed.
    k: eigenvalues of each kind (capped at the number of parameters).
    seed: seed of the latents (``game_latent``), the penalty's interpolates and Arnoldi's start.
    method: ``"auto"``, ``"dense"`` or ``"arnoldi"`` (``eigenvalues``).
    latent: the generator's latents, if not ``game_latent(model, len(real), seed)``.

  Returns:
    ``{"real": Spectrum, "modulus": Spectrum}``.
  """
  if latent is None:
    latent = game_latent(model, int(real.shape[0]), seed)
  return spectra(GameJacobian(model, real, latent, interpolation_seed=(seed, -3)), k, method,
                 seed)


def resolve_method(size: int, method: str) -> str:
  """``method``, with ``"auto"`` resolved: dense up to ``DENSE_LIMIT`` parameters."""
  if method == "auto":
    return "dense" if size <= DENSE_LIMIT else "arnoldi"
  return method


def spectra(jacobian: GameJacobian, k: int = 6, method: str = "auto", seed: int = 0,
            orders=tuple(WHICH)) -> dict[str, Spectrum]:
  """``{order: eigenvalues(...)}`` for each of ``orders`` (``"real"``, ``"modulus"``), ``k``
  capped at what the method can give, ``J`` formed once when the method is dense."""
  method = resolve_method(jacobian.size, method)
  k = min(k, jacobian.size if method == "dense" else jacobian.size - 2)
  matrix = jacobian.dense() if method == "dense" else None
  return {which: eigenvalues(jacobian, k, which, method, seed=seed, dense_matrix=matrix)
          for which in orders}
