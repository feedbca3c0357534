"""Two-parameter GAN games run through tfsmooth's own gradient code: Nagarajan and Kolter's toy
system (their Section 6 and Figure 3; ``game="nk"``) and Mescheder, Geiger and Nowozin's Dirac-GAN
(2018, Section 2 and Figure 1; ``game="dirac"``).

Data ``x ~ U(-1, 1)``, generator ``G_a(z) = a z`` with ``z ~ U(-1, 1)``, discriminator
``D_w(x) = w x^2``; the equilibrium is ``(w, a) = (0, 1)``. The update field is what
``SmoothGAN`` descends with simultaneous updates: ``dw/dt = dV/dw`` (the discriminator ascends
V) and ``da/dt = -d/da [V + eta (dV/dw)^2]`` (the generator descends V plus the regulariser).
Both components come from ``SmoothGAN.discriminator_gradients`` and
``SmoothGAN.generator_gradients``, the functions every training run uses, on float64 Keras
models; the Jacobian at the equilibrium is autodiff through them. Expectations are means over an
``n``-point midpoint grid of ``(-1, 1)``, whose moments differ from the exact ones by
``O(1/n^2)`` (``E x^2 = 1/3 - 1/(3 n^2)``).

The Dirac-GAN: data ``x = 0``, generator ``G_theta(z) = theta`` (``z = 1``), discriminator
``D_psi(x) = psi x``; the equilibrium is ``(psi, theta) = (0, 0)``, and a penalty (``r1``,
``r2``, ``gp``) acts on the discriminator. Its Jacobian there is derived in docs/theory.md
(section 3): ``[[-gamma, -c], [c, -2 eta c^2]]`` with ``c = f'(0)`` (1/2 GAN, 1 WGAN) and
``gamma`` R1's weight.

``run(run_dir, loss, eta)`` (``--mode=nk_toy [--toy=dirac]``) writes one (loss, eta): its
streamline panel, the panel's arrays and the Jacobian and its eigenvalues. The figure of every
loss and eta is the ``nk_fig3`` experiment (``--mode=sweep --experiment=nk_fig3``), of the
Dirac-GAN's methods the ``dirac_fig1`` experiment.
"""

from collections.abc import Callable
import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from tfsmooth import compat
from tfsmooth import gan
from tfsmooth import losses
from tfsmooth import provenance
from tfsmooth.app import summaries
from tfsmooth.app.config import TOY_PENALTIES
from tfsmooth.app.rundir import COMPLETED
from tfsmooth.app.rundir import RunDirectory

LOSSES = {"minimax": "GAN", "wgan": "WGAN"}  # loss name -> the paper's name
EQUILIBRIUM = (0.0, 1.0)  # (w, a) of the N&K toy
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


def dirac_models(psi: float, theta: float, dtype: str = "float64"):
  """``(G_theta, D_psi)`` of the Dirac-GAN: ``G_theta(z) = theta z`` (fed ``z = 1``) and
  ``D_psi(x) = psi x``."""
  generator, _ = toy_models(0.0, theta, dtype)
  discriminator = keras.Sequential([
      keras.Input((1,), dtype=dtype),
      keras.layers.Dense(1, use_bias=False, dtype=dtype,
                         kernel_initializer=keras.initializers.Constant(psi))])
  return generator, discriminator


def midpoint_grid(num_points: int) -> np.ndarray:
  """``num_points`` equally weighted points whose mean integrates against ``U(-1, 1)``."""
  return (2 * np.arange(num_points) + 1) / num_points - 1


@dataclasses.dataclass(frozen=True)
class Game:
  """A two-parameter game: the discriminator's parameter ``w`` and the generator's ``a``."""

  paper: str
  labels: tuple[str, str]  # axis labels of (w, a)
  equilibrium: tuple[float, float]
  w_range: tuple[float, float]
  a_range: tuple[float, float]
  trajectory_starts: tuple[tuple[float, float], ...]
  models: Callable  # (w, a) -> (generator, discriminator)
  penalties: tuple[str, ...]  # the penalties it takes


GAMES = {
    "nk": Game("Nagarajan-Kolter toy", ("w (discriminator)", "a (generator)"), EQUILIBRIUM,
               W_RANGE, A_RANGE, ((0.6, 1.5), (-1.0, 0.5), (1.2, 0.2)), toy_models,
               TOY_PENALTIES["nk"]),
    "dirac": Game("Dirac-GAN", ("psi (discriminator)", "theta (generator)"), (0.0, 0.0),
                  (-2.0, 2.0), (-2.0, 2.0), ((1.0, 1.0), (-1.5, 0.5)), dirac_models,
                  TOY_PENALTIES["dirac"]),
}


class ToySystem:
  """The (w, a) update field of one game, loss, penalty and eta, and its Jacobian.

  Args:
    loss: ``"minimax"`` or ``"wgan"``.
    eta: the Nagarajan-Kolter regulariser's weight.
    num_points: the midpoint grid's size (the N&K toy's expectations).
    game: ``"nk"`` or ``"dirac"`` (``GAMES``).
    penalty: a penalty the game takes (``Game.penalties``), with ``penalty_settings`` (e.g.
      ``r_gamma``, ``gp_weight``).
  """

  def __init__(self, loss: str, eta: float, num_points: int = 2000, game: str = "nk",
               penalty: str = losses.NO_PENALTY, **penalty_settings):
    self.game = GAMES[game]
    if penalty not in self.game.penalties:
      raise ValueError(f"the {self.game.paper} takes the penalties "
                       f"{', '.join(self.game.penalties)}, not '{penalty}'")
    generator, discriminator = self.game.models(*self.game.equilibrium)
    self.model = gan.SmoothGAN(
        generator, discriminator, loss=loss,
        penalty=losses.get_penalty(penalty, **penalty_settings), eta=eta,
        update="simultaneous", noise_dim=1)
    self.w = discriminator.layers[-1].kernel
    self.a = generator.layers[-1].kernel
    if game == "nk":
      self.real = self.latent = tf.constant(midpoint_grid(num_points)[:, None], tf.float64)
    else:  # data x = 0, the generator fed z = 1
      self.real = tf.zeros((1, 1), tf.float64)
      self.latent = tf.ones((1, 1), tf.float64)

  def _field_here(self):
    # The penalties' interpolates (gp) are drawn with a fixed seed: the field is one function.
    seed = tf.constant([0, 0], tf.int64)
    d_gradients, _ = self.model.discriminator_gradients(self.real, self.latent, seed)
    g_gradients, _ = self.model.generator_gradients(self.real, self.latent)
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
  def jacobian(self, w=None, a=None):
    """``d(dw/dt, da/dt) / d(w, a)`` at ``(w, a)`` (the game's equilibrium by default), rows the
    field components, by autodiff."""
    equilibrium = self.game.equilibrium
    self._move_to(equilibrium[0] if w is None else w, equilibrium[1] if a is None else a)
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


TRAJECTORY_STARTS = GAMES["nk"].trajectory_starts
GRID_SIZE = 25  # streamline grid points per axis


def compute(system: ToySystem, grid_size: int = GRID_SIZE) -> dict:
  """What a panel of the figure shows, as arrays: the field on a ``grid_size``-square grid of
  the game's ranges (``ws``, ``as``, ``flow``) and the gradient-descent paths from its
  ``trajectory_starts`` (``path0``, ``path1``, ...)."""
  ws = np.linspace(*system.game.w_range, grid_size)
  as_ = np.linspace(*system.game.a_range, grid_size)
  panel = {"ws": ws, "as": as_, "flow": system.field_on_grid(ws, as_)}
  for index, start in enumerate(system.game.trajectory_starts):
    panel[f"path{index}"] = system.trajectory(start)
  return panel


def draw_panel(axis, panel: dict, title: str, game: str = "nk") -> None:
  """One streamline panel from ``compute``'s arrays (a member's figure and the overview)."""
  flow = panel["flow"]
  speed = np.hypot(flow[..., 0], flow[..., 1])
  axis.streamplot(panel["ws"], panel["as"], flow[..., 0], flow[..., 1], color=speed,
                  cmap="viridis", density=1.0, linewidth=0.7, arrowsize=0.7)
  spec = GAMES[game]
  for index in range(len(spec.trajectory_starts)):
    path = panel[f"path{index}"]
    axis.plot(path[:, 0], path[:, 1], color="tab:red", linewidth=1.0)
    axis.plot(*path[0], "o", color="tab:red", markersize=3)
  axis.plot(*spec.equilibrium, "*", color="black", markersize=9)
  axis.set_xlim(*spec.w_range)
  axis.set_ylim(*spec.a_range)
  axis.set_xlabel(spec.labels[0])
  axis.set_ylabel(spec.labels[1])
  axis.set_title(title, fontsize=8)


def eigen_summary(jacobian) -> dict:
  """The Jacobian, its eigenvalues (``[real, imag]`` pairs, sorted) and the largest real part."""
  eigenvalues = np.linalg.eigvals(jacobian)
  eigenvalues = eigenvalues[np.lexsort((eigenvalues.imag, eigenvalues.real))]
  return {"jacobian": np.asarray(jacobian).tolist(),
          "eigenvalues": [[float(e.real), float(e.imag)] for e in eigenvalues],
          "max_real_part": float(np.max(eigenvalues.real))}


def _number(value: float) -> str:
  return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4e}"


def _format_eigenvalue(real, imag):
  return f"{'-' if real < 0 else '+'}{_number(abs(real))} {'+' if imag >= 0 else '-'} " \
         f"{_number(abs(imag))}i"


def format_eigenvalues(eigenvalues) -> str:
  """A complex-conjugate pair as ``re +- im i``, otherwise each eigenvalue."""
  (re1, im1), (re2, im2) = eigenvalues
  if abs(re1 - re2) < 1e-12 and abs(im1 + im2) < 1e-12 and im1 != 0:
    return f"{re1:+.4f} ± {abs(im1):.4f}i"
  return ", ".join(_format_eigenvalue(*e) for e in eigenvalues)


def title(loss: str, eta: float, eigenvalues, penalty: str = losses.NO_PENALTY) -> str:
  method = LOSSES[loss] + ("" if penalty == losses.NO_PENALTY else f" + {penalty.upper()}")
  return f"{method}, eta = {eta}\neigenvalues {format_eigenvalues(eigenvalues)}"


def run(run_dir: str, loss: str, eta: float, grid_size: int = GRID_SIZE, game: str = "nk",
        penalty: str = losses.NO_PENALTY, **penalty_settings) -> dict:
  """One (loss, eta) of a game (``GAMES``) into the run directory ``run_dir``: the panel's
  arrays (``field.npz``), its figure (``streamlines.png``) and a manifest with the Jacobian at
  the equilibrium and its eigenvalues. The whole figures are the ``nk_fig3`` and ``dirac_fig1``
  experiments, one such run per method and eta. Returns the manifest."""
  run = RunDirectory(run_dir)
  os.makedirs(run.path, exist_ok=True)
  system = ToySystem(loss, eta, game=game, penalty=penalty, **penalty_settings)
  penalty_settings = losses.hyperparameters(system.model.penalty)  # the ones it has
  summary = eigen_summary(system.jacobian().numpy())
  equilibrium = system.game.equilibrium
  compat.progress(f"{system.game.paper}, {title(loss, eta, summary['eigenvalues'], penalty)} at "
                  f"{equilibrium}")
  panel = compute(system, grid_size)
  np.savez(run.toy_field_path, **panel)
  figure, axis = summaries.pyplot().subplots(figsize=(4, 3.6), dpi=100)
  draw_panel(axis, panel, title(loss, eta, summary["eigenvalues"], penalty), game)
  writer = tf.summary.create_file_writer(run.logs)
  summaries.save_figure(figure, run.toy_figure_path, writer, "streamlines")
  manifest = {"mode": "nk_toy", "status": COMPLETED, "game": game, "loss": loss,
              "paper_loss": LOSSES[loss], "penalty": penalty,
              "penalty_settings": penalty_settings, "eta": eta,
              "equilibrium": list(equilibrium), **summary, "versions": provenance.versions()}
  summaries.write_text(writer, "run", summaries.markdown_table(
      {"game": system.game.paper, "loss": loss, "penalty": penalty, **penalty_settings,
       "eta": eta, "equilibrium": equilibrium,
       "eigenvalues": format_eigenvalues(summary["eigenvalues"])}))
  run.write_manifest(manifest)
  return manifest
