"""``python -m tfsmooth.app.compare_mog``: Nagarajan and Kolter's mixture-of-Gaussians comparison,
the ``nk_mog`` experiment (tfsmooth.experiments.nk_mog) under the flag names it has always had.

    python -m tfsmooth.app.compare_mog --schedule=short --seeds=0,1,2 --out_dir=out/nk_mog_short

is ``python -m tfsmooth.main --mode=sweep --experiment=nk_mog --nk_schedule=short
--sweep_seeds=0,1,2 --sweep_dir=out/nk_mog_short``.
"""

import sys

from absl import app
from absl import flags

from tfsmooth import compat
from tfsmooth.app import config as tfs_config
from tfsmooth.app import console
from tfsmooth.errors import UserError
from tfsmooth.experiments import nk_mog

FLAGS = flags.FLAGS


def _define_flags():
  # Defined only when run as a program: importing this module (tests) must not add flags that
  # tfsmooth.app.flags also defines (--parallel).
  defaults = tfs_config.SweepConfig()
  flags.DEFINE_enum("schedule", defaults.nk_schedule, tfs_config.NK_SCHEDULES,
                    "paper: the flagfiles as they are (100,001 steps each); short: 8,000 "
                    "simultaneous steps at lr 1e-3.")
  flags.DEFINE_list("seeds", [str(s) for s in defaults.sweep_seeds],
                    "Seeds: one run per method and seed.")
  flags.DEFINE_list("methods", list(defaults.nk_methods), "Flagfiles (in runs/) to compare.")
  flags.DEFINE_integer("parallel", defaults.parallel, "Runs trained at the same time.",
                       lower_bound=1)
  flags.DEFINE_string("out_dir", None, "Directory of the runs and the results.")
  flags.mark_flag_as_required("out_dir")


def config_from_flags() -> tfs_config.SweepConfig:
  """The parsed flags as the ``nk_mog`` sweep's config; a bad value exits with one line."""
  missing = nk_mog.missing_method(FLAGS.methods)
  if missing:
    sys.exit(f"compare_mog: error: flag --methods: no flagfile tfsmooth/runs/{missing}.flags")
  try:
    seeds = tuple(int(s) for s in FLAGS.seeds)
  except ValueError:
    sys.exit(f"compare_mog: error: flag --seeds={','.join(FLAGS.seeds)}: must be integers")
  return tfs_config.make(tfs_config.SweepConfig, experiment="nk_mog", sweep_dir=FLAGS.out_dir,
                         nk_schedule=FLAGS.schedule, nk_methods=tuple(FLAGS.methods),
                         sweep_seeds=seeds, parallel=FLAGS.parallel)


def main(argv):
  del argv
  config = config_from_flags()
  compat.start_tensorflow()
  from tfsmooth import experiments  # pylint: disable=g-import-not-at-top
  try:
    print(experiments.run(config))
  except UserError as error:  # expected: one line; anything else is a bug and keeps its traceback
    sys.exit(f"compare_mog: error: {error}")
  with open(f"{config.sweep_dir}/results.md", encoding="utf-8") as f:
    print(f.read(), end="")


if __name__ == "__main__":
  _define_flags()
  app.run(main, flags_parser=console.one_line_flags_parser("compare_mog"))
