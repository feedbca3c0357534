"""A small convolutional classifier that tfsmooth trains itself: offline features for FID/KID
and the digit classifier that counts the modes of stacked MNIST.

FID needs a feature extractor, and TF-GAN's Inception network is a download this machine cannot
make. Instead tfsmooth trains a small conv net on the real dataset, once per ``(dataset, seed)``,
and caches it; FID and KID are then computed on its penultimate layer (``features``, 128 ReLU
units). Such numbers are comparable only between runs that use the same classifier (dataset and
seed), never with published Inception FIDs.

The network (``build_model``)::

    conv 3x3, 32, ReLU -> max-pool 2 -> conv 3x3, 64, ReLU -> max-pool 2
      -> dense 128, ReLU ("features") -> dense num_classes ("logits")

trained with Adam (step size 1e-3, cosine-decayed to 0 over the run) on batches of 128, inputs
NHWC float32 in [-1, 1] like every image in tfsmooth. Training is a pure function of the seed
(``keras.utils.set_random_seed``, op determinism, and a stateless Philox permutation of the
training set per epoch), so the same seed gives bit-identical weights on the same machine.

Datasets (every labelled image dataset of ``tfsmooth.data.DATASETS``, and those whose entry names
another's classifier):

  ``mnist``          digits, 2 epochs by default.
  ``fashion_mnist``  3 epochs by default.
  ``stacked_mnist``  no model of its own: each of the R, G, B channels is an MNIST digit, so it
                     uses the ``mnist`` classifier channel by channel. Its features are the three
                     per-channel feature vectors concatenated (R, G, B: 3 x 128 = 384 values per
                     image) and its prediction is the mode ``100 d_R + 10 d_G + d_B``, the
                     label of ``tfsmooth.data``'s stacked MNIST.
  ``tfds:cifar10``   (any prepared ``tfds:`` image dataset with labels) 10 epochs by default;
                     needs the TFDS data already prepared (``tfsmooth.data`` never downloads).

The cache (``--classifier_cache``, else ``$TFSMOOTH_CACHE``, else
``~/.cache/tfsmooth/classifiers``) holds one directory per classifier::

    <cache_dir>/<dataset>_seed<seed>/classifier.keras   the Keras model
    <cache_dir>/<dataset>_seed<seed>/info.json          dataset, seed, test accuracy, example
                                                        counts, epochs, training time, versions

(``tfds:cifar10`` is written ``tfds_cifar10``). A directory is written under a temporary name and
renamed when complete, so a cache never holds half a classifier.
"""

import dataclasses
import datetime
import functools
import json
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from tfsmooth import compat
from tfsmooth import data
from tfsmooth import provenance
from tfsmooth.errors import UserError

# Default epochs per dataset: few, but clearing the accuracy targets (MNIST >= 98%, Fashion-MNIST
# >= 88%) with a margin. Measured for seeds 0, 1, 2 on the 2-core development machine: MNIST
# 98.78 / 98.63 / 98.65%, Fashion-MNIST 89.89 / 89.89 / 89.96% (test splits), 25-65 s each.
DEFAULT_EPOCHS = {"mnist": 2, "fashion_mnist": 3}
DEFAULT_TFDS_EPOCHS = 10  # not measured here: no TFDS data is prepared on this machine

BATCH_SIZE = 128
LEARNING_RATE = 1e-3
FEATURE_LAYER = "features"
FEATURE_BATCH = 256  # images per inference call (the last batch is padded to this size)
MODEL_FILE = "classifier.keras"
INFO_FILE = "info.json"
CACHE_ENV = "TFSMOOTH_CACHE"


class ClassifierUnavailableError(UserError, ValueError):
  """No cached classifier for a dataset and seed; the one-line message says how to build it."""


class NoClassifierError(UserError, ValueError):
  """A dataset that has no classifier (the synthetic sets, unknown names)."""


# ---------------------------------------------------------------------------------------------
# Names and paths


def model_dataset(dataset: str) -> str:
  """The dataset whose classifier ``dataset`` uses: its own where it has labels, another's
  where its registry entry names one (``stacked_mnist`` -> ``mnist``).

  Raises:
    NoClassifierError: ``dataset`` has no classifier (the synthetic sets, unlabelled images,
      unknown names).
  """
  try:
    spec = data.spec(dataset)
  except ValueError:
    spec = None
  if spec and spec.classifier:
    return spec.classifier
  if spec and spec.labelled:
    return dataset
  raise NoClassifierError(
      f"no classifier for dataset '{dataset}': FID's offline features come from a classifier "
      f"trained on labelled images ({', '.join(n for n, s in data.DATASETS.items() if s.labelled)}"
      f" and datasets named by them); give --features=inception --inception_module=DIR, or "
      "--eval_at_end=false")


def default_epochs(dataset: str) -> int:
  return DEFAULT_EPOCHS.get(model_dataset(dataset), DEFAULT_TFDS_EPOCHS)


def default_cache_dir() -> str:
  """``$TFSMOOTH_CACHE`` if set, else ``~/.cache/tfsmooth/classifiers``."""
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache",
                                                   "tfsmooth", "classifiers")


def classifier_dir(dataset: str, seed: int = 0, cache_dir: str | None = None) -> str:
  """``<cache_dir>/<dataset>_seed<seed>`` for the model ``dataset`` uses (``:`` and ``/`` of
  TFDS names become ``_``)."""
  name = model_dataset(dataset).replace(":", "_").replace("/", "_")
  return os.path.join(cache_dir or default_cache_dir(), f"{name}_seed{int(seed)}")


def build_command(dataset: str, seed: int = 0, cache_dir: str | None = None) -> str:
  """The command line that trains and caches the classifier of ``dataset``."""
  command = (f"python -m tfsmooth.main --mode=train_classifier "
             f"--dataset={model_dataset(dataset)} --classifier_seed={int(seed)}")
  if cache_dir and os.path.abspath(cache_dir) != os.path.abspath(default_cache_dir()):
    command += f" --classifier_cache={cache_dir}"
  return command


# ---------------------------------------------------------------------------------------------
# The network and its data


def build_model(input_shape, num_classes: int = 10) -> keras.Model:
  """The classifier network (module docstring); weights from Keras's global seed."""
  layers = keras.layers
  inputs = keras.Input(tuple(input_shape), name="images")
  x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inputs)
  x = layers.MaxPooling2D(name="pool1")(x)
  x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(x)
  x = layers.MaxPooling2D(name="pool2")(x)
  x = layers.Flatten(name="flatten")(x)
  features = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
  logits = layers.Dense(num_classes, name="logits")(features)
  return keras.Model(inputs, logits, name="tfsmooth_classifier")


def _load_split(dataset: str, split: str, data_dir: str | None):
  """uint8 NHWC images, int64 labels and the number of classes of one split."""
  try:
    return data.load_labelled(dataset, split,
                              **data.provider_options(dataset, data_dir=data_dir or ""))
  except data.UnknownDatasetError:
    raise NoClassifierError(f"dataset '{dataset}' has no class labels to train a classifier "
                            "on") from None


def _epoch_batches(images, labels, seed: int, epoch: int, batch_size: int) -> tf.data.Dataset:
  """One epoch in a random order that is a pure function of ``(seed, epoch)`` (stateless
  Philox, as tfsmooth.data): float32 images in [-1, 1] and int64 labels."""
  scores = tf.random.stateless_uniform([int(images.shape[0])], [seed, epoch], dtype=tf.float64,
                                       alg="philox")
  order = tf.argsort(scores, stable=True)
  return (tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
          .map(lambda index: (data.to_float_image(tf.gather(images, index)),
                              tf.gather(labels, index)))
          .prefetch(2)
          .with_options(data.pipeline_options()))


# ---------------------------------------------------------------------------------------------
# Training


@dataclasses.dataclass(frozen=True)
class ClassifierInfo:
  """What ``train_classifier`` did (also written to ``info.json``, without ``path``)."""

  dataset: str  # the model's dataset: "mnist" for stacked_mnist
  seed: int
  test_accuracy: float
  num_train_examples: int
  num_test_examples: int
  epochs: int
  train_seconds: float
  path: str  # the classifier's cache directory

  def __str__(self):
    return (f"{self.dataset} classifier (seed {self.seed}): test accuracy "
            f"{self.test_accuracy:.4f} on {self.num_test_examples:,} examples after "
            f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} on "
            f"{self.num_train_examples:,} ({self.train_seconds:.1f} s of training); cached in "
            f"{self.path}")


def _save(model: keras.Model, info: dict, directory: str) -> None:
  """Writes the model and info.json under a temporary name, then renames it into place."""
  parent = os.path.dirname(os.path.abspath(directory))
  os.makedirs(parent, exist_ok=True)
  temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(directory)}.", dir=parent)
  try:
    os.chmod(temporary, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
    model.save(os.path.join(temporary, MODEL_FILE))
    with open(os.path.join(temporary, INFO_FILE), "w", encoding="utf-8") as f:
      json.dump(info, f, indent=2, sort_keys=True)
    if os.path.isdir(directory):  # retraining replaces the old classifier
      shutil.rmtree(directory)
    os.rename(temporary, directory)
  except BaseException:
    shutil.rmtree(temporary, ignore_errors=True)
    raise


def _positive_or_none(value, what: str):
  if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
    raise ValueError(f"{what} must be a positive integer, got {value!r}")
  return None if value is None else int(value)


def train_classifier(dataset: str, seed: int = 0, cache_dir: str | None = None,
                     epochs: int | None = None, data_dir: str | None = None, verbose: int = 0,
                     max_train_examples: int | None = None,
                     max_test_examples: int | None = None) -> ClassifierInfo:
  """Trains the classifier of ``dataset`` with ``seed``, evaluates it and caches it.

  Args:
    dataset: a labelled image dataset (``stacked_mnist`` trains the ``mnist`` model).
    seed: weights and data order; the same seed gives bit-identical weights.
    cache_dir: the cache (default ``default_cache_dir()``); an existing classifier of the same
      dataset and seed there is replaced.
    epochs: passes over the training set (default ``default_epochs(dataset)``).
    data_dir: where the dataset lives, as in ``tfsmooth.data.get_provider``.
    verbose: 1 prints one line per epoch (stderr); ``str()`` of the result is the summary.
    max_train_examples, max_test_examples: use only the first N examples of the train/test
      split (for tests; the defaults use everything).

  Returns:
    The ``ClassifierInfo``; the same numbers are in ``<path>/info.json``.

  Raises:
    ValueError: no classifier for ``dataset``, bad arguments; ``data.DatasetUnavailableError``
      (a ValueError) if the dataset is not on this machine.
  """
  name = model_dataset(dataset)
  epochs = _positive_or_none(epochs, "epochs") or default_epochs(name)
  max_train = _positive_or_none(max_train_examples, "max_train_examples")
  max_test = _positive_or_none(max_test_examples, "max_test_examples")
  train_images, train_labels, num_classes = _load_split(name, "train", data_dir)
  test_images, test_labels, _ = _load_split(name, "test", data_dir)
  train_images, train_labels = train_images[:max_train], train_labels[:max_train]
  test_images, test_labels = test_images[:max_test], test_labels[:max_test]

  keras.utils.set_random_seed(int(seed))
  tf.config.experimental.enable_op_determinism()
  model = build_model(train_images.shape[1:], num_classes)
  steps = epochs * math.ceil(len(train_images) / BATCH_SIZE)
  # Decaying the step size to 0 lands the short run in a minimum instead of wherever the last
  # noisy Adam step left it: it makes the accuracy of the final weights far less seed-dependent.
  schedule = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, decay_steps=steps)
  model.compile(optimizer=keras.optimizers.Adam(schedule),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  with tf.device("/cpu:0"):  # tf.data runs there; a GPU copy would be made per batch anyway
    images = tf.constant(train_images)
    labels = tf.constant(train_labels.astype(np.int64))
  start = time.perf_counter()
  for epoch in range(epochs):
    history = model.fit(_epoch_batches(images, labels, int(seed), epoch, BATCH_SIZE),
                        shuffle=False, verbose=0)
    if verbose:
      compat.progress(f"{name} classifier epoch {epoch + 1}/{epochs}: loss "
                       f"{history.history['loss'][-1]:.4f}, train accuracy "
                       f"{history.history['accuracy'][-1]:.4f}")
  train_seconds = time.perf_counter() - start

  classifier = Classifier(model, {"dataset": name, "seed": int(seed)})
  accuracy = float(np.mean(classifier.predict(data.UINT8_TO_FLOAT[test_images]) == test_labels))
  directory = classifier_dir(name, seed, cache_dir)
  info = ClassifierInfo(dataset=name, seed=int(seed), test_accuracy=accuracy,
                        num_train_examples=len(train_images), num_test_examples=len(test_images),
                        epochs=epochs, train_seconds=round(train_seconds, 2), path=directory)
  record = {key: value for key, value in dataclasses.asdict(info).items() if key != "path"}
  record.update(
      num_classes=int(num_classes), input_shape=list(train_images.shape[1:]),
      feature_layer=FEATURE_LAYER, feature_dim=classifier.feature_dim, batch_size=BATCH_SIZE,
      learning_rate=LEARNING_RATE, learning_rate_schedule="cosine decay to 0",
      model_file=MODEL_FILE,
      created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
      **provenance.versions())
  _save(model, record, directory)
  return info



# ---------------------------------------------------------------------------------------------
# Using a classifier


class Classifier:
  """A trained classifier: penultimate features and predicted labels of images in [-1, 1].

  Inference runs in fixed batches of ``FEATURE_BATCH`` (the last one zero-padded), so an image's
  features do not depend on how many images are passed with it. With ``per_channel=True``
  (stacked MNIST) each channel of a C-channel image is classified by the one-channel model:
  ``features`` concatenates the C feature vectors (channel order) and ``predict`` gives
  ``sum_c d_c * num_classes**(C - 1 - c)``, i.e. ``100 d_R + 10 d_G + d_B`` for stacked MNIST.

  Attributes:
    model: the Keras model (images -> logits).
    info: the classifier's info.json as a dict.
    input_shape: the image shape ``features`` and ``predict`` accept.
    feature_dim: length of one image's feature vector.
    num_classes: number of labels ``predict`` can return.
  """

  def __init__(self, model: keras.Model, info: dict, per_channel: bool = False,
               channels: int = 3):
    self.model = model
    self.info = dict(info)
    self.per_channel = per_channel
    model_shape = tuple(int(d) for d in model.input_shape[1:])
    if per_channel and model_shape[-1] != 1:
      raise ValueError(f"per-channel classification needs a one-channel model, got {model_shape}")
    self._model_shape = model_shape
    self.input_shape = model_shape[:-1] + (channels,) if per_channel else model_shape
    both = keras.Model(model.inputs, [model.get_layer(FEATURE_LAYER).output, model.outputs[0]])
    self._model_feature_dim = int(both.outputs[0].shape[-1])
    self._model_classes = int(both.outputs[1].shape[-1])
    copies = channels if per_channel else 1
    self.feature_dim = self._model_feature_dim * copies
    self.num_classes = self._model_classes ** copies
    # One fixed input shape: a single trace. A partial (not a lambda) also keeps TensorFlow's
    # retracing detector, which groups functions by code object, from counting every
    # Classifier's trace as a retrace of one function.
    self._outputs = tf.function(
        functools.partial(both, training=False),
        input_signature=[tf.TensorSpec((FEATURE_BATCH,) + model_shape, tf.float32)])

  def __repr__(self):
    return (f"Classifier(dataset={self.info.get('dataset')!r}, seed={self.info.get('seed')}, "
            f"input_shape={self.input_shape}, per_channel={self.per_channel})")

  def _check(self, images) -> np.ndarray:
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
      raise ValueError(f"classifier: expected float images in [-1, 1], got {images.dtype} "
                       "(uint8 images are scaled with x / 127.5 - 1)")
    if images.ndim != 4 or tuple(images.shape[1:]) != self.input_shape:
      raise ValueError(f"classifier of '{self.info.get('dataset')}': expected images of shape "
                       f"(N, {', '.join(map(str, self.input_shape))}), got {images.shape}")
    images = images.astype(np.float32, copy=False)
    if self.per_channel:  # (N, H, W, C) -> (N * C, H, W, 1), channels of an image adjacent
      n, h, w, c = images.shape
      images = images.transpose(0, 3, 1, 2).reshape(n * c, h, w, 1)
    return images

  def _run(self, images: np.ndarray):
    """Model features and logits of model-shaped images, in padded fixed-size batches."""
    features, logits = [], []
    for start in range(0, len(images), FEATURE_BATCH):
      batch = images[start:start + FEATURE_BATCH]
      padded = np.zeros((FEATURE_BATCH,) + self._model_shape, np.float32)
      padded[:len(batch)] = batch
      batch_features, batch_logits = self._outputs(tf.constant(padded))
      features.append(batch_features.numpy()[:len(batch)])
      logits.append(batch_logits.numpy()[:len(batch)])
    if not features:
      return (np.zeros((0, self._model_feature_dim), np.float32),
              np.zeros((0, self._model_classes), np.float32))
    return np.concatenate(features), np.concatenate(logits)

  def features(self, images) -> np.ndarray:
    """Penultimate-layer activations, float32 ``(N, feature_dim)``."""
    images = self._check(images)
    features, _ = self._run(images)
    return features.reshape(-1, self.feature_dim)

  def predict(self, images) -> np.ndarray:
    """Predicted labels, int64 ``(N,)`` (modes for per-channel classifiers)."""
    images = self._check(images)
    _, logits = self._run(images)
    labels = np.argmax(logits, axis=-1).astype(np.int64)
    if not self.per_channel:
      return labels
    digits = labels.reshape(-1, self.input_shape[-1])
    weights = self._model_classes ** np.arange(digits.shape[1] - 1, -1, -1, dtype=np.int64)
    return digits @ weights


def load_classifier(dataset: str, seed: int = 0, cache_dir: str | None = None,
                    train_if_missing: bool = False, data_dir: str | None = None,
                    verbose: int = 0) -> Classifier:
  """The cached classifier of ``dataset`` and ``seed`` (``stacked_mnist``: the ``mnist`` model
  applied per channel).

  Args:
    dataset: a labelled image dataset, or one whose registry entry names another's classifier
      (``stacked_mnist``).
    seed: the classifier's training seed.
    cache_dir: the cache (default ``default_cache_dir()``: ``$TFSMOOTH_CACHE`` or
      ``~/.cache/tfsmooth/classifiers``).
    train_if_missing: train and cache it (``train_classifier``) if it is not cached.
    data_dir: where the dataset lives, as in ``tfsmooth.data.get_provider``; used only to train.
    verbose: 1 prints one line per training epoch (stderr); used only to train.

  Returns:
    The ``Classifier``: features and predicted labels of images in [-1, 1].

  Raises:
    ClassifierUnavailableError: not cached and ``train_if_missing`` is False (the message is one
      line with the command that builds it).
    ValueError: no classifier for ``dataset``; a cached classifier of another dataset or seed.
  """
  name = model_dataset(dataset)
  directory = classifier_dir(name, seed, cache_dir)
  info_path, model_path = (os.path.join(directory, f) for f in (INFO_FILE, MODEL_FILE))
  if not (os.path.isfile(info_path) and os.path.isfile(model_path)):
    if not train_if_missing:
      used_by = f" (used by {dataset})" if dataset != name else ""
      command = build_command(name, seed, cache_dir)
      raise ClassifierUnavailableError(
          f"no {name} classifier{used_by} with seed {int(seed)} in "
          f"{cache_dir or default_cache_dir()}: build it with `{command}`")
    train_classifier(name, seed, cache_dir, data_dir=data_dir, verbose=verbose)
  with open(info_path, encoding="utf-8") as f:
    info = json.load(f)
  if info.get("dataset") != name or info.get("seed") != int(seed):
    raise ClassifierUnavailableError(
        f"{directory}: holds the classifier of dataset '{info.get('dataset')}' seed "
        f"{info.get('seed')}, not '{name}' seed {int(seed)}")
  model = keras.models.load_model(model_path, compile=False)
  if name != dataset:  # another dataset's classifier, channel by channel (stacked MNIST)
    return Classifier(model, info, per_channel=True, channels=data.dataset_shape(dataset)[-1])
  return Classifier(model, info)


# ---------------------------------------------------------------------------------------------
# Stacked MNIST


def stacked_mnist_modes(images, classifier: Classifier) -> np.ndarray:
  """Mode ids ``100 d_R + 10 d_G + d_B`` of stacked-MNIST images ``(N, 28, 28, 3)`` in [-1, 1]:
  each channel classified by the MNIST ``classifier`` (as from ``load_classifier("mnist")``
  or ``load_classifier("stacked_mnist")``)."""
  if classifier.info.get("dataset") != "mnist":
    raise ValueError(f"stacked_mnist_modes needs the mnist classifier, got the "
                     f"{classifier.info.get('dataset')} one")
  if not classifier.per_channel:
    classifier = Classifier(classifier.model, classifier.info, per_channel=True, channels=3)
  return classifier.predict(images)
