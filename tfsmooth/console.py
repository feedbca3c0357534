"""What the user sees on stderr: progress lines (stdout stays the job's result), flag errors
as one line that names the flagfile and line a bad flag came from, and none of TensorFlow's C++
start-up lines (``start_tensorflow``)."""

import os
import re
import sys
import tempfile

from absl import flags

from tfsmooth import compat

# A line of TensorFlow's C++ logging (absl format): "I1124 21:27:32.164105  2431 port.cc:153] ...".
# (Before absl logging is initialised the time reads 00:00:<seconds since the epoch>.)
_TF_LOG_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
# Text of a start-up message that is no news here: no GPU on a CPU-only machine (an E line).
_BENIGN_ERRORS = ("failed call to cuInit",)
# The second line of the CPU-feature message (its first is an I line).
_CONTINUATIONS = ("To enable the following instructions:",)

_FLAGFILE = re.compile(r"^--?flagfile(?:=(.*))?$")
# The flag names in absl's error messages: "flag --NAME=...", "flags A=.., B=..: ...",
# "Unknown command line flag 'NAME'", "Missing value for flag --NAME".
_NAMED = re.compile(r"flag --(\w+)|command line flag '(\w+)'")
_NAMED_SEVERAL = re.compile(r"^flags ([^:]*):")


def progress(message: str) -> None:
  print(f"[tfsmooth] {message}", file=sys.stderr, flush=True)


def without_startup_noise(text: str) -> str:
  """``text`` (what TensorFlow wrote to stderr while starting) without its informational C++
  lines: absl's preamble, I and W lines and their continuations, and the E line of a CUDA that
  finds no GPU. Other E and F lines, and anything else, are kept."""
  kept, dropping = [], False
  for line in text.splitlines(keepends=True):
    match = _TF_LOG_LINE.match(line)
    if line.startswith(_ABSL_PREAMBLE):
      dropping = True
    elif match:
      dropping = match.group(1) in "IW" or any(benign in line for benign in _BENIGN_ERRORS)
    elif not (dropping and line.startswith(_CONTINUATIONS)):
      dropping = False
    if not dropping:
      kept.append(line)
  return "".join(kept)


def start_tensorflow() -> None:
  """Imports TensorFlow and starts its devices, with what TensorFlow's C++ code writes to stderr
  meanwhile filtered by ``without_startup_noise``.

  TensorFlow 2.21 writes about seven log lines there at start-up whatever TF_CPP_MIN_LOG_LEVEL
  says (they come before absl logging is initialised), one of them an error line about CUDA on a
  machine without a GPU; a tfsmooth command's one-line refusal would come under them. The file
  descriptor itself is redirected because the C++ code writes to it, not to ``sys.stderr``.
  ``TFSMOOTH_TF_LOGS=1`` shows everything.
  """
  if compat.SHOW_TF_LOGS:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.list_physical_devices()
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.list_physical_devices()  # CUDA's start (the cuInit line) comes here
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      sys.stderr.write(without_startup_noise(captured.read().decode("utf-8", "replace")))
      sys.stderr.flush()


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
    with open(path, "rb") as f:
      raw = f.read()
  except FileNotFoundError:
    raise FlagfileError(f"flag --flagfile={path}: no such file") from None
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
