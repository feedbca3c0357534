"""Multi-run experiments, all on one runner (``sweep``): ``chu_fig1`` (Chu et al. Figure 1),
``nk_mog`` (Nagarajan-Kolter's mixture of Gaussians, methods x seeds) and ``nk_fig3`` (their toy
system, Figure 3). Each is a module here, named in ``tfsmooth.app.config.EXPERIMENTS``, whose
``experiment(config: SweepConfig)`` returns a ``sweep.Experiment``; ``--mode=sweep
--experiment=NAME`` runs it (docs/architecture.md: how to add one).
"""

import importlib

from tfsmooth.app import config as tfs_config
from tfsmooth.experiments import sweep


def experiment(config: tfs_config.SweepConfig) -> sweep.Experiment:
  """The ``sweep.Experiment`` that ``config.experiment`` names."""
  return importlib.import_module(f"tfsmooth.experiments.{config.experiment}").experiment(config)


def run(config: tfs_config.SweepConfig) -> str:
  """Runs (or continues) the experiment in ``config.sweep_dir``, on this machine or on Ray
  (``--sweep_backend``); returns a summary line."""
  backend = None
  if config.sweep_backend == "ray":
    from tfsmooth.experiments import ray_backend  # pylint: disable=g-import-not-at-top
    backend = ray_backend.RayBackend(config.ray_address, config.member_cpus, config.member_gpus,
                                     config.member_retries)
  return sweep.run_experiment(experiment(config), config.sweep_dir, config.parallel, backend)
