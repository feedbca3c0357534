"""The SavedModels of a run (``export/generator``, ``export/discriminator``), written so that every
SavedModel loader runs them: TensorFlow Serving and ``saved_model_cli run`` (the graph-mode loader
of ``tf.compat.v1.saved_model``) as well as eager ``tf.saved_model.load``.

Each has one endpoint with named inputs and outputs, which is also its ``serving_default``
signature:

    generator       sample(num: int32 [], seed: int64 []) -> {"samples": float32 [num, *shape]}
    discriminator   score(samples: float32 [None, *shape]) -> {"score": float32 [None, 1]}

The generator draws its latents statelessly from ``seed`` (``tfsmooth.gan.generate``, as
``SmoothGAN.sample`` does in training), so the same ``(num, seed)`` gives the same samples in
training, after reloading and in a server. docs/serving.md shows how to call them.

Why ``keras.export.ExportArchive`` and not ``tf.saved_model.save`` of a ``tf.Module``: the
latter, given Keras 3 models, writes a MetaGraph whose restore op does not restore the Keras
variables, so the graph-mode loader fails with "Could not find variable ..." while the eager
loader (which restores through the object graph) works. ExportArchive tracks the variables
themselves, and both loaders restore them.
"""

import keras
import tensorflow as tf

from tfsmooth import gan

GENERATOR_ENDPOINT = "sample"
GENERATOR_OUTPUT = "samples"
DISCRIMINATOR_ENDPOINT = "score"
DISCRIMINATOR_INPUT = "samples"
DISCRIMINATOR_OUTPUT = "score"


def _write(path: str, model: keras.Model, endpoint: str, fn, input_signature) -> None:
  archive = keras.export.ExportArchive()
  archive.track(model)
  # The first endpoint is also written as the "serving_default" signature.
  archive.add_endpoint(endpoint, fn, input_signature=input_signature)
  archive.write_out(path, verbose=False)


def export_generator(generator: keras.Model, path: str, noise_dim: int | None = None) -> None:
  """Writes ``generator`` (inference mode) as ``sample(num, seed) -> {"samples"}`` to ``path``."""
  sample_latent = gan.latent_sampler(generator, noise_dim)

  def sample(num, seed):
    return {GENERATOR_OUTPUT: gan.generate(generator, sample_latent, num, seed)}

  _write(path, generator, GENERATOR_ENDPOINT, sample,
         [tf.TensorSpec([], tf.int32, name="num"), tf.TensorSpec([], tf.int64, name="seed")])


def export_discriminator(discriminator: keras.Model, path: str) -> None:
  """Writes ``discriminator`` as ``score(samples) -> {"score"}`` (its raw output, one value per
  sample) to ``path``."""
  def score(samples):
    return {DISCRIMINATOR_OUTPUT: discriminator(samples, training=False)}

  shape = (None, *discriminator.inputs[0].shape[1:])
  _write(path, discriminator, DISCRIMINATOR_ENDPOINT, score,
         [tf.TensorSpec(shape, tf.float32, name=DISCRIMINATOR_INPUT)])


def load_generator(path: str):
  """The exported generator at ``path`` as ``fn(num, seed) -> numpy samples`` (eager loader).

  Exports written before the named signature returned the samples tensor itself; they load too.
  """
  loaded = tf.saved_model.load(path)

  def sample(num: int, seed: int):
    samples = getattr(loaded, GENERATOR_ENDPOINT)(tf.constant(num, tf.int32),
                                                  tf.constant(seed, tf.int64))
    return (samples[GENERATOR_OUTPUT] if isinstance(samples, dict) else samples).numpy()
  sample.loaded = loaded  # its functions hold only weak references to it
  return sample
