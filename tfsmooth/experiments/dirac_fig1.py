"""Mescheder, Geiger and Nowozin (2018), Section 2 and Figure 1: the Dirac-GAN's update field
and the eigenvalues of its Jacobian at the equilibrium, for the unregularised GAN, the WGAN,
WGAN-GP and the GAN with R1, each without and with Nagarajan and Kolter's regulariser.

    python -m tfsmooth.main --mode=sweep --experiment=dirac_fig1 --sweep_dir=DIR

One member per (method, eta), each ``--mode=nk_toy --toy=dirac`` (tfsmooth.app.nk_toy) in its own
run directory, on the runner of ``nk_fig3``, whose tables and figure it writes
(``eigenvalues.json``, ``eigenvalues.md``, ``streamlines.png``: a row per method, a column per
eta). The closed forms (docs/theory.md section 3): ``[[-gamma, -c], [c, -2 eta c^2]]``.
"""

from tfsmooth.app import config as tfs_config
from tfsmooth.experiments import nk_fig3
from tfsmooth.experiments import sweep

# name -> flags: Mescheder et al.'s methods. The penalties' weights are 1 (a stiffer weight turns
# the panels into vertical lines): R1 with gamma = 1, WGAN-GP with weight 1.
METHODS = {
    "gan": {"loss": "minimax", "penalty": "none"},
    "wgan": {"loss": "wgan", "penalty": "none"},
    "wgan_gp": {"loss": "wgan", "penalty": "gp", "gp_weight": 1.0},
    "gan_r1": {"loss": "minimax", "penalty": "r1", "r_gamma": 1.0},
}
ETAS = (0.0, 0.5)  # without and with Nagarajan and Kolter's regulariser


def members(config: tfs_config.SweepConfig) -> list[sweep.Member]:
  del config  # the figure's methods and etas are fixed
  return [sweep.Member(f"{name}_eta{eta}", {**flags, "eta": eta})
          for name, flags in METHODS.items() for eta in ETAS]


def experiment(config: tfs_config.SweepConfig) -> sweep.Experiment:
  return sweep.Experiment(members=members(config), common={"mode": "nk_toy", "toy": "dirac"},
                          row=nk_fig3.row, hparams=("method", "eta"),
                          metrics=("max_real_part",), figures=nk_fig3.figures)
