"""The GAN of both papers as one ``keras.Model`` with one parameterised ``train_step``.

One call of ``train_step`` is one generator step:

- ``n_disc`` discriminator steps (Chu et al. Section 7 use 2), each on its own real batch and
  fresh generator samples, descending ``-V + penalty`` (``tfsmooth.losses``);
- one generator step descending ``generator_loss`` plus, when ``eta > 0``, Nagarajan and
  Kolter's regulariser ``eta * |grad_{theta_D} V|^2`` (their Section 5; the gradient is w.r.t.
  all discriminator parameters and the term is applied to the generator only), or, with
  ``unroll_steps = K > 0``, the unrolled GAN of Metz et al. (2017), the baseline Nagarajan and
  Kolter compare with: the generator descends ``V`` at the discriminator after ``K``
  differentiable optimiser steps, differentiating through them.

``update="alternating"`` applies each discriminator step before the generator step sees the
discriminator. ``update="simultaneous"`` computes the generator gradient and the last
discriminator gradient at the same parameters and then applies both (gradient descent on the
joint vector field, as in Nagarajan and Kolter's analysis), from one forward pass of each network
on the same samples (``joint_gradients``) except for particle generators and the unrolled GAN.
With the ``mmd`` loss no
discriminator is trained: the generator descends ``lambda/2 MMD^2`` directly. Which loss and
penalty is a spec from the registries of ``tfsmooth.losses``; the step never tests a name.

Every random draw (latents, interpolation weights) is a stateless function of ``(seed, step)``
and the data provider is too, so a run restored from a checkpoint continues exactly as an
uninterrupted one. Losses are means over the global batch (a replica's sum divided by the
global batch size), so the same step runs under any ``tf.distribute`` strategy.

Used as Keras models are (keras-io's WGAN-GP example): ``SmoothGAN(generator, discriminator,
loss=..., penalty=...)``, ``compile(d_optimizer=..., g_optimizer=...)``, ``fit`` on a dataset or
array of samples ``(batch, *sample_shape)``; ``fit`` groups ``n_disc`` consecutive batches into
one step.
"""

import contextlib

import keras
import tensorflow as tf

from tfsmooth import distribute
from tfsmooth import layers as tfs_layers
from tfsmooth import losses

# Stateless seeds are (seed, (step * draws_per_step + draw) * _COUNTER_STRIDE): distinct for every
# draw of every step. A step draws 2 per discriminator step and 1 for the generator (the last
# slot), each for the global batch (every replica takes its slice: tfsmooth.distribute). The
# 64 slots and the stride are those of earlier versions (which drew per replica), so earlier runs
# reproduce bit for bit; n_disc >= 32 gets more slots.
_MIN_DRAWS_PER_STEP = 64
_COUNTER_STRIDE = 4096


def draws_per_step(n_disc: int) -> int:
  return max(_MIN_DRAWS_PER_STEP, 2 * n_disc + 1)


def _global_norm_share(gradients):
  """This replica's share of the norm of the global (all-reduced) gradient."""
  return distribute.share(tf.linalg.global_norm(distribute.all_sum(gradients)))


def _generator_terms(loss_gradients, regulariser_gradients=None) -> dict:
  """``g_grad_norm`` (this replica's share of the norm of the generator loss's global gradient)
  and, given the regulariser's gradients, ``nk_grad_norm`` (its global gradient's norm) and
  ``nk_cosine`` (the cosine between the two global gradients): each gradient all-reduced once."""
  loss_gradients = distribute.all_sum(loss_gradients)
  loss_norm = tf.linalg.global_norm(loss_gradients)
  terms = {"g_grad_norm": distribute.share(loss_norm)}
  if regulariser_gradients is not None:
    regulariser_gradients = distribute.all_sum(regulariser_gradients)
    norm = tf.linalg.global_norm(regulariser_gradients)
    dot = tf.add_n([tf.reduce_sum(a * b) for a, b in zip(loss_gradients, regulariser_gradients)])
    terms.update(nk_grad_norm=distribute.share(norm),
                 nk_cosine=distribute.share(tf.math.divide_no_nan(dot, norm * loss_norm)))
  return terms


def latent_sampler(generator, noise_dim: int | None = None):
  """``fn(batch_size, seed) -> latent`` for ``generator``: its own ``sample_latent`` where it
  has one (``networks.ParticleGenerator``: particle indices), N(0, I) noise of ``noise_dim``
  (default: the generator's input width) otherwise."""
  if hasattr(generator, "sample_latent"):
    return generator.sample_latent
  if noise_dim is None:
    noise_dim = int(generator.inputs[0].shape[-1])

  def sample_noise(batch_size, seed):
    return tf.random.stateless_normal([batch_size, noise_dim], seed=seed)
  return sample_noise


def generate(generator, sample_latent, num, seed):
  """``num`` samples of ``generator`` (inference mode) from latents ``sample_latent`` draws with
  the key ``(seed, -1)``: the samples of a run, of its exported generator and of evaluation."""
  seed = tf.cast(seed, tf.int64)
  return generator(sample_latent(num, tf.stack([seed, tf.constant(-1, tf.int64)])),
                   training=False)


def batch_major(real_batches):
  """``(n_disc, batch, ...)`` -> ``(batch, n_disc, ...)``: what ``fit`` is given, so that a
  ``tf.distribute`` strategy splits the batch axis across replicas, not the n_disc axis."""
  rank = len(real_batches.shape)
  return tf.transpose(real_batches, [1, 0, *range(2, rank)])


class DifferentiableOptimizerRule:
  """The update rule of a Keras ``Adam`` or ``SGD`` (no momentum) as a pure function of tensors,
  so that steps can be differentiated through (unrolled GANs).

  It starts from the optimiser's current state (moments and step count), as Metz et al. unroll
  the real optimiser; the arithmetic is Keras's ``update_step``, which a test checks against
  ``optimizer.apply``.
  """

  def __init__(self, optimizer, variables):
    self.optimizer = optimizer
    self.initial_iterations = tf.identity(optimizer.iterations)
    # pylint: disable=protected-access
    if isinstance(optimizer, keras.optimizers.Adam) and not optimizer.amsgrad:
      # Keras keeps the moments in private lists; the test against apply() guards this.
      index = [optimizer._get_variable_index(v) for v in variables]
      self.initial_state = ([tf.identity(optimizer._momentums[i]) for i in index],
                            [tf.identity(optimizer._velocities[i]) for i in index])
    elif isinstance(optimizer, keras.optimizers.SGD) and not optimizer.momentum:
      self.initial_state = ()
    else:
      raise ValueError(f"unrolling supports Adam and SGD without momentum, not {optimizer.name}")
    # pylint: enable=protected-access

  def step(self, params, gradients, state, k: int):
    """Unrolled step ``k`` (0-based) from ``params``: returns ``(params, state)``."""
    optimizer = self.optimizer
    learning_rate = tf.cast(optimizer.learning_rate, params[0].dtype)
    if not state:
      return [p - learning_rate * g for p, g in zip(params, gradients)], state
    momenta, velocities = state
    t = tf.cast(self.initial_iterations + 1 + k, params[0].dtype)
    alpha = learning_rate * tf.sqrt(1 - optimizer.beta_2**t) / (1 - optimizer.beta_1**t)
    momenta = [m + (g - m) * (1 - optimizer.beta_1) for m, g in zip(momenta, gradients)]
    velocities = [v + (g * g - v) * (1 - optimizer.beta_2) for v, g in zip(velocities, gradients)]
    # sqrt has an infinite derivative at 0 (a parameter with a zero gradient, e.g. a dead ReLU):
    # the floor keeps the second derivative finite and changes the value by < 1e-15.
    params = [p - m * alpha / (tf.sqrt(tf.maximum(v, 1e-30)) + optimizer.epsilon)
              for p, m, v in zip(params, momenta, velocities)]
    return params, (momenta, velocities)


class NonFiniteGuard(keras.layers.Layer):
  """The NaN/Inf guard: records the first step whose metrics are not all finite, which metric and
  its value. Kept in the graph, so it is exact inside a multi-step execution
  (``steps_per_execution``); step -1: none yet."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    # Every replica computes the same values: the first replica's are kept.
    def scalar(name, dtype, initial):
      return self.add_weight(name=name, shape=(), dtype=dtype, trainable=False,
                             initializer=keras.initializers.Constant(initial),
                             aggregation="only_first_replica")
    self.first_step = scalar("first_nonfinite_step", "int64", -1)
    self.first_metric = scalar("first_nonfinite_metric", "int64", 0)
    self.first_value = scalar("first_nonfinite_value", "float32", 0)
    self.names = ()  # the guarded metrics, sorted: first_metric indexes them
    self.built = True

  def record(self, step, metrics):
    """Records ``step`` if it is the first whose ``metrics`` (a dict of scalars) are not finite."""
    self.names = tuple(sorted(metrics))
    values = tf.stack([tf.cast(metrics[name], tf.float32) for name in self.names])
    finite = tf.math.is_finite(values)
    first = tf.argmin(tf.cast(finite, tf.int32), output_type=tf.int64)  # the first False
    record = tf.logical_and(self.first_step < 0, tf.logical_not(tf.reduce_all(finite)))

    def keep(variable, new):
      return variable.assign(tf.where(record, new, variable))
    keep(self.first_step, step)
    keep(self.first_metric, first)
    keep(self.first_value, tf.gather(values, first))

  def first_nonfinite(self):
    """``(step, metric, value)`` of the first step with a non-finite metric, or None."""
    step = int(self.first_step.numpy())
    if step < 0:
      return None
    return (step, self.names[int(self.first_metric.numpy())], float(self.first_value.numpy()))


def has_batch_norm(model) -> bool:
  """Whether ``model`` (or a model inside it) has a batch-norm layer."""
  return any(isinstance(layer, keras.layers.BatchNormalization)
             for layer in tfs_layers.all_layers(model))


def _sample_shape(model, tensors: str) -> tuple[int, ...] | None:
  """The shape of one sample of ``model``'s first ``inputs`` or ``outputs``; None for a
  subclassed model without a graph."""
  try:
    return tuple(int(d) for d in getattr(model, tensors)[0].shape[1:])
  except (AttributeError, TypeError, ValueError):
    return None


class SmoothGAN(keras.Model):
  """A generator and a discriminator trained by one parameterised ``train_step``.

  Build it from the two networks and plain arguments, ``compile`` it with two optimisers and
  ``fit`` it on real samples::

      gan = tfsmooth.SmoothGAN(generator, discriminator, loss="indicator",
                               penalty=tfsmooth.RKHSPenalty(penalty_lambda=1.0), n_disc=2)
      gan.compile(d_optimizer=keras.optimizers.Adam(1e-4),
                  g_optimizer=keras.optimizers.SGD(lr))
      gan.fit(images, batch_size=64, epochs=1)  # or a tf.data.Dataset of (batch, *shape)

  Args:
    generator: a ``keras.Model`` from latents to samples; a generator with a ``sample_latent``
      method (``tfsmooth.networks.ParticleGenerator``) draws its own latents, any other takes
      N(0, I) noise of ``noise_dim``.
    discriminator: a ``keras.Model`` from samples to one score per sample.
    loss: a ``tfsmooth.losses.Loss`` (or ``MMDLoss``), or a name in ``tfsmooth.losses.LOSSES``.
    penalty: a ``tfsmooth.losses.Penalty`` (``RKHSPenalty``, ``GradientPenalty``), a name in
      ``tfsmooth.losses.PENALTIES``, or None / ``"none"``.
    n_disc: discriminator steps per generator step, each on its own real batch (Chu et al.
      Section 7 use 2).
    update: ``"alternating"`` or ``"simultaneous"`` (Nagarajan and Kolter's analysis).
    eta: the Nagarajan-Kolter regulariser's weight (their Section 5); 0 = off.
    unroll_steps: K > 0 trains the generator against the discriminator after K differentiable
      optimiser steps (Metz et al. 2017); 0 = off.
    particle_batch: for a generator with ``all_latents`` (particles), the latents per generator
      step; 0 = all of them (the full gradient of Chu et al.'s analysis).
    noise_dim: the latent width of a noise-driven generator (default: its input width).
    seed: the seed of every random draw of the step (latents, interpolation weights).
    **kwargs: passed to ``keras.Model``.
  """

  UPDATES = ("alternating", "simultaneous")

  def __init__(self, generator: keras.Model, discriminator: keras.Model, loss="indicator",
               penalty="rkhs", n_disc: int = 2, update: str = "alternating", eta: float = 0.0,
               unroll_steps: int = 0, particle_batch: int = 0, noise_dim: int | None = None,
               seed: int = 0, **kwargs):
    super().__init__(**kwargs)
    if update not in self.UPDATES:
      raise ValueError(f"SmoothGAN: update must be one of {self.UPDATES}, got {update!r}")
    for name, value, low in (("n_disc", n_disc, 1), ("unroll_steps", unroll_steps, 0),
                             ("particle_batch", particle_batch, 0)):
      if isinstance(value, bool) or int(value) != value or value < low:
        raise ValueError(f"SmoothGAN: {name} must be an integer >= {low}, got {value!r}")
    if not eta >= 0:
      raise ValueError(f"SmoothGAN: eta must be >= 0, got {eta!r}")
    self.generator = generator
    self.discriminator = discriminator
    # Not `loss`: that is Keras's own attribute.
    self.game_loss = losses.get_loss(loss) if isinstance(loss, str) else loss
    self.penalty = losses.get_penalty(penalty) if isinstance(penalty, str) else penalty
    self.n_disc = int(n_disc)
    self.update = update
    self.eta = float(eta)
    self.unroll_steps = int(unroll_steps)
    self.particle_batch = int(particle_batch)
    self.seed = seed  # of the step's random draws (latents, interpolation weights)
    self.draws_per_step = draws_per_step(self.n_disc)
    self.sample_latent = latent_sampler(generator, noise_dim)
    # The generator's latents in its own step: a generator with a finite latent set (particles)
    # takes --particle_batch of them or all; any other the batch of its step.
    self.own_generator_batch = hasattr(generator, "all_latents")
    # A discriminator with batch norm sees real and generated batches separately, in training
    # mode in both players' steps, as DCGAN code does (each batch normalised by its own
    # statistics); any other sees both in one call, and the generator's step in inference mode
    # (its spectral-norm vectors move in the discriminator's steps only).
    self.batch_statistics = has_batch_norm(discriminator)
    # The generator objective, chosen once (Nagarajan-Kolter Section 5; Metz et al.).
    if not self.game_loss.trains_discriminator:
      self._generator_objective = self._closed_form_objective
    elif self.unroll_steps:
      self._generator_objective = self._unrolled_objective
    elif self.eta > 0:
      self._generator_objective = self._regularised_objective
    else:
      self._generator_objective = self._plain_objective
    # Every replica counts the same steps: the first replica's value is kept.
    self.step = self.add_weight(name="gan_step", shape=(), dtype="int64", initializer="zeros",
                                trainable=False, aggregation="only_first_replica")
    self.guard = NonFiniteGuard(name="nonfinite_guard")
    # A Keras metric per value the step reports: fit shows and logs their means since the
    # epoch began (reset_metrics starts them again), as for any Keras model.
    self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
    # Both networks are built; without this, fit under a strategy would try to build the model
    # by calling it on a data batch, which is not its input (a latent).
    self.built = True

  @property
  def generated_shape(self) -> tuple[int, ...] | None:
    """The shape of one generated sample (the generator's output), or None if unknown."""
    if hasattr(self.generator, "sample_shape"):  # a ParticleGenerator
      return tuple(self.generator.sample_shape)
    return _sample_shape(self.generator, "outputs")

  @property
  def sample_shape(self) -> tuple[int, ...]:
    """The shape of one sample: the discriminator's input (or the generator's output)."""
    shape = _sample_shape(self.discriminator, "inputs") or self.generated_shape
    if shape is None:
      raise ValueError("SmoothGAN: cannot tell the sample shape (build the discriminator on an "
                       "Input)")
    return shape

  @property
  def metric_names(self) -> tuple[str, ...]:
    """The values each step reports: the discriminator's loss ``-V + penalty``, ``V``, its mean
    outputs on real and generated samples and gradient norm (when a discriminator is trained),
    the penalty and its ``Penalty.metrics`` (when there is one), the generator's loss, the
    Nagarajan-Kolter regulariser, ``g_grad_norm`` and, when ``eta > 0``, ``nk_grad_norm`` and
    ``nk_cosine``: the norm of the regulariser's gradient w.r.t. the generator, to set beside
    ``g_grad_norm``, and its cosine with the generator loss's gradient (below 0: the regulariser
    pulls the generator against its loss)."""
    names = []
    if self.game_loss.trains_discriminator:
      names += ["d_loss", "value", "d_real", "d_fake", "d_grad_norm"]
      if self.penalty is not None:
        names += ["penalty", *self.penalty.metrics]
    names += ["g_loss", "nk_regulariser", "g_grad_norm"]
    return (*names, "nk_grad_norm", "nk_cosine") if self.eta > 0 else tuple(names)

  @property
  def metrics(self):
    """The step's Keras metrics (``keras.metrics.Mean``), in ``metric_names`` order."""
    return list(self.trackers.values())

  @property
  def progress_metrics(self) -> tuple[str, ...]:
    """The metrics the progress bar shows (TensorBoard gets them all): the players' losses, the
    norm of the generator's gradient (Chu et al.'s stationarity measure, Theorem 1), and the
    penalty and the Nagarajan-Kolter regulariser where the configuration has them."""
    names = ["d_loss"] if self.game_loss.trains_discriminator else []
    names += ["g_loss", "g_grad_norm"]
    if self.game_loss.trains_discriminator and self.penalty is not None:
      names.append("penalty")
    if self.eta > 0:
      names.append("nk_regulariser")
    return tuple(names)

  def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):  # pylint: disable=arguments-differ
    """Sets the two players' optimisers (``keras.optimizers.Adam`` or ``SGD``; unrolling needs
    one of these) and builds them, so that every ``fit`` traces a step without creating
    variables."""
    if d_optimizer is None or g_optimizer is None:
      raise ValueError("SmoothGAN.compile needs d_optimizer= and g_optimizer= (a "
                       "keras.optimizers.Optimizer each)")
    super().compile(**kwargs)
    self.d_optimizer = d_optimizer
    self.g_optimizer = g_optimizer
    d_optimizer.build(self.discriminator.trainable_variables)
    g_optimizer.build(self.generator.trainable_variables)

  # ------------------------------------------------------------------------------------------
  # Data: fit takes plain batches of samples

  def fit(self, x=None, y=None, batch_size=None, **kwargs):  # pylint: disable=arguments-differ
    """``keras.Model.fit`` on real samples: ``x`` is a ``tf.data.Dataset`` of batches ``(batch,
    *sample_shape)`` (or of tuples whose first element is such a batch, e.g. (images, labels)),
    or an array ``(N, *sample_shape)`` cut into shuffled batches of ``batch_size`` (default 32).
    Every ``n_disc`` consecutive batches make one training step (one per discriminator step);
    the last batch of a dataset batched without ``drop_remainder`` is left out.

    Raises:
      ValueError: before anything is traced, for samples of another shape than the networks'
        (the model stays usable).
    """
    if y is not None:
      raise ValueError("SmoothGAN.fit takes real samples only (x), not targets (y)")
    kwargs.setdefault("shuffle", False)  # the dataset is ready; an array was shuffled above
    return super().fit(self.step_batches(x, batch_size), **kwargs)

  def step_batches(self, x, batch_size: int | None = None):
    """``x`` (as ``fit`` takes it) as a dataset of steps: ``(batch, n_disc, *sample_shape)``,
    ``n_disc`` consecutive batches each, batch axis first (so that a ``tf.distribute``
    strategy splits the batch, not the discriminator steps)."""
    if not isinstance(x, tf.data.Dataset):
      if x is None or not hasattr(x, "shape"):
        raise ValueError(f"SmoothGAN.fit: x must be a tf.data.Dataset or an array of samples, "
                         f"got {type(x).__name__}")
      self._check_shape((None, *tuple(x.shape)[1:]), "x")
      x = (tf.data.Dataset.from_tensor_slices(tf.cast(x, tf.float32))
           .shuffle(int(x.shape[0]), seed=self.seed).batch(batch_size or 32, drop_remainder=True))
    elif batch_size is not None:
      raise ValueError("SmoothGAN.fit: batch_size is for arrays; a dataset is already batched")
    spec = x.element_spec
    if isinstance(spec, (tuple, list)):  # (samples, labels, ...): the samples
      x, spec = x.map(lambda *parts: parts[0]), spec[0]
    if not isinstance(spec, tf.TensorSpec):
      raise ValueError(f"SmoothGAN.fit: the dataset's elements must be batches of samples, got "
                       f"{spec}")
    self._check_shape(tuple(spec.shape), "the dataset's batches")
    if spec.shape[0] is None:  # batched without drop_remainder: the last batch may be smaller
      count = int(x.cardinality())
      if count >= 0:
        # Left out, so that a step's n_disc batches stack and the length stays known (Keras
        # 3.15's fit runs one extra step on a dataset of unknown length).
        x = x.take(count - 1)
      else:  # infinite or unknown: the batches of another size than the first are left out
        size = int(next(iter(x.take(1))).shape[0])
        x = x.filter(lambda batch: tf.shape(batch)[0] == size)
    return x.batch(self.n_disc, drop_remainder=True).map(batch_major)

  def _check_shape(self, shape, what: str):
    expected = self.sample_shape
    if len(shape) != len(expected) + 1 or tuple(shape[1:]) != expected:
      got = "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ")"
      raise ValueError(f"SmoothGAN.fit: {what} have shape {got}; the networks take samples of "
                       f"shape {expected}, so batches (batch, {', '.join(map(str, expected))})")

  def call(self, latent, training=False):
    return self.generator(latent, training=training)

  def _seed(self, draw: int):
    counter = (self.step * self.draws_per_step + draw) * _COUNTER_STRIDE
    return tf.stack([tf.constant(self.seed, tf.int64), counter])

  def _latent(self, local_size, draw: int):
    """This replica's slice of the latents drawn for the global batch."""
    global_size = local_size * distribute.replicas()
    return distribute.replica_slice(self.sample_latent(global_size, self._seed(draw)))

  # ------------------------------------------------------------------------------------------
  # Gradients

  def discriminator_gradients(self, real, latent, interpolation_seed):
    """Gradient of ``-V + penalty`` w.r.t. the discriminator, and the terms as metrics."""
    fake = self.generator(latent, training=True)
    with tf.GradientTape() as tape:
      game_value, _, terms = self._game_value(real, fake)
      d_loss = self._with_penalty(-game_value, terms, real, fake, interpolation_seed)
    variables = self.discriminator.trainable_variables
    gradients = tape.gradient(d_loss, variables)
    terms.update(d_loss=d_loss, value=game_value, d_grad_norm=_global_norm_share(gradients))
    return gradients, terms

  def _discriminate(self, real, fake, params=None, fixed=None):
    """``(D(real), D(fake))`` in training mode (at ``params``, ``fixed`` if given: a stateless
    call). One call on real and fake together, one power-iteration update per discriminator
    step; two for a discriminator with batch norm (``batch_statistics``)."""
    def discriminator(samples):
      if params is None:
        return self.discriminator(samples, training=True)
      return self.discriminator.stateless_call(params, fixed, samples, training=True)[0]
    if self.batch_statistics:
      return discriminator(real), discriminator(fake)
    batch = tf.shape(real)[0]
    outputs = discriminator(tf.concat([real, fake], 0))
    return outputs[:batch], outputs[batch:]

  def _generator_side(self, samples):
    """D as the generator's step sees it: inference mode, or training mode (the batch's own
    statistics) for a discriminator with batch norm."""
    return self.discriminator(samples, training=self.batch_statistics)

  def _game_value(self, real, fake):
    """``V`` on this batch, ``D(fake)``, and the mean discriminator outputs as metrics."""
    d_real, d_fake = self._discriminate(real, fake)
    game_value = self.game_loss.value(d_real, d_fake, distribute.global_mean)
    terms = {"d_real": distribute.global_mean(d_real),
             "d_fake": distribute.global_mean(d_fake)}
    return game_value, d_fake, terms

  def _with_penalty(self, d_loss, terms, real, fake, interpolation_seed):
    """``d_loss`` plus the discriminator penalty, if any (its value and parts added to
    ``terms``)."""
    if self.penalty is None:
      return d_loss
    penalty, parts = self.penalty(self.discriminator, real, fake, interpolation_seed,
                                  distribute.global_mean)
    terms.update(parts, penalty=penalty)
    return d_loss + penalty

  def unrolled_discriminator_outputs(self, real, fake):
    """``D_K(fake)`` for the discriminator ``D_K`` after ``unroll_steps`` optimiser steps on
    ``-V(real, fake)``, as a differentiable function of ``fake`` (Metz et al. 2017, Section 2:
    the surrogate generator objective; every unrolled step uses this batch)."""
    discriminator = self.discriminator
    rule = DifferentiableOptimizerRule(self.d_optimizer, discriminator.trainable_variables)
    params = [tf.identity(v) for v in discriminator.trainable_variables]
    fixed = [tf.identity(v) for v in discriminator.non_trainable_variables]
    state = rule.initial_state
    for k in range(self.unroll_steps):
      with tf.GradientTape() as tape:
        tape.watch(params)
        d_real, d_fake = self._discriminate(real, fake, params, fixed)
        d_loss = -self.game_loss.value(d_real, d_fake, distribute.global_mean)
      # The look-ahead step uses the global gradient, as the real optimiser step would.
      gradients = distribute.all_sum(tape.gradient(d_loss, params))
      params, state = rule.step(params, gradients, state, k)
    outputs, _ = discriminator.stateless_call(params, fixed, fake, training=True)
    return outputs

  # The generator objectives: ``(real, fake) -> (generator loss, regulariser)``, one chosen in
  # __init__ (called inside the generator's tape).

  def _closed_form_objective(self, real, fake):
    g_loss = self.game_loss.closed_form(real, fake)
    return g_loss, tf.zeros_like(g_loss)

  def _unrolled_objective(self, real, fake):
    g_loss = self.game_loss.generator_loss(self.unrolled_discriminator_outputs(real, fake),
                                           distribute.global_mean)
    return g_loss, tf.zeros_like(g_loss)

  def _regularised_objective(self, real, fake):
    with tf.GradientTape() as inner:
      d_real = self._generator_side(real)
      d_fake = self._generator_side(fake)
      game_value = self.game_loss.value(d_real, d_fake, distribute.global_mean)
    g_loss = self.game_loss.generator_loss(d_fake, distribute.global_mean)
    return g_loss, self._nk_regulariser(inner.gradient(
        game_value, self.discriminator.trainable_variables))

  def _plain_objective(self, real, fake):
    del real  # the generator's loss needs D(fake) only
    g_loss = self.game_loss.generator_loss(self._generator_side(fake), distribute.global_mean)
    return g_loss, tf.zeros_like(g_loss)

  def generator_gradients(self, real, latent):
    """Gradient of ``generator_loss + eta |grad_D V|^2`` w.r.t. the generator (or of
    ``generator_loss`` at the unrolled discriminator when ``unroll_steps > 0``).

    ``g_grad_norm`` is the norm of the gradient of the generator loss alone: Chu et al.'s
    stationarity measure ``|grad_theta J(mu_theta)|`` (Theorem 1 drives it to 0).
    """
    variables = self.generator.trainable_variables
    with tf.GradientTape(persistent=self.eta > 0) as tape:
      fake = self.generator(latent, training=True)
      g_loss, regulariser = self._generator_objective(real, fake)
      total = g_loss + regulariser
    gradients = tape.gradient(total, variables)
    if self.eta > 0:
      loss_gradients = tape.gradient(g_loss, variables)
      # The regulariser's gradient as the difference: no third backward pass.
      terms = _generator_terms(loss_gradients, [a - b for a, b in zip(gradients, loss_gradients)])
    else:
      terms = _generator_terms(gradients)
    del tape
    return gradients, {"g_loss": g_loss, "nk_regulariser": regulariser, **terms}

  def _nk_regulariser(self, value_gradients):
    """``eta |grad_D V|^2`` of the global V: the all-reduced gradient is squared, not each
    replica's (this replica's share of it)."""
    return distribute.share(self.eta * losses.squared_global_norm(
        distribute.all_sum(value_gradients)))

  def joint_gradients(self, real, latent, interpolation_seed):
    """Both players' gradients from one forward pass of each network, for the simultaneous
    update (Nagarajan and Kolter, Section 2: gradient descent on the joint vector field at one
    point): the discriminator's of ``-V + penalty`` and the generator's of ``generator_loss +
    eta |grad_D V|^2``, at the same samples ``G(latent)``. Without a penalty the
    discriminator's gradient is ``-grad_D V``, which the regulariser computes anyway."""
    regularised = self.eta > 0
    d_variables = self.discriminator.trainable_variables
    g_variables = self.generator.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
      fake = self.generator(latent, training=True)
      with tf.GradientTape() as inner:
        game_value, d_fake, terms = self._game_value(real, fake)
      value_gradients = inner.gradient(game_value, d_variables) if regularised else None
      g_loss = self.game_loss.generator_loss(d_fake, distribute.global_mean)
      regulariser = (self._nk_regulariser(value_gradients) if regularised
                     else tf.zeros_like(g_loss))
      d_loss = self._with_penalty(-game_value, terms, real, tf.stop_gradient(fake),
                                  interpolation_seed)
    if value_gradients is not None and self.penalty is None:
      d_gradients = [-g for g in value_gradients]
    else:
      d_gradients = tape.gradient(d_loss, d_variables)
    loss_gradients = tape.gradient(g_loss, g_variables)
    g_gradients, regulariser_gradients = loss_gradients, None
    if regularised:
      regulariser_gradients = tape.gradient(regulariser, g_variables)
      g_gradients = [a + b for a, b in zip(loss_gradients, regulariser_gradients)]
    del tape
    terms.update(d_loss=d_loss, value=game_value, d_grad_norm=_global_norm_share(d_gradients),
                 g_loss=g_loss, nk_regulariser=regulariser,
                 **_generator_terms(loss_gradients, regulariser_gradients))
    return d_gradients, g_gradients, terms

  # ------------------------------------------------------------------------------------------
  # The step

  def _generator_latent(self, batch_size):
    if self.own_generator_batch and self.particle_batch == 0:
      # All particles, the full gradient; each replica takes its share of the rows.
      return distribute.replica_slice(self.generator.all_latents())
    if self.own_generator_batch:  # particle_batch is global (replicas must divide it)
      batch_size = self.particle_batch // distribute.replicas()
    return self._latent(batch_size, self.draws_per_step - 1)

  def train_step(self, data):
    real_batches = batch_major(data)  # back to (n_disc, batch, ...): the transpose is its inverse
    batch_size = tf.shape(real_batches)[1]
    metrics = {}
    disc_steps = self.n_disc if self.game_loss.trains_discriminator else 0
    simultaneous = self.update == "simultaneous"
    # One forward pass per player when both players can share the samples: not for particles,
    # whose generator step takes its own rows (particle_batch), nor the unrolled generator.
    joint = simultaneous and not (self.own_generator_batch or self.unroll_steps)
    for k in range(disc_steps):
      if joint and k == disc_steps - 1:
        d_gradients, g_gradients, step_metrics = self.joint_gradients(
            real_batches[k], self._latent(batch_size, 2 * k), self._seed(2 * k + 1))
        self.d_optimizer.apply(d_gradients, self.discriminator.trainable_variables)
        metrics.update(step_metrics)
        continue
      if simultaneous and k == disc_steps - 1:
        # Both gradients at the same point: the generator's first, since the discriminator's
        # forward pass refines its spectral-norm vectors.
        g_gradients, g_metrics = self.generator_gradients(
            real_batches[k], self._generator_latent(batch_size))
        metrics.update(g_metrics)
      latent = self._latent(batch_size, 2 * k)
      d_gradients, d_metrics = self.discriminator_gradients(real_batches[k], latent,
                                                            self._seed(2 * k + 1))
      self.d_optimizer.apply(d_gradients, self.discriminator.trainable_variables)
      metrics.update(d_metrics)
    if not (simultaneous and disc_steps):
      g_gradients, g_metrics = self.generator_gradients(
          real_batches[disc_steps - 1 if disc_steps else -1], self._generator_latent(batch_size))
      metrics.update(g_metrics)
    self.g_optimizer.apply(g_gradients, self.generator.trainable_variables)
    self.step.assign_add(1)
    # Every metric is a share: the sum is the global value.
    metrics = distribute.all_sum(metrics)
    self.guard.record(self.step, metrics)  # this step's values, not the means
    unknown = sorted(set(metrics) - set(self.trackers))
    if unknown:  # at trace time: a penalty whose `metrics` does not list what it returns
      raise ValueError(f"SmoothGAN: the step reports {unknown}, not in metric_names "
                       f"{self.metric_names}; a Penalty lists its extra values in `metrics`")
    for name, value in metrics.items():
      self.trackers[name].update_state(value)
    return distribute.metrics_for_fit({m.name: m.result() for m in self.metrics})

  def nonfinite(self):
    """``(step, metric, value)`` of the first step with a non-finite metric, or None."""
    return self.guard.first_nonfinite()

  def sample(self, num: int, seed: int):
    """``num`` generator samples from latents drawn with ``seed`` (inference mode; with the
    average of the generator's weights when its optimiser keeps one: ``generator_ema``)."""
    with self.generator_ema():
      return generate(self.generator, self.sample_latent, num, seed)

  @contextlib.contextmanager
  def generator_ema(self):
    """Within it, the generator holds the exponential moving average of its weights that its
    optimiser keeps (``keras.optimizers.Adam(use_ema=True, ema_momentum=0.999)``, the generator
    average of StyleGAN and R3GAN), and afterwards exactly its own weights again; without such an
    optimiser, its own weights throughout. Sampling, evaluation and export use it; training
    never sees the average."""
    optimizer = getattr(self, "g_optimizer", None)
    if optimizer is None or not optimizer.use_ema:
      yield self.generator
      return
    variables = self.generator.trainable_variables  # the order compile() built the optimiser in
    # Keras keeps the averages here (its SwapEMAWeights callback reads the same list); copied in
    # and back by assignment, so the weights return bit for bit.
    averages = optimizer._model_variables_moving_average  # pylint: disable=protected-access
    saved = [tf.identity(v) for v in variables]
    for variable, average in zip(variables, averages):
      variable.assign(average)
    try:
      yield self.generator
    finally:
      for variable, value in zip(variables, saved):
        variable.assign(value)
