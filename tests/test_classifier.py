"""tfsmooth.classifier: deterministic training, the cache, stacked-MNIST modes, the TFDS path.

The default tests train on subsets of MNIST (seconds each); the accuracy targets on the full
datasets are slow tests. Nothing touches the network: the TFDS path runs on
``tfds.testing.mock_data``.
"""

import json
import os

import numpy as np
import pytest

from tfsmooth import classifier
from tfsmooth import data

# One epoch on 1,024 examples: enough to exercise training, far too little to be accurate.
TINY = {"epochs": 1, "max_train_examples": 1024, "max_test_examples": 256}
COMMAND = "python -m tfsmooth.main --mode=train_classifier"


def _require(name):
  """Skips the test if dataset ``name`` is not installed here."""
  try:
    data.check_available(name)
  except data.DatasetUnavailableError as e:
    pytest.skip(f"dataset not installed here: {e}")


def _scaled(images_uint8):
  """uint8 images -> float32 in [-1, 1], as tfsmooth.data scales them."""
  return (images_uint8 / 127.5 - 1.0).astype(np.float32)


def _assert_same_weights(a, b):
  for x, y in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
    np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def mnist_test():
  _require("mnist")
  images, labels = data.load_mnist("test")
  return _scaled(images[:600]), labels[:600]


@pytest.fixture(scope="module")
def mnist_cache(tmp_path_factory):
  """A usable MNIST classifier (one epoch on 20,000 examples: 94%, ~7 s) in a temporary cache."""
  _require("mnist")
  cache = str(tmp_path_factory.mktemp("classifiers"))
  info = classifier.train_classifier("mnist", seed=0, cache_dir=cache, epochs=1,
                                     max_train_examples=20000, max_test_examples=2000)
  return cache, info


# --------------------------------------------------------------------------------------------
# Determinism


def test_training_is_a_pure_function_of_the_seed(tmp_path, mnist_test):
  caches = {name: str(tmp_path / name) for name in ("first", "again", "other")}
  for name, seed in (("first", 0), ("again", 0), ("other", 1)):
    classifier.train_classifier("mnist", seed=seed, cache_dir=caches[name], **TINY)
  first = classifier.load_classifier("mnist", 0, caches["first"])
  again = classifier.load_classifier("mnist", 0, caches["again"])
  other = classifier.load_classifier("mnist", 1, caches["other"])
  _assert_same_weights(first, again)
  images, _ = mnist_test
  np.testing.assert_array_equal(first.features(images), again.features(images))
  assert first.info["test_accuracy"] == again.info["test_accuracy"]
  assert not np.array_equal(first.model.get_weights()[0], other.model.get_weights()[0])
  assert not np.array_equal(first.features(images), other.features(images))


def test_features_of_an_image_do_not_depend_on_its_batch(mnist_cache, mnist_test):
  model = classifier.load_classifier("mnist", 0, mnist_cache[0])
  images, _ = mnist_test  # 600 images: two full inference batches and a padded one
  features = model.features(images)
  assert features.shape == (600, 128) and features.dtype == np.float32
  assert np.all(np.isfinite(features)) and np.any(features > 0)
  np.testing.assert_array_equal(model.features(images[517:520]), features[517:520])
  np.testing.assert_array_equal(model.features(images[:1]), features[:1])
  assert model.features(images[:0]).shape == (0, 128)
  assert model.predict(images[:0]).shape == (0,)


# --------------------------------------------------------------------------------------------
# The cache


def test_cached_classifier_reproduces_the_trained_one(mnist_cache):
  cache, info = mnist_cache
  assert info.path == os.path.join(cache, "mnist_seed0") and info.dataset == "mnist"
  assert sorted(os.listdir(cache)) == ["mnist_seed0"]  # no temporary directory left behind
  model = classifier.load_classifier("mnist", 0, cache)
  # The accuracy measured on the in-memory model before saving, recomputed on the loaded one.
  images, labels = data.load_mnist("test")
  accuracy = np.mean(model.predict(_scaled(images[:2000])) == labels[:2000])
  assert accuracy == info.test_accuracy
  reloaded = classifier.load_classifier("mnist", 0, cache)
  np.testing.assert_array_equal(reloaded.features(_scaled(images[:300])),
                                model.features(_scaled(images[:300])))


def test_info_json_records_the_run(mnist_cache):
  cache, info = mnist_cache
  with open(os.path.join(cache, "mnist_seed0", "info.json"), encoding="utf-8") as f:
    record = json.load(f)
  assert record["dataset"] == "mnist" and record["seed"] == 0 and record["epochs"] == 1
  assert record["num_train_examples"] == 20000 and record["num_test_examples"] == 2000
  assert record["test_accuracy"] == info.test_accuracy > 0.9
  assert 0 < record["train_seconds"] == info.train_seconds
  assert record["feature_dim"] == 128 and record["input_shape"] == [28, 28, 1]
  for key in ("tfsmooth_version", "tfsmooth_commit", "tensorflow", "keras", "created"):
    assert record[key]
  assert classifier.load_classifier("mnist", 0, cache).info == record
  assert "test accuracy" in str(info) and info.path in str(info)


@pytest.mark.parametrize("dataset, model", [("mnist", "mnist"), ("fashion_mnist", "fashion_mnist"),
                                            ("stacked_mnist", "mnist"),
                                            ("tfds:cifar10", "tfds:cifar10")])
def test_missing_classifier_is_one_line_naming_the_command(tmp_path, dataset, model):
  with pytest.raises(classifier.ClassifierUnavailableError) as excinfo:
    classifier.load_classifier(dataset, seed=5, cache_dir=str(tmp_path))
  message = str(excinfo.value)
  assert isinstance(excinfo.value, ValueError) and "\n" not in message
  assert (f"{COMMAND} --dataset={model} --classifier_seed=5 --classifier_cache={tmp_path}"
          in message)


def test_missing_classifier_in_the_default_cache_names_no_cache_flag(tmp_path, monkeypatch):
  monkeypatch.setenv(classifier.CACHE_ENV, str(tmp_path))
  assert classifier.default_cache_dir() == str(tmp_path)
  with pytest.raises(classifier.ClassifierUnavailableError, match=r"classifier_seed=2`$"):
    classifier.load_classifier("mnist", seed=2)


def test_train_if_missing_trains_and_caches(tmp_path, monkeypatch):
  _require("mnist")
  calls = []
  real_train = classifier.train_classifier

  def small_train(dataset, seed, cache_dir, **options):  # the default epochs take minutes
    calls.append((dataset, seed, cache_dir))
    return real_train(dataset, seed, cache_dir, **{**options, **TINY})

  monkeypatch.setattr(classifier, "train_classifier", small_train)
  model = classifier.load_classifier("stacked_mnist", 3, str(tmp_path), train_if_missing=True)
  assert calls == [("mnist", 3, str(tmp_path))]
  assert model.per_channel and model.info["seed"] == 3
  classifier.load_classifier("mnist", 3, str(tmp_path), train_if_missing=True)
  assert len(calls) == 1  # cached now


def test_datasets_without_a_classifier_are_refused(tmp_path):
  for name in ("mog_ring", "uniform1d", "cifar10", "tfds:"):
    with pytest.raises(ValueError, match="no classifier for dataset") as excinfo:
      classifier.load_classifier(name, cache_dir=str(tmp_path))
    assert not isinstance(excinfo.value, classifier.ClassifierUnavailableError)
  with pytest.raises(ValueError, match="no classifier for dataset"):
    classifier.train_classifier("mog_grid", cache_dir=str(tmp_path))


def test_bad_images_are_refused(mnist_cache, mnist_test):
  model = classifier.load_classifier("mnist", 0, mnist_cache[0])
  images, _ = mnist_test
  with pytest.raises(ValueError, match="float images"):
    model.features(np.zeros((2, 28, 28, 1), np.uint8))
  with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\)"):
    model.predict(np.concatenate([images[:2]] * 3, axis=-1))


# --------------------------------------------------------------------------------------------
# Stacked MNIST


def _digits_with_labels(images, labels, wanted):
  """The first test image of each wanted label, in order."""
  return images[[int(np.flatnonzero(labels == d)[0]) for d in wanted]]


def test_stacked_mnist_modes_classify_each_channel(mnist_cache, mnist_test):
  cache, _ = mnist_cache
  digits = classifier.load_classifier("mnist", 0, cache)
  images, labels = mnist_test
  red, green, blue = images[:200], images[200:400], images[400:600]
  stacked = np.concatenate([red, green, blue], axis=-1)
  modes = classifier.stacked_mnist_modes(stacked, digits)
  expected = 100 * digits.predict(red) + 10 * digits.predict(green) + digits.predict(blue)
  np.testing.assert_array_equal(modes, expected)
  # Where every channel is classified right, the mode is the true one.
  true_modes = 100 * labels[:200] + 10 * labels[200:400] + labels[400:600]
  right = ((digits.predict(red) == labels[:200]) & (digits.predict(green) == labels[200:400]) &
           (digits.predict(blue) == labels[400:600]))
  assert right.mean() > 0.75
  np.testing.assert_array_equal(modes[right], true_modes[right])
  # The stacked_mnist classifier is the same model applied per channel.
  stacked_model = classifier.load_classifier("stacked_mnist", 0, cache)
  assert stacked_model.input_shape == (28, 28, 3) and stacked_model.num_classes == 1000
  np.testing.assert_array_equal(stacked_model.predict(stacked), modes)
  np.testing.assert_array_equal(classifier.stacked_mnist_modes(stacked, stacked_model), modes)
  # Its features are the three per-channel feature vectors, R then G then B.
  features = stacked_model.features(stacked[:50])
  assert features.shape == (50, 3 * 128)
  np.testing.assert_array_equal(
      features, np.concatenate([digits.features(c[:50]) for c in (red, green, blue)], axis=1))


def test_stacked_mnist_modes_of_known_digits(mnist_cache):
  """Digits the classifier gets right, stacked as (3, 1, 4), (0, 0, 9) and (9, 8, 7)."""
  digits = classifier.load_classifier("mnist", 0, mnist_cache[0])
  images, labels = data.load_mnist("test")
  images = _scaled(images[:1000])
  correct = digits.predict(images) == labels[:1000]
  images, labels = images[correct], labels[:1000][correct]
  triples = [(3, 1, 4), (0, 0, 9), (9, 8, 7)]
  channels = [_digits_with_labels(images, labels, [t[c] for t in triples]) for c in range(3)]
  modes = classifier.stacked_mnist_modes(np.concatenate(channels, axis=-1), digits)
  np.testing.assert_array_equal(modes, [314, 9, 987])


def test_stacked_mnist_modes_match_the_data_labels(mnist_cache):
  """On tfsmooth.data's own stacked MNIST the modes are its labels (up to classifier errors)."""
  digits = classifier.load_classifier("mnist", 0, mnist_cache[0])
  images, labels = data.get_provider("stacked_mnist", split="test").sample_with_labels(300)
  modes = classifier.stacked_mnist_modes(images, digits)
  assert modes.dtype == np.int64 and modes.min() >= 0 and modes.max() < 1000
  assert np.mean(modes == labels) > 0.75


def test_stacked_mnist_modes_need_the_mnist_classifier(tmp_path):
  _require("fashion_mnist")
  classifier.train_classifier("fashion_mnist", seed=0, cache_dir=str(tmp_path), epochs=1,
                              max_train_examples=256, max_test_examples=64)
  fashion = classifier.load_classifier("fashion_mnist", 0, str(tmp_path))
  with pytest.raises(ValueError, match="needs the mnist classifier"):
    classifier.stacked_mnist_modes(np.zeros((1, 28, 28, 3), np.float32), fashion)


# --------------------------------------------------------------------------------------------
# TFDS (plumbing only: mock data, no accuracy)


def test_tfds_cifar10_on_mock_data(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=96):
    info = classifier.train_classifier("tfds:cifar10", seed=0, cache_dir=str(tmp_path),
                                       epochs=1)
  assert info.dataset == "tfds:cifar10" and info.num_train_examples == 96
  assert info.path == os.path.join(str(tmp_path), "tfds_cifar10_seed0")
  model = classifier.load_classifier("tfds:cifar10", 0, str(tmp_path))
  assert model.input_shape == (32, 32, 3) and model.num_classes == 10
  images = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
  assert model.features(images).shape == (5, 128)
  labels = model.predict(images)
  assert labels.shape == (5,) and labels.min() >= 0 and labels.max() < 10


# --------------------------------------------------------------------------------------------
# Slow: the accuracy targets with the default settings


@pytest.fixture(scope="module")
def full_mnist(tmp_path_factory):
  _require("mnist")
  cache = str(tmp_path_factory.mktemp("full_mnist"))
  return cache, classifier.train_classifier("mnist", seed=0, cache_dir=cache)


@pytest.mark.slow
def test_mnist_classifier_is_accurate(full_mnist):
  _, info = full_mnist
  assert info.num_train_examples == 60000 and info.num_test_examples == 10000
  assert info.epochs == classifier.DEFAULT_EPOCHS["mnist"]
  assert info.test_accuracy >= 0.98


@pytest.mark.slow
def test_fashion_mnist_classifier_is_accurate(tmp_path):
  _require("fashion_mnist")
  info = classifier.train_classifier("fashion_mnist", seed=0, cache_dir=str(tmp_path))
  assert info.num_train_examples == 60000 and info.num_test_examples == 10000
  assert info.test_accuracy >= 0.88


@pytest.mark.slow
def test_full_retrain_is_bit_identical(full_mnist, tmp_path):
  cache, info = full_mnist
  again = classifier.train_classifier("mnist", seed=0, cache_dir=str(tmp_path))
  assert again.test_accuracy == info.test_accuracy
  _assert_same_weights(classifier.load_classifier("mnist", 0, cache),
                       classifier.load_classifier("mnist", 0, str(tmp_path)))


@pytest.mark.slow
def test_training_in_a_fresh_process_is_bit_identical(tmp_path, cli):
  """A cache built by another process (as `--mode=train_classifier` does) has the weights this
  process would train."""
  _require("mnist")
  script = ("import sys; from tfsmooth import compat, classifier; "
            f"classifier.train_classifier('mnist', seed=0, cache_dir=sys.argv[1], **{TINY!r})")
  assert cli.script(script, tmp_path / "other").returncode == 0
  classifier.train_classifier("mnist", seed=0, cache_dir=str(tmp_path / "here"), **TINY)
  _assert_same_weights(classifier.load_classifier("mnist", 0, str(tmp_path / "other")),
                       classifier.load_classifier("mnist", 0, str(tmp_path / "here")))


@pytest.mark.slow
def test_stacked_mnist_modes_with_the_full_classifier(full_mnist):
  digits = classifier.load_classifier("stacked_mnist", 0, full_mnist[0])
  images, labels = data.get_provider("stacked_mnist", split="test").sample_with_labels(5000)
  assert np.mean(classifier.stacked_mnist_modes(images, digits) == labels) >= 0.95
