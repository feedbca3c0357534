"""Progress lines for the user, on stderr so stdout stays the job's result."""

import sys


def progress(message: str) -> None:
  print(f"[tfsmooth] {message}", file=sys.stderr, flush=True)
