"""Figures and TensorBoard: every figure tfsmooth draws is written as a PNG file and, where the
directory has TensorBoard logs, as the same image in them; a run's configuration goes there as a
text table. So ``tensorboard --logdir RUN_OR_SWEEP_DIR`` shows what the files show.

matplotlib draws on its file-only Agg backend (no windows) and is imported only when a figure
is drawn.
"""

import io
import os

from tfsmooth import compat

tf = compat.LazyModule("tensorflow")


def pyplot():
  """matplotlib's pyplot on the Agg backend."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def save_figure(figure, path: str, writer=None, tag: str | None = None, step: int = 0) -> str:
  """Lays out ``figure``, writes it to ``path`` as PNG and, given a summary ``writer``, as the
  image ``tag`` at ``step`` (the same bytes); closes the figure and returns ``path``."""
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format="png")
  pyplot().close(figure)
  png = buffer.getvalue()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "wb") as f:
    f.write(png)
  if writer is not None:
    with writer.as_default():
      tf.summary.image(tag or os.path.splitext(os.path.basename(path))[0],
                       tf.io.decode_png(png)[None], step=step)
    writer.flush()
  return path


def scalar_series(logdir: str, tag: str) -> list[tuple[int, float]]:
  """``(step, value)`` of every summary of the scalar ``tag`` in the TensorBoard logs in
  ``logdir``, read as TensorBoard reads them; empty if there are none."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(logdir):
    return []
  events = event_accumulator.EventAccumulator(logdir, size_guidance={"tensors": 0})
  events.Reload()
  if tag not in events.Tags()["tensors"]:
    return []
  return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]


def markdown_table(rows: dict, header: tuple[str, str] = ("setting", "value")) -> str:
  """``{name: value}`` as a two-column Markdown table (TensorBoard's Text tab renders it)."""
  lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
  lines += [f"| {name} | `{value}` |" for name, value in rows.items()]
  return "\n".join(lines)


def write_text(writer, tag: str, markdown: str, step: int = 0) -> None:
  with writer.as_default():
    tf.summary.text(tag, markdown, step=step)
  writer.flush()
