"""``python -m tfsmooth.main --mode=spectrum --run_dir=DIR``: the eigenvalues of the game's
Jacobian at a checkpoint of a run (``tfsmooth.spectrum``; Nagarajan and Kolter Section 3).

A training run: the networks rebuilt from the manifest's settings, the weights of its checkpoint
at ``--spectrum_step`` (the latest by default), one fixed batch of ``--spectrum_batch`` real
samples (a particle generator plays all its particles). The N&K toy's run (``--mode=nk_toy``):
its two-parameter system at the equilibrium ``(w, a) = (0, 1)``, whose eigenvalues are the closed
forms of docs/nagarajan_kolter.md.

Writes ``DIR/spectrum.json`` (the ``k`` eigenvalues of largest real part with their residuals
``|J v - lambda v| / |v|``, the ``k`` of largest modulus likewise, the step, the cost),
``DIR/spectrum.png`` (both sets in the complex plane) and the same figure and the largest real
part and modulus to TensorBoard under ``DIR/spectrum`` at the checkpoint's step, so spectra at
several steps line up on TensorBoard's step slider.
"""

import os
import time

import numpy as np
import tensorflow as tf

from tfsmooth import compat
from tfsmooth import data
from tfsmooth import provenance
from tfsmooth import spectrum
from tfsmooth.app import build
from tfsmooth.app import config as tfs_config
from tfsmooth.app import nk_toy
from tfsmooth.app import rundir
from tfsmooth.app import summaries
from tfsmooth.app.config import SpectrumConfig
from tfsmooth.app.config import TrainConfig
from tfsmooth.app.rundir import RunDirectory
from tfsmooth.errors import UserError


def checkpoint_steps(run: RunDirectory) -> dict[int, str]:
  """``{step: checkpoint path}`` of the checkpoints the run keeps."""
  state = tf.train.get_checkpoint_state(run.checkpoints)
  paths = list(state.all_model_checkpoint_paths) if state else []
  return {int(path.rsplit("-", 1)[1]): path for path in paths}


def _checkpoint(run: RunDirectory, step: int) -> tuple[str, int]:
  steps = checkpoint_steps(run)
  if not steps:
    raise UserError(f"--run_dir={run.path}: no checkpoint in {run.checkpoints}")
  if step == -1:
    step = max(steps)
  if step not in steps:
    raise UserError(f"--spectrum_step={step}: {run.checkpoints} has no checkpoint of that step "
                    f"(it keeps steps {', '.join(map(str, sorted(steps)))})")
  return steps[step], step


def _toy_game(manifest: dict):
  """The toy's model at its equilibrium and its batch (tfsmooth.app.nk_toy)."""
  system = nk_toy.ToySystem(manifest["loss"], manifest["eta"], game=manifest.get("game", "nk"),
                            penalty=manifest.get("penalty", "none"),
                            **manifest.get("penalty_settings", {}))
  return system.model, system.real, system.latent, 0


def _training_game(run: RunDirectory, manifest: dict, config: SpectrumConfig):
  """The run's model with the checkpoint's weights, a batch of real samples and its latents."""
  if "settings" not in manifest:
    raise UserError(f"--run_dir={run.path}: its manifest records no settings (status "
                    f"'{manifest.get('status')}'); not a training run")
  # One device: the Jacobian's products are not distributed (the weights are the same).
  train_config = tfs_config.from_settings(TrainConfig, manifest["settings"], run_dir=run.path,
                                          strategy="default", cpu_replicas=0, resume=False)
  options = data.provider_options(train_config.dataset, data_dir=train_config.data_dir,
                                  image_shape=tuple(train_config.image_shape))
  provider = data.get_provider(train_config.dataset, seed=train_config.seed, **options)
  path, step = _checkpoint(run, config.step)
  model, _, _ = build.build_gan(train_config, tuple(provider.shape))
  checkpoint = tf.train.Checkpoint(generator=model.generator, discriminator=model.discriminator,
                                   step=model.step)
  # The optimisers' slots are in the checkpoint but not in the game: expect_partial.
  checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
  if model.own_generator_batch:  # every particle, against as many real samples
    batch_size = train_config.generator.n_particles
  else:
    batch_size = config.batch_size or train_config.batch_size
  real = tf.constant(provider.sample(batch_size, seed=config.seed))
  return model, real, spectrum.game_latent(model, batch_size, config.seed), step


def _blocks(model, real, latent, config: SpectrumConfig) -> dict:
  """Each player's diagonal block: its ``k`` eigenvalues of largest real part."""
  blocks = {}
  for player in ("discriminator", "generator"):
    block = spectrum.GameJacobian(model, real, latent, (config.seed, -3), player=player)
    if block.size:
      largest = spectrum.spectra(block, config.k, config.method, config.seed, ("real",))["real"]
      blocks[player] = {**largest.to_json(), "max_real_part": largest.max_real}
  return blocks


def _format(values) -> str:
  return ", ".join(f"{v.real:+.4g}{v.imag:+.4g}i" for v in values)


def draw(spectra: dict, title: str):
  """Both eigenvalue sets in the complex plane, the imaginary axis (the stability boundary)
  marked; returns the figure."""
  figure, axis = summaries.pyplot().subplots(figsize=(5, 4), dpi=100)
  styles = {"real": dict(marker="o", facecolors="none", edgecolors="tab:blue", s=40,
                         label="largest real part"),
            "modulus": dict(marker="x", color="tab:orange", s=30, label="largest modulus")}
  for which, result in spectra.items():
    axis.scatter(result.eigenvalues.real, result.eigenvalues.imag, **styles[which])
  values = np.concatenate([result.eigenvalues for result in spectra.values()])
  scale = float(np.max(np.abs(values)))
  if np.max(np.abs(values.imag)) < 1e-3 * scale:  # real eigenvalues: no axis of rounding noise
    axis.set_ylim(-0.1 * scale, 0.1 * scale)
  axis.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
  axis.axhline(0.0, color="grey", linewidth=0.5)
  axis.set_xlabel("real part (< 0: locally stable)")
  axis.set_ylabel("imaginary part")
  axis.set_title(title, fontsize=8)
  axis.legend(fontsize=7)
  return figure


def run(config: SpectrumConfig) -> dict:
  """The spectrum at a checkpoint of the run in ``config.run_dir`` into ``spectrum.json``,
  ``spectrum.png`` and TensorBoard (module docstring). Returns what ``spectrum.json`` holds."""
  run_dir = RunDirectory(config.run_dir)
  manifest = run_dir.read_manifest()
  toy = manifest.get("mode") == "nk_toy"
  started = time.time()
  if toy:
    model, real, latent, step = _toy_game(manifest)
  else:
    model, real, latent, step = _training_game(run_dir, manifest, config)
  jacobian = spectrum.GameJacobian(model, real, latent, interpolation_seed=(config.seed, -3))
  method = spectrum.resolve_method(jacobian.size, config.method)
  if method == "arnoldi" and config.k >= jacobian.size - 1:
    raise UserError(f"--spectrum_k={config.k}: Arnoldi needs fewer than {jacobian.size - 1} "
                    "eigenvalues (the parameters - 1); use --spectrum_method=dense")
  compat.progress(f"spectrum of {run_dir.path} at step {step}: {jacobian.size:,} parameters, "
                  f"{method}, k = {config.k}")
  spectra = spectrum.spectra(jacobian, config.k, method, config.seed)
  largest_real, largest_modulus = spectra["real"], spectra["modulus"]
  field = jacobian.field()
  split = sum(jacobian.sizes[:len(model.discriminator.trainable_variables)]
              if jacobian.trains_discriminator else [])
  result = {"step": step, **largest_real.to_json(), "max_real_part": largest_real.max_real,
            "largest_modulus": largest_modulus.to_json(),
            # How far from an equilibrium (where the field is 0): each player's |F|.
            "field_norm": {"discriminator": float(np.linalg.norm(field[:split])),
                           "generator": float(np.linalg.norm(field[split:]))}}
  if config.blocks:
    result["blocks"] = _blocks(model, real, latent, config)
  seconds = time.time() - started
  result.update({"batch_size": int(real.shape[0]), "seed": config.seed,
                 "products": jacobian.products, "seconds": seconds,
                 "point": (f"equilibrium {tuple(manifest['equilibrium'])}" if toy
                           else f"checkpoint of step {step}"),
                 "versions": provenance.versions()})
  del result["which"]
  rundir.write_json(os.path.join(run_dir.path, "spectrum.json"), result, sort_keys=False)
  writer = tf.summary.create_file_writer(os.path.join(run_dir.path, "spectrum"))
  with writer.as_default(step=step):
    tf.summary.scalar("spectrum/max_real_part", largest_real.max_real)
    tf.summary.scalar("spectrum/max_modulus", float(np.max(np.abs(largest_modulus.eigenvalues))))
  title = (f"{os.path.basename(os.path.normpath(run_dir.path))}: game Jacobian, "
           f"{'equilibrium' if toy else f'step {step}'}\nlargest real part "
           f"{largest_real.max_real:+.4g} ({jacobian.size:,} parameters)")
  summaries.save_figure(draw(spectra, title), os.path.join(run_dir.path, "spectrum.png"), writer,
                        "spectrum/eigenvalues", step)
  return result


def summary_line(result: dict) -> str:
  """One line: the eigenvalues of largest real part, their largest residual, the cost."""
  values = np.array([complex(*v) for v in result["eigenvalues"]])
  return (f"step {result['step']}: eigenvalues of largest real part {_format(values)} (largest "
          f"residual {max(result['residuals']):.2g}); {result['products']} Jacobian-vector "
          f"products in {result['seconds']:.1f} s")
