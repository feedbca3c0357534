"""Nagarajan and Kolter's toy system: the Jacobian tfsmooth gets by autodiff through its own
gradient code equals the one derived by hand (docs/nagarajan_kolter.md), and its eigenvalues say
what the paper says."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfsmooth.app import nk_toy
from tfsmooth.app.config import SweepConfig
from tfsmooth.app.rundir import RunDirectory

NUM_POINTS = 2000


def analytic_jacobian(loss, eta, m2, m4):
  """Jacobian of (dw/dt, da/dt) at (w, a) = (0, 1), derived by hand.

  With V = E f(w x^2) + E f(-w a^2 z^2), g = dV/dw, dw/dt = g and
  da/dt = -dV/da - 2 eta g dg/da; at w = 0, a = 1 (where g = 0):
  dg/dw = 2 f''(0) m4, dg/da = -2 f'(0) m2, d(-dV/da)/dw = 2 f'(0) m2, d(-dV/da)/da = 0, so

      J = [[2 f''(0) m4,                        -2 f'(0) m2],
           [2 f'(0) m2 - 2 eta dg/dw dg/da,     -2 eta (dg/da)^2]]

  with f'(0) = 1/2, f''(0) = -1/4 (GAN, f(u) = -log(1 + e^-u)) or 1, 0 (WGAN, f(u) = u), and
  m2 = E x^2, m4 = E x^4 (1/3 and 1/5 for U(-1, 1)).
  """
  f1, f2 = (0.5, -0.25) if loss == "minimax" else (1.0, 0.0)
  dg_dw, dg_da = 2 * f2 * m4, -2 * f1 * m2
  return np.array([[dg_dw, dg_da],
                   [2 * f1 * m2 - 2 * eta * dg_dw * dg_da, -2 * eta * dg_da**2]])


def _grid_moments():
  grid = nk_toy.midpoint_grid(NUM_POINTS)
  return float(np.mean(grid**2)), float(np.mean(grid**4))


@pytest.mark.parametrize("loss", ["minimax", "wgan"])
@pytest.mark.parametrize("eta", SweepConfig().nk_etas)
def test_autodiff_jacobian_equals_analytic_jacobian(loss, eta):
  system = nk_toy.ToySystem(loss, eta, num_points=NUM_POINTS)
  jacobian = system.jacobian().numpy()
  # The grid's own moments: the comparison is exact, not up to quadrature error.
  np.testing.assert_allclose(jacobian, analytic_jacobian(loss, eta, *_grid_moments()),
                             rtol=1e-10, atol=1e-12)
  # And the continuum moments agree to the grid's O(1/n^2).
  np.testing.assert_allclose(jacobian, analytic_jacobian(loss, eta, 1 / 3, 1 / 5), atol=1e-6)


@pytest.mark.parametrize("loss", ["minimax", "wgan"])
def test_equilibrium_is_a_fixed_point(loss):
  system = nk_toy.ToySystem(loss, 0.5)  # held: its tf.functions keep only a weak reference
  flow = system.field(tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64)).numpy()
  np.testing.assert_allclose(flow, 0.0, atol=1e-12)


def test_wgan_without_eta_has_purely_imaginary_eigenvalues():
  system = nk_toy.ToySystem("wgan", 0.0)
  eigenvalues = np.linalg.eigvals(system.jacobian().numpy())
  np.testing.assert_allclose(eigenvalues.real, 0.0, atol=1e-12)
  np.testing.assert_allclose(np.abs(eigenvalues.imag), 2 / 3, atol=1e-6)


@pytest.mark.parametrize("loss,eta", [("wgan", 0.25), ("wgan", 0.5), ("wgan", 1.0),
                                      ("minimax", 0.0), ("minimax", 0.5)])
def test_eta_or_the_gan_loss_gives_negative_real_parts(loss, eta):
  system = nk_toy.ToySystem(loss, eta)
  eigenvalues = np.linalg.eigvals(system.jacobian().numpy())
  assert np.all(eigenvalues.real < -0.04), eigenvalues


def _wgan_orbit_invariant(path):
  """``H = w^2 - log a + a^2 / 2``: constant along the WGAN flow without eta (dw/dt =
  m2 (1 - a^2), da/dt = 2 m2 w a), so its orbits around (0, 1) (where H = 1/2) are closed."""
  w, a = path[:, 0], path[:, 1]
  return w**2 - np.log(a) + a**2 / 2


def test_wgan_gradient_descent_cycles_without_eta_from_every_start():
  """The red paths of the eta = 0 WGAN panel (docs/nagarajan_kolter.md), from each of the
  figure's three starts, 600 steps: gradient descent never approaches (0, 1) (the flow's orbits
  are closed; Euler steps spiral slowly outwards). Measured: each step raises H by >= 2.2e-4."""
  plain = nk_toy.ToySystem("wgan", 0.0)
  for start in nk_toy.TRAJECTORY_STARTS:
    path = plain.trajectory(start)
    assert len(path) == 601, start  # not stopped early (by leaving the plot)
    cycling = _wgan_orbit_invariant(path)
    assert np.all(np.diff(cycling) >= 0), start  # H never decreases: no step moves towards (0, 1)


@pytest.mark.parametrize("eta,within", [(0.25, 0.1), (0.5, 0.01), (1.0, 1e-4)])
def test_wgan_gradient_descent_converges_with_eta_from_every_start(eta, within):
  """The red paths of the eta > 0 WGAN panels, from each of the three starts: 600 steps of 0.05
  (time 30) bring each nearer (0, 1) by the decay e^(-4 eta t / 9): e^-3.3, e^-6.7, e^-13.3.
  Measured end distances: 0.029-0.070 (eta 0.25), 9.1e-4 to 2.8e-3 (0.5), <= 3.8e-6 (1.0)."""
  system = nk_toy.ToySystem("wgan", eta)
  for start in nk_toy.TRAJECTORY_STARTS:
    end = system.trajectory(start)[-1]
    assert np.hypot(end[0], end[1] - 1) < within, (start, end)


def test_a_toy_run_writes_its_panel_and_eigenvalues(tmp_path, tensorboard):
  manifest = nk_toy.run(str(tmp_path), "wgan", 0.5, grid_size=6)
  run = RunDirectory(str(tmp_path))
  assert run.completed() == json.loads(json.dumps(manifest))
  assert manifest["max_real_part"] == pytest.approx(-4 * 0.5 / 9, abs=1e-6)
  assert manifest["paper_loss"] == "WGAN" and manifest["eta"] == 0.5
  with np.load(run.toy_field_path) as panel:
    assert panel["flow"].shape == (6, 6, 2)
    assert len([k for k in panel if k.startswith("path")]) == len(nk_toy.TRAJECTORY_STARTS)
    # the saved paths are the system's gradient descent, from the saved starts
    np.testing.assert_allclose(panel["path0"][0], nk_toy.TRAJECTORY_STARTS[0])
  assert os.path.getsize(run.toy_figure_path) > 1000
  logs = tensorboard(run.logs)
  np.testing.assert_array_equal(logs.images("streamlines")[0],
                                tensorboard.png_file(run.toy_figure_path))
  assert "| eta | `0.5` |" in logs.text("run")


def dirac_jacobian(loss, eta, r_gamma=0.0):
  """Jacobian of the Dirac-GAN's (dpsi/dt, dtheta/dt) at (0, 0), derived in docs/theory.md
  section 3: ``[[-gamma, -c], [c, -2 eta c^2]]``, ``c = f'(0)``: 1/2 (GAN) or 1 (WGAN)."""
  c = 0.5 if loss == "minimax" else 1.0
  return np.array([[-r_gamma, -c], [c, -2 * eta * c**2]])


@pytest.mark.parametrize("loss", ["minimax", "wgan"])
@pytest.mark.parametrize("penalty, r_gamma", [("none", 0.0), ("r1", 0.7), ("r2", 0.7),
                                              ("r1r2", 0.7)])
@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_dirac_gan_jacobian_is_the_closed_form(loss, penalty, r_gamma, eta):
  system = nk_toy.ToySystem(loss, eta, game="dirac", penalty=penalty, r_gamma=r_gamma)
  # R1 and R2 are the same penalty here (D is linear: the same input gradient everywhere), and
  # R1 + R2 twice it.
  weight = 2 * r_gamma if penalty == "r1r2" else r_gamma
  np.testing.assert_allclose(system.jacobian().numpy(), dirac_jacobian(loss, eta, weight),
                             rtol=1e-12, atol=1e-15)
  np.testing.assert_allclose(system.field(tf.constant(0.0, tf.float64),
                                          tf.constant(0.0, tf.float64)).numpy(), 0.0, atol=1e-15)


def test_dirac_gan_wgan_gp_has_the_smoothed_kink_at_the_equilibrium():
  """WGAN-GP's w (|psi| - 1)^2 has a kink at psi = 0; tfsmooth's |g| = sqrt(g^2 + 1e-12) makes
  the Jacobian's psi-psi entry 2 w (1/sqrt(1e-12) - 1): the equilibrium repels (Mescheder et al.:
  WGAN-GP does not converge on the Dirac-GAN)."""
  system = nk_toy.ToySystem("wgan", 0.0, game="dirac", penalty="gp", gp_weight=0.5)
  expected = np.array([[2 * 0.5 * (1e6 - 1), -1.0], [1.0, 0.0]])
  np.testing.assert_allclose(system.jacobian().numpy(), expected, rtol=1e-9)


def test_the_dirac_toy_runs_from_the_flags_and_its_spectrum_is_the_closed_form(tmp_path, cli):
  run_dir = tmp_path / "dirac"
  result = cli("--mode=nk_toy", "--toy=dirac", "--loss=minimax", "--penalty=r1",
               "--r_gamma=0.3", "--eta=0.5", f"--run_dir={run_dir}")
  assert result.returncode == 0, result.stderr[-2000:]
  manifest = json.loads((run_dir / "manifest.json").read_text())
  assert manifest["game"] == "dirac" and manifest["penalty_settings"] == {"r_gamma": 0.3}
  expected = np.linalg.eigvals(dirac_jacobian("minimax", 0.5, 0.3))
  result = cli("--mode=spectrum", f"--run_dir={run_dir}")
  assert result.returncode == 0, result.stderr[-2000:]
  spectrum = json.loads((run_dir / "spectrum.json").read_text())
  got = sorted((complex(*v) for v in spectrum["eigenvalues"]), key=lambda v: v.imag)
  np.testing.assert_allclose(got, sorted(expected, key=lambda v: v.imag), atol=1e-12)
  refused = cli("--mode=nk_toy", "--toy=dirac", "--loss=minimax", f"--run_dir={tmp_path / 'x'}")
  assert refused.returncode == 2 and "--toy=dirac takes --penalty=" in refused.stderr
