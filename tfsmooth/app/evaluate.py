"""Evaluation of a generator: FID/KID on named features for image datasets (TF-GAN's functions),
mode coverage for mixtures of Gaussians, modes and KL for stacked MNIST.

``python -m tfsmooth.main --mode=eval --run_dir=DIR`` evaluates a finished run's exported
generator and writes ``DIR/metrics.json`` and TensorBoard scalars under ``DIR/eval``; training
runs call the same ``evaluate_generator`` at the end and every ``--eval_every`` steps.
"""

import dataclasses
import os

import numpy as np

from tfsmooth import classifier as tfs_classifier
from tfsmooth import data
from tfsmooth import metrics
from tfsmooth.app import rundir
from tfsmooth.app.config import EvalConfig
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.errors import UserError

MOG_SAMPLES = 2000  # the mode-coverage definition (docs/training.md) uses 2,000 samples
STACKED_MNIST_SAMPLES = 26000  # the usual stacked-MNIST protocol (Metz et al. 2017)


def _classifier(config: EvalConfig, dataset: str, options: dict):
  return tfs_classifier.load_classifier(
      dataset, seed=config.classifier_seed, cache_dir=config.classifier_cache or None,
      train_if_missing=config.train_classifier_if_missing, data_dir=options.get("data_dir"))


def feature_extractor(config: EvalConfig, dataset: str,
                      options: dict | None = None) -> metrics.FeatureExtractor:
  """The extractor ``config.features`` names; raises a one-line ``UserError`` if unavailable.
  ``options``: the dataset's options (``data.provider_options``)."""
  if config.features == "inception":
    return metrics.inception_extractor(config.inception_module)
  model = _classifier(config, dataset, options or {})
  return metrics.FeatureExtractor(f"classifier:{dataset}_seed{config.classifier_seed}",
                                  model.features)


def reference_provider(provider, dataset: str, options: dict | None = None):
  """The real samples generator samples are compared with: the test split where there is one
  (so the reference set is not the training data), the training provider otherwise."""
  if data.spec(dataset).test_split:
    return data.get_provider(dataset, **{**(options or {}), "split": "test"})
  return provider


def evaluate_generator(sample_fn, dataset: str, config: EvalConfig, options: dict | None = None,
                       extractor: metrics.FeatureExtractor | None = None) -> dict:
  """Every metric that applies to ``dataset`` for generator samples ``sample_fn(num, seed)``:
  mode coverage for a distribution of known modes, FID/KID for images, and stacked MNIST's
  mode count and KL. ``options``: the dataset's options (``data.provider_options``)."""
  options = options or {}
  provider = data.get_provider(dataset, **options)
  if not provider.is_image:
    coverages = [provider.mode_coverage(sample_fn(MOG_SAMPLES, seed))
                 for seed in range(config.repeats)]
    if coverages[0] is None:  # no known modes: no metric applies
      return {}
    modes = [c.modes_covered for c in coverages]
    quality = [c.high_quality_fraction for c in coverages]
    return {"num_samples": MOG_SAMPLES, "repeats": config.repeats,
            "modes_covered_mean": float(np.mean(modes)), "modes_covered_min": int(min(modes)),
            "modes_covered": modes, "high_quality_fraction_mean": float(np.mean(quality)),
            "high_quality_fraction": quality, "num_modes": coverages[0].num_modes}
  extractor = extractor or feature_extractor(config, dataset, options)
  reference = reference_provider(provider, dataset, options)
  num_samples = min(config.num_samples, reference.num_examples or config.num_samples)
  result = metrics.sample_quality(lambda num, seed: reference.sample(num, seed=seed), sample_fn,
                                  extractor, num_samples=num_samples, repeats=config.repeats)
  spec = data.spec(dataset)
  if spec.stacked_modes:
    digits = _classifier(config, spec.classifier, options)
    modes = tfs_classifier.stacked_mnist_modes(sample_fn(STACKED_MNIST_SAMPLES, 0), digits)
    result["stacked_mnist"] = metrics.stacked_mnist_mode_metrics(modes)
  return result


def scalars(result: dict) -> dict:
  """The numbers of ``result`` worth a TensorBoard scalar, with flat names."""
  names = ("fid_mean", "fid_std", "kid_mean", "kid_std", "modes_covered_mean",
           "high_quality_fraction_mean")
  flat = {name: result[name] for name in names if name in result}
  for name, value in result.get("stacked_mnist", {}).items():
    if isinstance(value, (int, float)) and np.isfinite(value):
      flat[f"stacked_mnist_{name}"] = value
  return flat


def evaluate_run(run_dir: str, config: EvalConfig,
                 extractor: metrics.FeatureExtractor | None = None) -> dict:
  """Evaluates the exported generator of the run in ``run_dir``; writes ``metrics.json`` and
  TensorBoard scalars (at the run's final step) under ``run_dir/eval``."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from tfsmooth.app import export  # pylint: disable=g-import-not-at-top
  run = RunDirectory(run_dir)
  manifest = run.read_manifest()
  if manifest.get("status") != "completed" or not os.path.isdir(run.generator_export):
    raise UserError(f"--run_dir={run_dir}: no exported generator (run status "
                    f"'{manifest.get('status')}'); finish or --resume the run first")
  run_config = manifest["config"]
  options = data.provider_options(run_config["dataset"], data_dir=run_config.get("data_dir", ""),
                                  image_shape=tuple(run_config.get("image_shape", ())))
  result = evaluate_generator(export.load_generator(run.generator_export), run_config["dataset"],
                              config, options, extractor)
  result["step"] = manifest.get("final_step")
  result["eval_config"] = dataclasses.asdict(config)
  rundir.write_json(run.metrics_path, result, sort_keys=False)
  writer = tf.summary.create_file_writer(run.eval_logs)
  with writer.as_default(step=int(result["step"] or 0)):
    for name, value in scalars(result).items():
      tf.summary.scalar(name, value)
  writer.flush()
  return result
