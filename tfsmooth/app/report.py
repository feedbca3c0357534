"""The constants report: build a discriminator, state its bounds and Theorem 1's constants
(Chu et al.), and optionally estimate the true quantities next to each bound."""

import dataclasses
import json
import math

import keras

from tfsmooth import compat
from tfsmooth import layers as tfs_layers
from tfsmooth import theory
from tfsmooth import verify
from tfsmooth.app import build
from tfsmooth.app.config import ConstantsConfig


def run_constants(config: ConstantsConfig) -> dict:
  """Builds the discriminator of ``config`` and returns every constant as a JSON-able dict."""
  keras.utils.set_random_seed(config.seed)
  discriminator = build.build_discriminator(config.discriminator, config.input_shape)
  compat.progress(f"built {discriminator.name}: {discriminator.count_params():,} parameters")
  if config.converge_spectral_norms:
    tfs_layers.converge_spectral_norms(discriminator)
  particle = config.generator_a is None
  constants = theory.stability_constants(
      discriminator, config.penalty_lambda, config.kernel_sigma,
      n_particles=config.n_particles if particle else None,
      generator_a=config.generator_a, generator_b=config.generator_b)
  result = {
      "config": dataclasses.asdict(config),
      "generator": (f"particle (n={config.n_particles})" if particle else "parametric"),
      "alpha": constants.alpha, "beta1": constants.beta1, "beta2": constants.beta2,
      "A": constants.generator_a, "B": constants.generator_b, "L": constants.smoothness,
      "gamma_star": constants.gamma_star,
      "layers": [{"name": row.name, "kind": row.kind, "lipschitz": row.layer.lipschitz,
                  "smoothness": row.layer.smoothness}
                 for row in constants.discriminator.layers],
      "conv_norms": [dataclasses.asdict(row) for row in verify.conv_norms(discriminator)],
  }
  if config.verify:
    compat.progress(f"verifying: gradient ascent and Hessian power iteration from "
                     f"{config.verify_starts} starts, {config.verify_steps} steps")
    check = verify.verify_model(discriminator, num_starts=config.verify_starts,
                                steps=config.verify_steps, seed=config.seed)
    result["verification"] = dataclasses.asdict(check) | {"holds": check.holds}
  return result


def _number(value: float) -> str:
  return "inf" if math.isinf(value) else f"{value:.6g}"


def format_constants(result: dict) -> str:
  """The report as a plain-text table."""
  lines = ["Discriminator layers (bounds of each layer as built):",
           f"  {'layer':<24}{'kind':<18}{'Lipschitz':>12}{'smoothness':>12}"]
  for row in result["layers"]:
    lines.append(f"  {row['name']:<24}{row['kind']:<18}{_number(row['lipschitz']):>12}"
                 f"{_number(row['smoothness']):>12}")
  if result["conv_norms"]:
    lines += ["", "Convolutions: normalised kernel, reshaped-matrix norm vs true operator norm:",
              f"  {'layer':<24}{'norm':<8}{'reshaped':>10}{'operator':>10}{'Tsuzuku bound':>15}"]
    for row in result["conv_norms"]:
      lines.append(f"  {row['name']:<24}{row['norm_mode']:<8}"
                   f"{_number(row['reshaped_kernel_norm']):>10}{_number(row['operator_norm']):>10}"
                   f"{_number(row['kernel_mode_bound']):>15}")
  verification = result.get("verification")
  estimate = {"alpha": verification and verification["lipschitz_estimate"],
              "beta1": verification and verification["smoothness_estimate"]}
  lines += ["", f"Constants of Chu et al. Theorem 1 (generator: {result['generator']}):",
            f"  {'constant':<12}{'value':>14}{'numerical estimate':>22}  meaning"]
  meanings = {
      "alpha": "Lipschitz bound of the discriminator (D1)",
      "beta1": "Lipschitz bound of its gradient in x (D2)",
      "beta2": "lambda/sigma^2, RKHS penalty (D3; nominal)",
      "A": "generator Lipschitz in expectation (G1)",
      "B": "Lipschitz constant of the generator Jacobian (G2)",
      "L": "alpha*B + A^2*(beta1+beta2)",
      "gamma_star": "theoretical generator learning rate 1/L",
  }
  for key, meaning in meanings.items():
    found = estimate.get(key)
    shown = _number(found) if found is not None else "-"
    lines.append(f"  {key:<12}{_number(result[key]):>14}{shown:>22}  {meaning}")
  if verification:
    lines.append("")
    lines.append("Every estimate is at or below its bound." if verification["holds"] else
                 "WARNING: an estimate exceeds its bound.")
  return "\n".join(lines)


def write_json(result: dict, path: str) -> None:
  with open(path, "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2, default=str)
