"""``python -m tfsmooth.main``: the command line (``tfsmooth.app.main``)."""

from tfsmooth.app.main import run

if __name__ == "__main__":
  run()
