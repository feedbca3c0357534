"""Base losses and discriminator penalties as small objects that carry their own hyperparameters,
registries that map names to them (for the flags), and the Nagarajan-Kolter generator regulariser.

Conventions. ``d_real = D(x)`` and ``d_fake = D(G(z))`` are per-example discriminator outputs.
``value`` is the game's value ``V(G, D)``: the discriminator ascends it, the generator descends it
(Nagarajan and Kolter, Section 2). The discriminator minimises ``-V + penalty``; the generator
minimises ``generator_loss``, which is ``V`` (up to terms without G) for every loss except the
non-saturating heuristic. Means are taken by the caller's ``mean`` so that the same functions
scale correctly under ``tf.distribute`` (sum over the replica's examples / global batch).

A loss is a ``Loss`` (a game: ``value`` and ``generator_loss``; or a closed form computed from
samples, ``closed_form``); ``MMDLoss`` is one with hyperparameters. A penalty is a ``Penalty``
subclass, a frozen dataclass whose fields are its hyperparameters, called as
``penalty(discriminator, real, fake, seed, mean) -> (penalty, terms)``. ``get_loss`` /
``get_penalty`` return the registered object with the hyperparameters given by keyword (others
ignored, so a run passes all of its settings), and ``register_loss`` / ``register_penalty`` add
one: docs/architecture.md shows a new penalty with its own weight. ``tfsmooth.gan`` reads only
these objects, never a name. TensorFlow is loaded on first use, so the flag validators can read
the registries before it loads.
"""

from collections.abc import Callable
import dataclasses
from typing import ClassVar

from tfsmooth import compat
from tfsmooth import distribute

tf = compat.LazyModule("tensorflow")

NO_PENALTY = "none"  # the name that means no penalty (``get_penalty`` returns None)


def _local_mean(values):
  return tf.reduce_mean(values)


@dataclasses.dataclass(frozen=True)
class Loss:
  """A base loss (Chu et al. Tables 1-2).

  Attributes:
    name: the ``--loss`` value.
    description: one line for ``--help``.
    value: ``(d_real, d_fake, mean) -> V(G, D)``, which the discriminator ascends; None for a
      closed-form loss that trains no discriminator.
    generator_loss: ``(d_fake, mean) -> `` what the generator minimises.
    closed_form: ``(real, fake) -> `` the generator's loss computed from samples directly (no
      discriminator: the generator step only).
  """

  name: str
  description: str
  value: Callable | None = None
  generator_loss: Callable | None = None
  closed_form: Callable | None = None

  def __post_init__(self):
    if (self.value is None) != (self.generator_loss is None) or (
        (self.value is None) == (self.closed_form is None)):
      raise ValueError(f"loss '{self.name}': give value and generator_loss (a discriminator "
                       "game) or closed_form (no discriminator), not both")

  @property
  def trains_discriminator(self) -> bool:
    return self.value is not None


@dataclasses.dataclass(frozen=True)
class Penalty:
  """Base class of the discriminator penalties, added to the discriminator's loss ``-V``.

  A subclass is a frozen dataclass whose fields are its hyperparameters (named as the flags
  that set them), with ``name`` and ``description`` class attributes and ``__call__``.
  """

  name: ClassVar[str]
  description: ClassVar[str]
  # The names of the extra metrics __call__ returns (SmoothGAN makes a Keras metric of each).
  metrics: ClassVar[tuple[str, ...]] = ()

  def __call__(self, discriminator, real, fake, seed, mean=_local_mean):
    """``(penalty, terms)``: the penalty (a scalar share of the global mean) and extra metrics,
    a dict whose keys are the class's ``metrics``.

    Args:
      discriminator: the discriminator network.
      real: this replica's real batch.
      fake: this replica's generated batch (not differentiated through).
      seed: a stateless-RNG seed (shape (2,) int64) for the points the penalty evaluates.
      mean: the mean over the global batch (``tfsmooth.distribute.global_mean``).
    """
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class MMDLoss:
  """``J = lambda/2 * MMD^2`` with a Gaussian kernel of width ``kernel_sigma``: the closed-form
  loss of GMMN (Li et al. 2015); no discriminator is trained (Chu et al. Table 1; then
  ``beta2 = lambda / sigma^2``, docs/theory.md).

  Attributes:
    kernel_sigma: sigma, the width of the Gaussian kernel ``exp(-|x-y|^2 / (2 sigma^2))``.
    penalty_lambda: lambda, the loss's scale.
  """

  kernel_sigma: float = 1.0
  penalty_lambda: float = 1.0
  name: ClassVar[str] = "mmd"
  description: ClassVar[str] = ("closed-form Gaussian-kernel lambda/2 MMD^2 (no discriminator "
                                "training)")
  value: ClassVar[None] = None
  generator_loss: ClassVar[None] = None
  trains_discriminator: ClassVar[bool] = False

  def closed_form(self, real, fake):
    # Over all pairs of the global batch: gather every replica's samples, then take a share.
    return distribute.share(mmd_loss(distribute.all_gather(real), distribute.all_gather(fake),
                                     self.kernel_sigma, self.penalty_lambda))


LOSSES: dict = {}
PENALTIES: dict[str, Penalty] = {}


def register_loss(loss):
  """Adds ``loss`` (a ``Loss``, or an object with the same attributes) to the registry under
  its ``name``; returns it.

  Args:
    loss: the loss; it replaces any loss registered under the same name.

  Returns:
    ``loss``.
  """
  LOSSES[loss.name] = loss
  return loss


def register_penalty(penalty: Penalty) -> Penalty:
  """Adds ``penalty`` (an instance: its fields are the defaults) under its ``name``.

  Args:
    penalty: an instance of a ``Penalty`` subclass; it replaces any penalty registered under the
      same name.

  Returns:
    ``penalty``.
  """
  PENALTIES[penalty.name] = penalty
  return penalty


def _with(prototype, hyperparameters):
  """``prototype`` with those of ``hyperparameters`` that are its fields."""
  names = {field.name for field in hyperparameter_fields(prototype)}
  if not names:
    return prototype
  return dataclasses.replace(prototype, **{k: v for k, v in hyperparameters.items() if k in names})


def get_loss(name: str, **hyperparameters):
  """The loss registered as ``name``, with those ``hyperparameters`` that it has.

  Args:
    name: a registered loss (``LOSSES``), e.g. ``"indicator"`` or ``"mmd"``.
    **hyperparameters: values for the loss's fields (``MMDLoss``: ``kernel_sigma``,
      ``penalty_lambda``); others are ignored, so a run can pass all of its settings.

  Returns:
    The registered loss; a dataclass loss with hyperparameters is a copy with the given ones
    replaced (a ``Loss`` has none and is returned as registered).

  Raises:
    ValueError: ``name`` is not registered.
  """
  if name not in LOSSES:
    raise ValueError(f"unknown loss '{name}'; known: {', '.join(LOSSES)}")
  return _with(LOSSES[name], hyperparameters)


def get_penalty(name: str, **hyperparameters) -> Penalty | None:
  """The penalty registered as ``name`` with those ``hyperparameters`` that it has; None for
  ``"none"``.

  Args:
    name: a registered penalty (``PENALTIES``, e.g. ``"rkhs"`` or ``"gp"``) or ``"none"``.
    **hyperparameters: values for the penalty's fields (e.g. ``penalty_lambda``,
      ``gp_weight``); others are ignored, so a run can pass all of its settings.

  Returns:
    A copy of the registered penalty with the given fields replaced, or None for ``"none"``.

  Raises:
    ValueError: ``name`` is not registered.
  """
  if name == NO_PENALTY:
    return None
  if name not in PENALTIES:
    raise ValueError(f"unknown penalty '{name}'; known: {', '.join(penalty_names())}")
  return _with(PENALTIES[name], hyperparameters)


def penalty_names() -> tuple[str, ...]:
  return (*PENALTIES, NO_PENALTY)


def describe_penalties() -> dict[str, str]:
  """``{name: description}`` of every penalty name, ``none`` included (for ``--help``)."""
  return {**{p.name: p.description for p in PENALTIES.values()}, NO_PENALTY: "no penalty"}


def hyperparameter_fields(obj) -> tuple[dataclasses.Field, ...]:
  """The fields of a loss or penalty object that are its hyperparameters (none for a ``Loss``,
  whose fields are its definition, or for no penalty)."""
  if obj is None or not dataclasses.is_dataclass(obj) or isinstance(obj, Loss):
    return ()
  return dataclasses.fields(obj)


def hyperparameters(obj) -> dict:
  """``{field: value}`` of a loss or penalty object's hyperparameters ({} for none)."""
  return {field.name: getattr(obj, field.name) for field in hyperparameter_fields(obj)}


# ---------------------------------------------------------------------------------------------
# Base losses. V as in Nagarajan and Kolter with f(u) = -log(1 + e^-u) (the GAN) or f(u) = u.


def minimax_value(d_real, d_fake, mean=_local_mean):
  """``E log sigmoid(D(x)) + E log(1 - sigmoid(D(G(z))))`` (Goodfellow et al.)."""
  return -mean(tf.nn.softplus(-d_real)) - mean(tf.nn.softplus(d_fake))


def wgan_value(d_real, d_fake, mean=_local_mean):
  """``E D(x) - E D(G(z))``."""
  return mean(d_real) - mean(d_fake)


def indicator_value(d_real, d_fake, mean=_local_mean):
  """Chu et al. Section 7, base loss ``chi{mu = mu0}``: ``E_gen phi - E_data phi``. The
  discriminator ``phi`` points up the generator's loss, so the generator descends ``E_gen phi``
  (the penalty, subtracted in the discriminator's loss, keeps it bounded)."""
  return mean(d_fake) - mean(d_real)


def hinge_value(d_real, d_fake, mean=_local_mean):
  """``-E max(0, 1 - D(x)) - E max(0, 1 + D(G(z)))``: the discriminator minimises the hinge
  loss (Lim and Ye 2017; Miyato et al. 2018's SNGAN), the generator ``-E D(G(z))``."""
  return -mean(tf.nn.relu(1.0 - d_real)) - mean(tf.nn.relu(1.0 + d_fake))


def least_squares_value(d_real, d_fake, mean=_local_mean):
  """``-1/2 E (D(x) - 1)^2 - 1/2 E D(G(z))^2``: the discriminator of LSGAN (Mao et al. 2017,
  Eq. 2 with targets a = 0, b = 1); the generator minimises ``1/2 E (D(G(z)) - 1)^2`` (c = 1)."""
  return -0.5 * mean(tf.square(d_real - 1.0)) - 0.5 * mean(tf.square(d_fake))


def gaussian_kernel(x, y, kernel_sigma):
  """``k(x, y) = exp(-|x - y|^2 / (2 sigma^2))`` for all pairs of rows (flattened)."""
  x = tf.reshape(x, (tf.shape(x)[0], -1))
  y = tf.reshape(y, (tf.shape(y)[0], -1))
  squared = (tf.reduce_sum(x * x, 1)[:, None] + tf.reduce_sum(y * y, 1)[None, :] -
             2.0 * tf.matmul(x, y, transpose_b=True))
  return tf.exp(-tf.maximum(squared, 0.0) / (2.0 * kernel_sigma**2))


def mmd_squared(real, fake, kernel_sigma):
  """Biased (V-statistic) estimate of MMD^2 with the Gaussian kernel: the closed-form loss of
  GMMN (Li et al. 2015), for which no discriminator is trained (Chu et al. Table 1)."""
  return (tf.reduce_mean(gaussian_kernel(real, real, kernel_sigma)) +
          tf.reduce_mean(gaussian_kernel(fake, fake, kernel_sigma)) -
          2.0 * tf.reduce_mean(gaussian_kernel(real, fake, kernel_sigma)))


def mmd_loss(real, fake, kernel_sigma, penalty_lambda):
  """``J = lambda/2 * MMD^2`` (docs/theory.md: then ``beta2 = lambda / sigma^2``)."""
  return 0.5 * penalty_lambda * mmd_squared(real, fake, kernel_sigma)


def interpolates(real, fake, seed):
  """``x_hat = t x_real + (1 - t) x_fake``, ``t ~ U(0, 1)`` per example (stateless in seed; drawn
  for the global batch, of which this replica takes its slice)."""
  shape = tf.concat([tf.shape(real)[:1] * distribute.replicas(),
                     tf.ones([tf.rank(real) - 1], tf.int32)], 0)
  t = distribute.replica_slice(tf.random.stateless_uniform(shape, seed=seed, dtype=real.dtype))
  return t * real + (1.0 - t) * fake


def _squared_norms(gradients):
  return tf.reduce_sum(tf.square(tf.reshape(gradients, (tf.shape(gradients)[0], -1))), axis=1)


def rkhs_penalty(phi_hat, grad_hat, kernel_sigma, penalty_lambda, output_weight=1.0,
                 gradient_weight=1.0, mean=_local_mean):
  """Truncated squared Gaussian-RKHS norm of the discriminator, as a penalty (Chu et al.
  Section 6.1, Moreau-Yosida regularisation with weight lambda; docs/theory.md):

      R = E[w_out phi(x_hat)^2 + w_grad (sigma^2 / 2) |grad phi(x_hat)|^2] / (2 lambda)

  Returns ``(penalty, {"output": ..., "gradient": ...})`` with each term already divided by
  ``2 lambda`` and weighted, so the two terms sum to the penalty.
  """
  scale = 1.0 / (2.0 * penalty_lambda)
  output_term = scale * output_weight * mean(tf.square(tf.reshape(phi_hat, [-1])))
  gradient_term = scale * gradient_weight * 0.5 * kernel_sigma**2 * mean(_squared_norms(grad_hat))
  return output_term + gradient_term, {"output": output_term, "gradient": gradient_term}


def gradient_penalty(grad_hat, weight, mean=_local_mean):
  """WGAN-GP (Gulrajani et al. 2017): ``weight * E (|grad D(x_hat)| - 1)^2``."""
  norms = tf.sqrt(_squared_norms(grad_hat) + 1e-12)
  return weight * mean(tf.square(norms - 1.0))


def squared_global_norm(gradients):
  """``sum_i |g_i|^2`` over a list of gradients (``None`` counts as zero)."""
  squares = [tf.reduce_sum(tf.square(g)) for g in gradients if g is not None]
  return tf.add_n(squares) if squares else tf.constant(0.0)


def input_gradient_penalty(discriminator, samples, weight, mean=_local_mean):
  """``weight/2 E |grad_x D(x)|^2`` at ``samples`` (inference mode): the zero-centred gradient
  penalty of Mescheder, Geiger and Nowozin (2018), Eqs. 9-10, R1 on real and R2 on generated
  samples."""
  with tf.GradientTape() as tape:
    tape.watch(samples)
    outputs = discriminator(samples, training=False)
  return 0.5 * weight * mean(_squared_norms(tape.gradient(outputs, samples)))


def discriminator_at_interpolates(discriminator, real, fake, seed):
  """``(phi(x_hat), grad phi(x_hat))`` at random interpolates (inference mode: the penalty does
  not refine spectral-norm vectors)."""
  x_hat = interpolates(real, fake, seed)
  with tf.GradientTape() as tape:
    tape.watch(x_hat)
    phi_hat = discriminator(x_hat, training=False)
  return phi_hat, tape.gradient(phi_hat, x_hat)


@dataclasses.dataclass(frozen=True)
class RKHSPenalty(Penalty):
  """The truncated Gaussian-RKHS norm of Chu et al. Section 6.1 (``rkhs_penalty``) on random
  interpolates of real and generated samples:
  ``E[w_out phi(x_hat)^2 + w_grad (sigma^2 / 2) |grad phi(x_hat)|^2] / (2 lambda)``.

  Attributes:
    penalty_lambda: lambda, the Moreau-Yosida weight; the penalty is divided by ``2 lambda``
      and gives ``beta2 = lambda / sigma^2`` (D3).
    kernel_sigma: sigma, the Gaussian kernel's width.
    output_penalty_weight: w_out, the weight of the ``phi(x_hat)^2`` term.
    gradient_penalty_weight: w_grad, the weight of the gradient term.
  """

  penalty_lambda: float = 1.0
  kernel_sigma: float = 1.0
  output_penalty_weight: float = 1.0
  gradient_penalty_weight: float = 1.0
  name: ClassVar[str] = "rkhs"
  description: ClassVar[str] = ("E[phi^2 + sigma^2/2 |grad phi|^2] / (2 lambda) on random "
                                "interpolates (Chu et al. Section 6.1)")
  metrics: ClassVar[tuple[str, ...]] = ("penalty_output", "penalty_gradient")

  def __call__(self, discriminator, real, fake, seed, mean=_local_mean):
    phi_hat, grad_hat = discriminator_at_interpolates(discriminator, real, fake, seed)
    penalty, parts = rkhs_penalty(phi_hat, grad_hat, self.kernel_sigma, self.penalty_lambda,
                                  self.output_penalty_weight, self.gradient_penalty_weight, mean)
    return penalty, {"penalty_output": parts["output"], "penalty_gradient": parts["gradient"]}


@dataclasses.dataclass(frozen=True)
class GradientPenalty(Penalty):
  """WGAN-GP (Gulrajani et al. 2017): ``gp_weight * E (|grad D(x_hat)| - 1)^2`` on random
  interpolates.

  Attributes:
    gp_weight: the penalty's weight (Gulrajani et al. use 10).
  """

  gp_weight: float = 10.0
  name: ClassVar[str] = "gp"
  description: ClassVar[str] = "WGAN-GP, gp_weight * E(|grad D| - 1)^2"

  def __call__(self, discriminator, real, fake, seed, mean=_local_mean):
    _, grad_hat = discriminator_at_interpolates(discriminator, real, fake, seed)
    return gradient_penalty(grad_hat, self.gp_weight, mean), {}


@dataclasses.dataclass(frozen=True)
class R1Penalty(Penalty):
  """R1 (Mescheder, Geiger, Nowozin 2018, Eq. 9): ``r_gamma/2 E_data |grad D(x)|^2``, zero-centred
  on the real samples; with it, their Dirac-GAN converges (their Theorem 4.1).

  Attributes:
    r_gamma: gamma, the penalty's weight (their experiments: 10).
  """

  r_gamma: float = dataclasses.field(default=10.0, metadata={"help": (
      "train: gamma of the zero-centred gradient penalties r1, r2 and r1r2: gamma/2 "
      "E|grad D|^2 (Mescheder et al. 2018).")})
  name: ClassVar[str] = "r1"
  description: ClassVar[str] = "R1, r_gamma/2 E|grad D(x_real)|^2 (Mescheder et al. 2018)"

  def __call__(self, discriminator, real, fake, seed, mean=_local_mean):
    return input_gradient_penalty(discriminator, real, self.r_gamma, mean), {}


@dataclasses.dataclass(frozen=True)
class R2Penalty(Penalty):
  """R2 (Mescheder, Geiger, Nowozin 2018, Eq. 10): ``r_gamma/2 E_G |grad D(G(z))|^2``, on the
  generated samples.

  Attributes:
    r_gamma: gamma, the penalty's weight.
  """

  r_gamma: float = 10.0
  name: ClassVar[str] = "r2"
  description: ClassVar[str] = "R2, r_gamma/2 E|grad D(x_fake)|^2 (Mescheder et al. 2018)"

  def __call__(self, discriminator, real, fake, seed, mean=_local_mean):
    return input_gradient_penalty(discriminator, fake, self.r_gamma, mean), {}


@dataclasses.dataclass(frozen=True)
class R1R2Penalty(Penalty):
  """R1 + R2, each with weight ``r_gamma`` (as R3GAN, Huang et al. 2024, regularises).

  Attributes:
    r_gamma: gamma, the weight of each term.
  """

  r_gamma: float = 10.0
  name: ClassVar[str] = "r1r2"
  description: ClassVar[str] = "R1 + R2, each r_gamma/2 E|grad D|^2 (R3GAN's regulariser)"
  metrics: ClassVar[tuple[str, ...]] = ("penalty_r1", "penalty_r2")

  def __call__(self, discriminator, real, fake, seed, mean=_local_mean):
    r1 = input_gradient_penalty(discriminator, real, self.r_gamma, mean)
    r2 = input_gradient_penalty(discriminator, fake, self.r_gamma, mean)
    return r1 + r2, {"penalty_r1": r1, "penalty_r2": r2}


register_loss(Loss("indicator", "Chu et al.'s chi{mu = mu0} + penalty (Section 7)",
                   indicator_value, lambda d_fake, mean=_local_mean: mean(d_fake)))
register_loss(Loss("minimax", "Goodfellow et al.'s GAN; G descends V",
                   minimax_value, lambda d_fake, mean=_local_mean: -mean(tf.nn.softplus(d_fake))))
register_loss(Loss("non_saturating", "the GAN's D; G minimises -E log sigmoid(D(G(z)))",
                   minimax_value, lambda d_fake, mean=_local_mean: mean(tf.nn.softplus(-d_fake))))
register_loss(Loss("wgan", "E D(x) - E D(G(z))", wgan_value,
                   lambda d_fake, mean=_local_mean: -mean(d_fake)))
register_loss(Loss("hinge", "hinge loss for D, -E D(G(z)) for G (SNGAN)", hinge_value,
                   lambda d_fake, mean=_local_mean: -mean(d_fake)))
register_loss(Loss("least_squares", "LSGAN (Mao et al. 2017): targets 0/1 for D, 1 for G",
                   least_squares_value,
                   lambda d_fake, mean=_local_mean: 0.5 * mean(tf.square(d_fake - 1.0))))
register_loss(MMDLoss())
register_penalty(RKHSPenalty())
register_penalty(GradientPenalty())
register_penalty(R1Penalty())
register_penalty(R2Penalty())
register_penalty(R1R2Penalty())
