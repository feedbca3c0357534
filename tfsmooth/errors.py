"""The one error type for mistakes a user can make and expected run failures.

``python -m tfsmooth.main`` prints a ``UserError`` as the single line ``tfsmooth: error: ...`` and
exits with its ``exit_status``; any other exception is a bug in tfsmooth and keeps its traceback.
Imports nothing, so every module (and the TF-free flag validators) can raise it.
"""


class UserError(Exception):
  """Bad input (a flag, a file, a dataset that is not installed): refused before any work,
  exit status 2. The message is one line that names what is wrong and how to fix it."""

  exit_status = 2


class RunError(UserError):
  """A run that started and did not finish (diverged, interrupted): exit status 1. Its last good
  checkpoint is kept and the message says how to continue."""

  exit_status = 1
