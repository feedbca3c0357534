"""Live stability monitors: what Chu et al.'s Theorem 1 assumes and bounds, measured on the
current weights during training (docs/stability_lab.md).

``stability_measures(model, real)`` returns, for a ``SmoothGAN``:

- ``operator_norm/LAYER``: each spectrally normalised layer's true operator norm as it computes
  (``W / sigma`` with the stored power-iteration vector; a convolution's norm on its input
  shape): 1 when the normalisation holds, above 1 when its estimate lags the weights.
- ``lipschitz_real`` and ``lipschitz_fake``: the discriminator's empirical Lipschitz constant,
  the largest input-gradient norm ``|grad_x D(x)|`` over a batch of real and of generated
  samples; never above ``alpha_bound`` when the bound is sound (condition D1).
- ``alpha_bound`` and ``beta1_bound``: the bounds of D1 and D2 recomputed from the current
  weights (``theory.model_bounds``), for a discriminator tfsmooth can bound.
- ``gamma_star`` and ``gamma_ratio`` (the generator's learning rate over it): Theorem 1's
  ``1 / L`` from the current bounds, when beta2 (an RKHS penalty's ``penalty_lambda`` and
  ``kernel_sigma``) and the generator's A, B (a particle generator) are known.

``StabilityMonitor`` is the Keras callback that writes them, with the step's ``g_grad_norm``
(Chu et al.'s stationarity measure), to TensorBoard under one group, ``stability/``, every
``every`` steps; a command-line run does the same every ``--stability_every`` steps (default
100: one measurement costs a few training steps, docs/performance.md). Measuring changes no
weight, power-iteration vector or random stream: a run's weights are the same with and without
(tests/test_monitors.py).
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tfsmooth import layers as tfs_layers
from tfsmooth import theory

GROUP = "stability"  # the TensorBoard tag prefix of every measure
SN_LAYERS = (tfs_layers.SNDense, tfs_layers.SNConv2D)


def input_gradient_norms(discriminator, samples) -> np.ndarray:
  """``|grad_x D(x)|`` of each sample (inference mode: no power-iteration update)."""
  samples = tf.convert_to_tensor(samples)
  with tf.GradientTape() as tape:
    tape.watch(samples)
    outputs = discriminator(samples, training=False)
  gradients = tape.gradient(outputs, samples)
  return tf.norm(tf.reshape(gradients, (tf.shape(gradients)[0], -1)), axis=1).numpy()


def _sn_layer_names(model) -> set[str]:
  return {layer.name for layer in tfs_layers.all_layers(model) if isinstance(layer, SN_LAYERS)}


def stability_measures(model, real, seed: int = 0) -> dict[str, float]:
  """The measures of the module docstring for ``model`` (a ``SmoothGAN``) at its current
  weights.

  Args:
    model: a built ``SmoothGAN``.
    real: a batch of real samples ``(batch, *sample_shape)``; as many generated samples are drawn
      with ``seed`` (the same latents every time, so the curve follows the weights).
    seed: seed of the generated samples' latents.

  Returns:
    ``{name: value}``; the bounds only for a discriminator tfsmooth can bound, gamma* only when
    beta2 and the generator's A, B are known.
  """
  discriminator = model.discriminator
  real = tf.convert_to_tensor(real)
  fake = model.sample(int(real.shape[0]), seed)
  measures = {"lipschitz_real": float(np.max(input_gradient_norms(discriminator, real))),
              "lipschitz_fake": float(np.max(input_gradient_norms(discriminator, fake)))}
  try:
    bounds = theory.model_bounds(discriminator)
  except (theory.UnboundedLayerError, ValueError):
    return measures  # a network tfsmooth cannot bound: the empirical constants only
  sn_layers = _sn_layer_names(discriminator)
  for row in bounds.layers:
    if row.name in sn_layers:
      measures[f"operator_norm/{row.name}"] = row.layer.lipschitz
  measures["alpha_bound"] = bounds.lipschitz
  if math.isfinite(bounds.beta1):
    measures["beta1_bound"] = bounds.beta1
  penalty, generator = model.penalty, model.generator
  if (math.isfinite(bounds.beta1) and hasattr(penalty, "penalty_lambda")
      and hasattr(penalty, "kernel_sigma") and hasattr(generator, "num_particles")):
    generator_a, generator_b = theory.particle_generator_constants(generator.num_particles)
    smoothness = theory.smoothness_constant(
        bounds.lipschitz, bounds.beta1, theory.rkhs_beta2(penalty.penalty_lambda,
                                                          penalty.kernel_sigma),
        generator_a, generator_b)
    measures["gamma_star"] = theory.gamma_star(smoothness)
    optimizer = getattr(model, "g_optimizer", None)
    if optimizer is not None:
      rate = float(tf.convert_to_tensor(optimizer.learning_rate))  # a MirroredVariable too
      measures["gamma_ratio"] = rate / measures["gamma_star"]
  return measures


def write_measures(writer, step: int, measures: dict, g_grad_norm: float | None = None) -> None:
  """``measures`` (and the step's ``g_grad_norm``) as scalars ``stability/NAME`` at ``step``."""
  with writer.as_default(step=step):
    for name, value in measures.items():
      tf.summary.scalar(f"{GROUP}/{name}", value)
    if g_grad_norm is not None:
      tf.summary.scalar(f"{GROUP}/g_grad_norm", g_grad_norm)


class StabilityMonitor(keras.callbacks.Callback):
  """Writes ``stability_measures`` to TensorBoard (``log_dir``, group ``stability/``) every
  ``every`` generator steps of ``SmoothGAN.fit``, with the step's ``g_grad_norm``.

  Args:
    real: a fixed batch of real samples to measure the Lipschitz constant on.
    log_dir: the TensorBoard log directory (e.g. that of ``keras.callbacks.TensorBoard``).
    every: generator steps between measurements (with ``steps_per_execution`` > 1, at the end of
      the first execution that reaches a multiple).
    seed: seed of the generated samples' latents.

  Attributes:
    history: ``[(step, measures)]`` of every measurement.
  """

  def __init__(self, real, log_dir: str, every: int = 10, seed: int = 0):
    super().__init__()
    if every < 1:
      raise ValueError(f"StabilityMonitor: every={every}; expected >= 1")
    self.real = real
    self.every = every
    self.seed = seed
    self.writer = tf.summary.create_file_writer(log_dir)
    self.history = []
    self._next = every

  def on_train_begin(self, logs=None):
    self._next = (int(self.model.step.numpy()) // self.every + 1) * self.every

  def on_train_batch_end(self, batch, logs=None):
    step = int(self.model.step.numpy())
    if step < self._next:
      return
    self._next = (step // self.every + 1) * self.every
    measures = stability_measures(self.model, self.real, self.seed)
    self.history.append((step, measures))
    logs = logs or {}
    write_measures(self.writer, step, measures,
                   float(logs["g_grad_norm"]) if "g_grad_norm" in logs else None)
    self.writer.flush()
