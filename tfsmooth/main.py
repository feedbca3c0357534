"""``python -m tfsmooth.main --mode=... [--flagfile=runs/NAME.flags]``: parse flags, run a job.

The flags live in ``tfsmooth.flags`` and import no TensorFlow, so a bad flag is refused with one
line naming it in well under a second; the job modules (and TensorFlow) load only afterwards.
"""

import sys

from absl import app
from absl import flags as absl_flags
from absl import logging

from tfsmooth import console
from tfsmooth import flags as tfs_flags

absl_flags.adopt_module_key_flags(tfs_flags)  # --helpshort lists tfsmooth's flags


def _fail(message: str, status: int):
  print(f"tfsmooth: error: {message}", file=sys.stderr)
  sys.exit(status)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  flags = tfs_flags.FLAGS
  # TF's savers log every file at INFO and TFDS warns about what it cannot find before our own
  # one-line error says so; the user's messages come from tfsmooth.
  logging.set_verbosity(logging.ERROR)
  # Imported here, after the flags are valid: this loads TensorFlow.
  from tfsmooth import compat  # pylint: disable=g-import-not-at-top,unused-import
  if flags.mode == "constants":
    from tfsmooth import report  # pylint: disable=g-import-not-at-top
    result = report.run_constants(tfs_flags.constants_config())
    print(report.format_constants(result))
    if flags.output_json:
      report.write_json(result, flags.output_json)
      print(f"wrote {flags.output_json}")
  elif flags.mode == "train":
    from tfsmooth import data  # pylint: disable=g-import-not-at-top
    from tfsmooth import train  # pylint: disable=g-import-not-at-top
    config = tfs_flags.train_config()
    try:  # everything a user can get wrong, checked before any graph is built
      data.check_available(config.dataset, data_dir=config.data_dir or None)
      train.check_run_directory(config)
    except (ValueError, train.RunError) as error:  # DatasetUnavailableError is a ValueError
      _fail(str(error), 2)
    try:
      manifest = train.train(config)
    except train.RunError as error:
      _fail(str(error), 1)
    if "metrics" in manifest:
      print(_metrics_line(manifest["metrics"]))
  elif flags.mode == "eval":
    from tfsmooth import evaluate  # pylint: disable=g-import-not-at-top
    try:
      result = evaluate.evaluate_run(flags.run_dir, tfs_flags.eval_config())
    except (OSError, ValueError) as error:
      _fail(str(error), 2)
    print(_metrics_line(result))
    print(f"wrote {flags.run_dir}/metrics.json")
  elif flags.mode == "train_classifier":
    from tfsmooth import classifier  # pylint: disable=g-import-not-at-top
    try:
      classifier.model_dataset(flags.dataset)  # a dataset without a classifier: one line
      info = classifier.train_classifier(flags.dataset, seed=flags.classifier_seed,
                                         cache_dir=flags.classifier_cache or None,
                                         data_dir=flags.data_dir or None, verbose=1)
    except ValueError as error:
      _fail(str(error), 2)
    print(info)
  elif flags.mode == "nk_toy":
    from tfsmooth import nk_toy  # pylint: disable=g-import-not-at-top
    nk_toy.run(flags.run_dir)
    print(f"wrote streamlines_*.png, streamlines.png, eigenvalues.json and eigenvalues.md to "
          f"{flags.run_dir}")


def _metrics_line(result: dict) -> str:
  """One summary line of an evaluation."""
  if "fid_mean" in result:
    line = (f"FID {result['fid_mean']:.4g} +- {result['fid_std']:.2g}, KID "
            f"{result['kid_mean']:.4g} +- {result['kid_std']:.2g} ({result['features']}, "
            f"{result['num_samples']} samples x {result['repeats']})")
    if "stacked_mnist" in result:
      modes = result["stacked_mnist"]
      line += (f"; stacked MNIST: {modes['modes_covered']}/1000 modes, KL(q||uniform) "
               f"{modes['kl_generated_to_uniform']:.3g}")
    return line
  if "modes_covered_mean" in result:
    return (f"modes covered {result['modes_covered_mean']:.3g} of {result['num_modes']} (min "
            f"{result['modes_covered_min']}), high-quality samples "
            f"{100 * result['high_quality_fraction_mean']:.1f}% ({result['num_samples']} "
            f"samples x {result['repeats']})")
  return "no metrics apply to this dataset"


def run():
  app.run(main, flags_parser=console.one_line_flags_parser("tfsmooth"))


if __name__ == "__main__":
  run()
