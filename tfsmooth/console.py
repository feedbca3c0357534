"""What the user sees on stderr: progress lines (stdout stays the job's result) and flag errors
as one line."""

import sys

from absl import flags


def progress(message: str) -> None:
  print(f"[tfsmooth] {message}", file=sys.stderr, flush=True)


def one_line_flags_parser(program: str):
  """An ``app.run`` ``flags_parser``: absl's parser, with a flag error reported as the single line
  ``PROGRAM: error: ...`` and exit status 2 (absl adds a usage hint on a second line)."""
  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as error:
      print(f"{program}: error: {error}", file=sys.stderr)
      sys.exit(2)
  return parse
