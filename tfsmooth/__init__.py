"""tfsmooth: smoothness and stability of GANs in Keras (Chu, Minami, Fukumizu, ICLR 2020;
Nagarajan and Kolter, NeurIPS 2017).

What a researcher imports for their own GAN::

    import tfsmooth
    discriminator = keras.Sequential([keras.Input((28, 28, 1)), tfsmooth.SNConv2D(64, 3), ...])
    lr, constants = tfsmooth.generator_learning_rate(discriminator, 10, penalty, generator=g)
    gan = tfsmooth.SmoothGAN(g, discriminator, loss="indicator", penalty=penalty)

The names in ``__all__`` load on first use (PEP 562): ``import tfsmooth`` sets TensorFlow's
environment (``tfsmooth.compat``: oneDNN kernels on every CPU, TensorFlow's C++ log level) and
prints nothing, and the first import of TensorFlow afterwards, by tfsmooth, Keras or you, comes
without TensorFlow's C++ start-up lines (``compat.start_tensorflow``; ``TFSMOOTH_TF_LOGS=1``
shows them): import tfsmooth before Keras. The command line and everything it writes are in
``tfsmooth.app``, which this library never imports.
"""

import importlib

from tfsmooth import compat as _compat  # the TF environment, before TensorFlow loads

_compat.install_quiet_import()  # whoever imports TensorFlow first: no C++ start-up lines

# name -> the library module that defines it.
_EXPORTS = {
    # The model (Chu et al. Section 7; Nagarajan and Kolter Section 5).
    "SmoothGAN": "gan",
    # Bounded layers (Chu et al. Section 5.1).
    "SNDense": "layers",
    "SNConv2D": "layers",
    "SmoothActivation": "layers",
    "AlphaScale": "layers",
    "register_activation": "layers",
    "converge_spectral_norms": "layers",
    # Theorem 1's constants and the learning rate from gamma*.
    "stability_constants": "theory",
    "StabilityConstants": "theory",
    "model_bounds": "theory",
    "generator_learning_rate": "theory",
    "verify_model": "verify",
    # The game's Jacobian and its eigenvalues (Nagarajan and Kolter Section 3).
    "GameJacobian": "spectrum",
    "game_spectrum": "spectrum",
    # Live stability monitors (Keras callback).
    "StabilityMonitor": "monitors",
    "stability_measures": "monitors",
    # Base losses and penalties.
    "Loss": "losses",
    "MMDLoss": "losses",
    "Penalty": "losses",
    "RKHSPenalty": "losses",
    "GradientPenalty": "losses",
    "R1Penalty": "losses",
    "R2Penalty": "losses",
    "R1R2Penalty": "losses",
    "get_loss": "losses",
    "get_penalty": "losses",
    "register_loss": "losses",
    "register_penalty": "losses",
    # The papers' networks.
    "conv7_discriminator": "networks",
    "mlp_discriminator": "networks",
    "nk_mlp_discriminator": "networks",
    "dcgan_discriminator": "networks",
    "dcgan_generator": "networks",
    "mlp_generator": "networks",
    "ParticleGenerator": "networks",
    # Datasets (offline, deterministic).
    "get_provider": "data",
    "DataProvider": "data",
    # FID/KID (TF-GAN's functions) on named features.
    "FeatureExtractor": "metrics",
    "frechet_distance": "metrics",
    "kernel_distance": "metrics",
    "sample_quality": "metrics",
    "inception_extractor": "metrics",
    "load_classifier": "classifier",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605  (the public names: the keys of _EXPORTS)


def __getattr__(name: str):
  if name not in _EXPORTS:
    raise AttributeError(f"module 'tfsmooth' has no attribute '{name}'")
  _compat.start_tensorflow()  # once: TensorFlow's start-up lines filtered
  value = getattr(importlib.import_module(f"tfsmooth.{_EXPORTS[name]}"), name)
  globals()[name] = value  # later lookups skip this function
  return value


def __dir__():
  return sorted(set(globals()) | set(__all__))
