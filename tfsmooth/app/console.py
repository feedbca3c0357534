"""Flagfiles (tfsmooth's shipped runs found by name) and flag errors as one line that names the
flagfile and line a bad flag came from. Progress lines and the filtering of TensorFlow's
start-up lines are the library's (``tfsmooth.compat.progress``, ``start_tensorflow``)."""

import os
import re
import sys

from absl import flags

_FLAGFILE = re.compile(r"^--?flagfile(?:=(.*))?$")
# The flag names in absl's error messages: "flag --NAME=...", "flags A=.., B=..: ...",
# "Unknown command line flag 'NAME'", "Missing value for flag --NAME".
_NAMED = re.compile(r"flag --(\w+)|command line flag '(\w+)'")
_NAMED_SEVERAL = re.compile(r"^flags ([^:]*):")


# The flagfiles of every documented run, shipped inside the package (tfsmooth/runs/*.flags).
RUNS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runs")
_SHIPPED_NAME = re.compile(r"^(?:runs/)?([\w.\-]+?)(?:\.flags)?$")


def shipped_flagfile(name: str) -> str | None:
  """The shipped flagfile ``name`` (``chu_default``, ``chu_default.flags`` or
  ``runs/chu_default.flags``), or None."""
  match = _SHIPPED_NAME.match(name)
  path = match and os.path.join(RUNS_DIR, match.group(1) + ".flags")
  return path if path and os.path.isfile(path) else None


def shipped_flagfiles() -> list[str]:
  """The names of the shipped flagfiles."""
  return sorted(f[:-len(".flags")] for f in os.listdir(RUNS_DIR) if f.endswith(".flags"))


def find_flagfile(path: str) -> str:
  """``path`` if it exists; else, for a name as ``shipped_flagfile`` takes it, the shipped
  flagfile, so ``--flagfile=runs/NAME.flags`` works from any directory and from an installed
  package."""
  if os.path.exists(path):
    return path
  return shipped_flagfile(path) or path


class FlagfileError(Exception):
  """A flagfile that cannot be used: missing, unreadable, not UTF-8, a line that is no flag."""


def expand_flagfiles(argv: list, _including: tuple = ()) -> tuple[list, list]:
  """``argv`` with each ``--flagfile=FILE`` replaced by FILE's flags, recursively, as absl reads
  them (blank lines and lines starting with ``#`` or ``//`` skipped), and, per argument, where
  it came from: ``"FILE:LINE"``, or None for the command line itself.

  Raises:
    FlagfileError: naming the file (and line) that cannot be used.
  """
  expanded, origins = [], []
  arguments = iter(argv)
  for argument in arguments:
    match = _FLAGFILE.match(argument)
    if argument == "--":  # the rest are not flags
      expanded += [argument, *arguments]
      origins += [None] * (len(expanded) - len(origins))
      break
    if not match:
      expanded.append(argument)
      origins.append(None)
      continue
    path = match.group(1) if match.group(1) is not None else next(arguments, "")
    if path in _including:
      raise FlagfileError(f"flag --flagfile={path}: includes itself "
                          f"({' -> '.join((*_including, path))})")
    for line, origin in _flagfile_lines(path):
      inner, inner_origins = expand_flagfiles([line], (*_including, path))
      expanded += inner
      origins += [o or origin for o in inner_origins]
  return expanded, origins


def _flagfile_lines(path: str):
  """``(flag, "FILE:LINE")`` for each flag line of the flagfile ``path``."""
  try:
    with open(find_flagfile(path), "rb") as f:
      raw = f.read()
  except FileNotFoundError:
    raise FlagfileError(f"flag --flagfile={path}: no such file (tfsmooth ships "
                        f"{', '.join(shipped_flagfiles())}; give one by name)") from None
  except IsADirectoryError:
    raise FlagfileError(f"flag --flagfile={path}: a directory, not a file") from None
  except OSError as error:
    raise FlagfileError(f"flag --flagfile={path}: cannot read it ({error.strerror})") from None
  try:
    text = raw.decode("utf-8")
  except UnicodeDecodeError as error:
    line = raw[:error.start].count(b"\n") + 1
    raise FlagfileError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[error.start]:02x}); a "
                        "flagfile holds one --name=value per line") from None
  for number, text_line in enumerate(text.splitlines(), 1):
    line = text_line.strip()
    if not line or line.startswith(("#", "//")):
      continue
    if not line.startswith("-"):
      raise FlagfileError(f"{path}:{number}: {line!r} is not a flag (a flagfile holds one "
                          "--name=value per line; # starts a comment)")
    yield line, f"{path}:{number}"


def _origins(message: str, argv: list, origins: list) -> list[str]:
  """Where the flags an absl error message names were set, for those set in a flagfile."""
  names = [a or b for a, b in _NAMED.findall(message)]
  several = _NAMED_SEVERAL.match(message)
  if several:
    names += [part.split("=", 1)[0].strip() for part in several.group(1).split(", ")]
  found = []
  for name in names:
    spellings = (f"--{name}", f"-{name}", f"--no{name}", f"-no{name}")
    settings = [(a, o) for a, o in zip(argv, origins) if a.split("=", 1)[0] in spellings]
    # The setting the message quotes (absl stops at a bad value even if a later one would win),
    # else the last one, which wins.
    quoted = [(a, o) for a, o in settings if f"flag {a}:" in message]
    origin = (quoted or settings or [(None, None)])[-1][1]
    if origin and origin not in found:
      found.append(origin)
  return found


def one_line_flags_parser(program: str):
  """An ``app.run`` ``flags_parser``: absl's parser, with flagfiles read by
  ``expand_flagfiles`` and a flag error reported as the single line ``PROGRAM: error: ...``
  (prefixed with ``FILE:LINE`` where the flag came from a flagfile), exit status 2."""
  def fail(message: str):
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(2)

  def parse(argv):
    try:
      expanded, origins = expand_flagfiles(argv)
    except FlagfileError as error:
      fail(str(error))
    try:
      return flags.FLAGS(expanded)
    except flags.Error as error:
      where = _origins(str(error), expanded, origins)
      fail(f"{', '.join(where)}: {error}" if where else str(error))
  return parse
