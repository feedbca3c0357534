"""``python -m tfsmooth.main --mode=... [--flagfile=runs/NAME.flags]``: parse flags, run a job.

The flags live in ``tfsmooth.flags`` and import no TensorFlow, so a bad flag is refused with one
line naming it in well under a second; the job modules (and TensorFlow) load only afterwards.
"""

import sys

from absl import app
from absl import flags as absl_flags

from tfsmooth import flags as tfs_flags

absl_flags.adopt_module_key_flags(tfs_flags)  # --helpshort lists tfsmooth's flags


def parse_flags(argv):
  """absl's parser, with a flag error reported as a single line (absl adds a usage hint)."""
  try:
    return absl_flags.FLAGS(argv)
  except absl_flags.Error as error:
    print(f"tfsmooth: error: {error}", file=sys.stderr)
    sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  flags = tfs_flags.FLAGS
  # Imported here, after the flags are valid: this loads TensorFlow.
  from tfsmooth import compat  # pylint: disable=g-import-not-at-top,unused-import
  from tfsmooth import report  # pylint: disable=g-import-not-at-top
  if flags.mode == "constants":
    result = report.run_constants(tfs_flags.constants_config())
    print(report.format_constants(result))
    if flags.output_json:
      report.write_json(result, flags.output_json)
      print(f"wrote {flags.output_json}")


def run():
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
