"""Nagarajan and Kolter's toy system (their Section 6 and Figure 3), run through tfsmooth's own
gradient code.

Data ``x ~ U(-1, 1)``, generator ``G_a(z) = a z`` with ``z ~ U(-1, 1)``, discriminator
``D_w(x) = w x^2``; the equilibrium is ``(w, a) = (0, 1)``. The update field is what
``SmoothGAN`` descends with simultaneous updates: ``dw/dt = dV/dw`` (the discriminator ascends
V) and ``da/dt = -d/da [V + eta (dV/dw)^2]`` (the generator descends V plus the regulariser).
Both components come from ``SmoothGAN.discriminator_gradients`` and
``SmoothGAN.generator_gradients``, the functions every training run uses, on float64 Keras
models; the Jacobian at the equilibrium is autodiff through them. Expectations are means over an
``n``-point midpoint grid of ``(-1, 1)``, whose moments differ from the exact ones by
``O(1/n^2)`` (``E x^2 = 1/3 - 1/(3 n^2)``).

``run(out_dir)`` writes one streamline PNG per (loss, eta), an overview figure, and the
Jacobians and eigenvalues (``eigenvalues.json``, ``eigenvalues.md``).
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from tfsmooth import console
from tfsmooth import gan
from tfsmooth.config import GANConfig

LOSSES = {"minimax": "GAN", "wgan": "WGAN"}  # loss name -> the paper's name
ETAS = (0.0, 0.25, 0.5, 1.0)
EQUILIBRIUM = (0.0, 1.0)  # (w, a)
W_RANGE = (-2.0, 2.0)
A_RANGE = (-0.5, 2.5)


def toy_models(w: float, a: float, dtype: str = "float64"):
  """``(G_a, D_w)`` as Keras models: ``G_a(z) = a z`` and ``D_w(x) = w x^2``."""
  discriminator = keras.Sequential([
      keras.Input((1,), dtype=dtype),
      keras.layers.Lambda(tf.square, dtype=dtype),
      keras.layers.Dense(1, use_bias=False, dtype=dtype,
                         kernel_initializer=keras.initializers.Constant(w))])
  generator = keras.Sequential([
      keras.Input((1,), dtype=dtype),
      keras.layers.Dense(1, use_bias=False, dtype=dtype,
                         kernel_initializer=keras.initializers.Constant(a))])
  return generator, discriminator


def midpoint_grid(num_points: int) -> np.ndarray:
  """``num_points`` equally weighted points whose mean integrates against ``U(-1, 1)``."""
  return (2 * np.arange(num_points) + 1) / num_points - 1


class ToySystem:
  """The (w, a) update field of one loss and eta, and its Jacobian."""

  def __init__(self, loss: str, eta: float, num_points: int = 2000):
    generator, discriminator = toy_models(*EQUILIBRIUM)
    self.model = gan.SmoothGAN(
        generator, discriminator,
        GANConfig(loss=loss, penalty="none", eta=eta, update="simultaneous"), noise_dim=1)
    self.w = discriminator.layers[-1].kernel
    self.a = generator.layers[-1].kernel
    self.points = tf.constant(midpoint_grid(num_points)[:, None], tf.float64)  # x and z alike

  def _field_here(self):
    unused_seed = tf.constant([0, 0], tf.int64)  # no penalty: no interpolates are drawn
    d_gradients, _ = self.model.discriminator_gradients(self.points, self.points, unused_seed)
    g_gradients, _ = self.model.generator_gradients(self.points, self.points)
    # Both gradients are of what each player minimises: the flow is minus them.
    return tf.stack([-d_gradients[0][0, 0], -g_gradients[0][0, 0]])

  def _move_to(self, w, a):
    self.w.assign(tf.reshape(tf.cast(w, tf.float64), (1, 1)))
    self.a.assign(tf.reshape(tf.cast(a, tf.float64), (1, 1)))

  @tf.function
  def field(self, w, a):
    """``(dw/dt, da/dt)`` at ``(w, a)``."""
    self._move_to(w, a)
    return self._field_here()

  @tf.function
  def jacobian(self, w=EQUILIBRIUM[0], a=EQUILIBRIUM[1]):
    """``d(dw/dt, da/dt) / d(w, a)``, rows the field components, by autodiff."""
    self._move_to(w, a)
    with tf.GradientTape(persistent=True) as tape:
      flow = self._field_here()
      rows = [flow[0], flow[1]]
    jacobian = tf.stack([tf.concat([tf.reshape(g, [1]) for g in tape.gradient(row, [self.w,
                                                                                    self.a])], 0)
                         for row in rows])
    del tape
    return jacobian

  def field_on_grid(self, ws, as_):
    flow = np.zeros((len(as_), len(ws), 2))
    for i, a in enumerate(as_):
      for j, w in enumerate(ws):
        flow[i, j] = self.field(tf.constant(w, tf.float64), tf.constant(a, tf.float64)).numpy()
    return flow

  def trajectory(self, start, step_size: float = 0.05, steps: int = 600) -> np.ndarray:
    """Simultaneous gradient descent ``theta += step_size * field(theta)`` from ``start``."""
    path = [np.asarray(start, np.float64)]
    for _ in range(steps):
      w, a = path[-1]
      flow = self.field(tf.constant(w, tf.float64), tf.constant(a, tf.float64)).numpy()
      path.append(path[-1] + step_size * flow)
      if not np.all(np.isfinite(path[-1])) or np.max(np.abs(path[-1])) > 10:
        break
    return np.array(path)


TRAJECTORY_STARTS = ((0.6, 1.5), (-1.0, 0.5), (1.2, 0.2))


def _plot_panel(axis, system, ws, as_, title):
  flow = system.field_on_grid(ws, as_)
  speed = np.hypot(flow[..., 0], flow[..., 1])
  axis.streamplot(ws, as_, flow[..., 0], flow[..., 1], color=speed, cmap="viridis",
                  density=1.0, linewidth=0.7, arrowsize=0.7)
  for start in TRAJECTORY_STARTS:
    path = system.trajectory(start)
    axis.plot(path[:, 0], path[:, 1], color="tab:red", linewidth=1.0)
    axis.plot(*path[0], "o", color="tab:red", markersize=3)
  axis.plot(*EQUILIBRIUM, "*", color="black", markersize=9)
  axis.set_xlim(*W_RANGE)
  axis.set_ylim(*A_RANGE)
  axis.set_xlabel("w (discriminator)")
  axis.set_ylabel("a (generator)")
  axis.set_title(title, fontsize=8)


def _eigen_summary(jacobian) -> dict:
  eigenvalues = np.linalg.eigvals(jacobian)
  eigenvalues = eigenvalues[np.lexsort((eigenvalues.imag, eigenvalues.real))]
  return {"jacobian": jacobian.tolist(),
          "eigenvalues": [[float(e.real), float(e.imag)] for e in eigenvalues],
          "max_real_part": float(np.max(eigenvalues.real))}


def _format_eigenvalue(real, imag):
  return f"{real:+.4f} {'+' if imag >= 0 else '-'} {abs(imag):.4f}i"


def _format_eigenvalues(eigenvalues) -> str:
  """A complex-conjugate pair as ``re +- im i``, otherwise each eigenvalue."""
  (re1, im1), (re2, im2) = eigenvalues
  if abs(re1 - re2) < 1e-12 and abs(im1 + im2) < 1e-12 and im1 != 0:
    return f"{re1:+.4f} ± {abs(im1):.4f}i"
  return ", ".join(_format_eigenvalue(*e) for e in eigenvalues)


def run(out_dir: str, losses=tuple(LOSSES), etas=ETAS, grid_size: int = 25) -> dict:
  """All panels and eigenvalues into ``out_dir``; returns ``{loss: {eta: summary}}``."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  os.makedirs(out_dir, exist_ok=True)
  ws = np.linspace(*W_RANGE, grid_size)
  as_ = np.linspace(*A_RANGE, grid_size)
  results = {}
  overview, axes = plt.subplots(len(losses), len(etas), figsize=(3.2 * len(etas),
                                                                  3.0 * len(losses)),
                                dpi=100, squeeze=False)
  for row, loss in enumerate(losses):
    for column, eta in enumerate(etas):
      system = ToySystem(loss, eta)
      summary = _eigen_summary(system.jacobian().numpy())
      results.setdefault(loss, {})[str(eta)] = summary
      eigen_text = _format_eigenvalues(summary["eigenvalues"])
      console.progress(f"{LOSSES[loss]} eta={eta}: eigenvalues at (0, 1): {eigen_text}")
      title = f"{LOSSES[loss]}, eta = {eta}\neigenvalues {eigen_text}"
      figure, axis = plt.subplots(figsize=(4, 3.6), dpi=100)
      _plot_panel(axis, system, ws, as_, title)
      figure.tight_layout()
      figure.savefig(os.path.join(out_dir, f"streamlines_{loss}_eta{eta}.png"))
      plt.close(figure)
      _plot_panel(axes[row][column], system, ws, as_, title)
  overview.tight_layout()
  overview.savefig(os.path.join(out_dir, "streamlines.png"))
  plt.close(overview)
  with open(os.path.join(out_dir, "eigenvalues.json"), "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2)
  lines = ["| loss | eta | Jacobian at (w, a) = (0, 1) | eigenvalues | max real part |",
           "|---|---|---|---|---|"]
  for loss, by_eta in results.items():
    for eta, summary in by_eta.items():
      jacobian = summary["jacobian"]
      lines.append(f"| {LOSSES[loss]} | {eta} | [[{jacobian[0][0]:.4f}, {jacobian[0][1]:.4f}], "
                   f"[{jacobian[1][0]:.4f}, {jacobian[1][1]:.4f}]] | "
                   f"{_format_eigenvalues(summary['eigenvalues'])} | "
                   f"{summary['max_real_part']:+.2e} |")
  with open(os.path.join(out_dir, "eigenvalues.md"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  return results
