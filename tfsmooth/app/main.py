"""``python -m tfsmooth.main --mode=... [--flagfile=runs/NAME.flags]``: parse flags, run a job.

The flags live in ``tfsmooth.app.flags`` and import no TensorFlow, so a bad flag is refused with one
line naming it in well under a second; the job modules (and TensorFlow) load only afterwards.
"""

import sys

from absl import app
from absl import logging

from tfsmooth import compat
from tfsmooth import losses
from tfsmooth.app import config as tfs_config
from tfsmooth.app import console
from tfsmooth.app import flags as tfs_flags
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.errors import UserError


def _fail(message: str, status: int):
  print(f"tfsmooth: error: {message}", file=sys.stderr)
  sys.exit(status)


# The jobs, one per --mode. Each imports its modules (and TensorFlow) only when it runs, after the
# flags were validated.
# pylint: disable=g-import-not-at-top


def run_constants():
  from tfsmooth.app import report
  flags = tfs_flags.FLAGS
  result = report.run_constants(tfs_flags.constants_config())
  print(report.format_constants(result))
  if flags.output_json:
    report.write_json(result, flags.output_json)
    print(f"wrote {flags.output_json}")


def run_train():
  from tfsmooth.app import train
  manifest = train.train(tfs_flags.train_config())
  if "metrics" in manifest:
    print(_metrics_line(manifest["metrics"]))


def run_eval():
  from tfsmooth.app import evaluate
  flags = tfs_flags.FLAGS
  result = evaluate.evaluate_run(flags.run_dir, tfs_flags.eval_config())
  print(_metrics_line(result))
  print(f"wrote {RunDirectory(flags.run_dir).metrics_path}")


def run_train_classifier():
  from tfsmooth import classifier
  flags = tfs_flags.FLAGS
  classifier.model_dataset(flags.dataset)  # a dataset without a classifier: one line
  print(classifier.train_classifier(flags.dataset, seed=flags.classifier_seed,
                                    cache_dir=flags.classifier_cache or None,
                                    data_dir=flags.data_dir or None, verbose=1))


def run_nk_toy():
  from tfsmooth.app import nk_toy
  flags = tfs_flags.FLAGS
  game = tfs_flags.toy_config().game
  if game == "dirac":  # the penalty, with its hyperparameters from the flags
    penalty = losses.get_penalty(flags.penalty,
                                 **tfs_config.settings(tfs_flags.train_config().gan))
    nk_toy.run(flags.run_dir, flags.loss, flags.eta, game=game, penalty=flags.penalty,
               **losses.hyperparameters(penalty))
  else:
    nk_toy.run(flags.run_dir, flags.loss, flags.eta)
  print(f"wrote {flags.run_dir}")


def run_sweep():
  from tfsmooth import experiments
  print(experiments.run(tfs_flags.sweep_config()))


def run_spectrum():
  from tfsmooth.app import spectrum_mode
  result = spectrum_mode.run(tfs_flags.spectrum_config())
  print(spectrum_mode.summary_line(result))


# pylint: enable=g-import-not-at-top
JOBS = {"constants": run_constants, "train": run_train, "eval": run_eval,
        "train_classifier": run_train_classifier, "nk_toy": run_nk_toy, "sweep": run_sweep,
        "spectrum": run_spectrum}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # TF's savers log every file at INFO and TFDS warns about what it cannot find before our own
  # one-line error says so; the user's messages come from tfsmooth (TFSMOOTH_TF_LOGS=1: all).
  if not compat.SHOW_TF_LOGS:
    logging.set_verbosity(logging.ERROR)
  # TensorFlow starts with its start-up lines filtered (tfsmooth.compat, imported by the flags,
  # set its environment); each job imports its modules afterwards.
  compat.start_tensorflow()
  try:
    JOBS[tfs_flags.FLAGS.mode]()
  except UserError as error:  # expected: one line; anything else is a bug and keeps its traceback
    _fail(str(error), error.exit_status)


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
  """``python -m tfsmooth.main`` and the ``tfsmooth`` command (setup.py's console script)."""
  # absl's --helpshort lists the key flags of the program sys.argv[0] names; as a console script
  # that is the `tfsmooth` script, not this module.
  for flag in tfs_flags.FLAGS.get_flags_for_module(tfs_flags):
    tfs_flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(main, flags_parser=console.one_line_flags_parser("tfsmooth"))


if __name__ == "__main__":
  run()
