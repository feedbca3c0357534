"""Base losses, discriminator penalties and the Nagarajan-Kolter generator regulariser, as small
pure functions selected by name (the compare_gan style).

Conventions. ``d_real = D(x)`` and ``d_fake = D(G(z))`` are per-example discriminator outputs.
``value`` is the game's value ``V(G, D)``: the discriminator ascends it, the generator descends it
(Nagarajan and Kolter, Section 2). The discriminator minimises ``-V + penalty``; the generator
minimises ``generator_loss``, which is ``V`` (up to terms without G) for every loss except the
non-saturating heuristic. Means are taken by the caller's ``mean`` so that the same functions
scale correctly under ``tf.distribute`` (sum over the replica's examples / global batch).
"""

import tensorflow as tf

from tfsmooth.config import BASE_LOSSES


def _local_mean(values):
  return tf.reduce_mean(values)


def value(loss: str, d_real, d_fake, mean=_local_mean):
  """``V(G, D)``, which D ascends and G descends.

  - minimax / non_saturating (Goodfellow et al.; N&K with ``f(u) = -log(1 + e^-u)``):
    ``E log sigmoid(D(x)) + E log(1 - sigmoid(D(G(z))))``.
  - wgan (N&K with ``f(u) = u``): ``E D(x) - E D(G(z))``.
  - indicator (Chu et al. Section 7, base loss ``chi{mu = mu0}``): ``E_gen phi - E_data phi``:
    the discriminator ``phi`` points up the generator's loss, so the generator descends
    ``E_gen phi`` (the penalty, subtracted in ``discriminator_loss``, keeps it bounded).
  """
  if loss in ("minimax", "non_saturating"):
    return -mean(tf.nn.softplus(-d_real)) - mean(tf.nn.softplus(d_fake))
  if loss == "wgan":
    return mean(d_real) - mean(d_fake)
  if loss == "indicator":
    return mean(d_fake) - mean(d_real)
  raise ValueError(f"loss '{loss}' has no discriminator; known: {', '.join(BASE_LOSSES)}")


def generator_loss(loss: str, d_fake, mean=_local_mean):
  """What the generator minimises: the G-dependent part of ``V``, or for non_saturating
  ``-E log sigmoid(D(G(z)))``."""
  if loss == "minimax":
    return -mean(tf.nn.softplus(d_fake))
  if loss == "non_saturating":
    return mean(tf.nn.softplus(-d_fake))
  if loss == "wgan":
    return -mean(d_fake)
  if loss == "indicator":
    return mean(d_fake)
  raise ValueError(f"loss '{loss}' has no discriminator; known: {', '.join(BASE_LOSSES)}")


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
  """``J = lambda/2 * MMD^2`` (THEORY.md: then ``beta2 = lambda / sigma^2``)."""
  return 0.5 * penalty_lambda * mmd_squared(real, fake, kernel_sigma)


def interpolates(real, fake, seed):
  """``x_hat = t x_real + (1 - t) x_fake``, ``t ~ U(0, 1)`` per example (stateless in seed)."""
  shape = tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], 0)
  t = tf.random.stateless_uniform(shape, seed=seed, dtype=real.dtype)
  return t * real + (1.0 - t) * fake


def _squared_norms(gradients):
  return tf.reduce_sum(tf.square(tf.reshape(gradients, (tf.shape(gradients)[0], -1))), axis=1)


def rkhs_penalty(phi_hat, grad_hat, kernel_sigma, penalty_lambda, output_weight=1.0,
                 gradient_weight=1.0, mean=_local_mean):
  """Truncated squared Gaussian-RKHS norm of the discriminator, as a penalty (Chu et al.
  Section 5.3, Moreau-Yosida regularisation with weight lambda; THEORY.md):

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
