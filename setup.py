"""``pip install .``: tfsmooth as a library with a ``tfsmooth`` command (docs/install.md).

``install_requires`` are compatible ranges whose lower bounds are the versions tested here (the
exact set is requirements.txt, the lock that ``make setup`` and CI install); the upper bounds stop
at the next major version. tensorflow-gan 2.1.0 is its last release and needs tfsmooth.compat's
shim on TensorFlow >= 2.16.
"""

import setuptools

setuptools.setup(
    name="tfsmooth",
    version="0.1.0",
    description=("Smoothness and stability of GANs in Keras/TensorFlow: Chu, Minami, Fukumizu "
                 "(ICLR 2020) and Nagarajan, Kolter (NeurIPS 2017)"),
    packages=setuptools.find_packages(include=["tfsmooth", "tfsmooth.*"]),
    # The flagfile of every documented run, found by name from any directory.
    package_data={"tfsmooth": ["runs/*.flags"]},
    python_requires=">=3.11,<3.12",  # TF-GAN imports distutils (gone in 3.12)
    install_requires=[
        "tensorflow>=2.21.0,<3",
        "keras>=3.15.1,<4",
        "tensorflow-gan>=2.1.0,<3",
        "tensorflow-probability>=0.25.0,<1",
        "tensorflow-datasets>=4.9.10,<5",
        "importlib_resources>=7.1.0",  # needed by tensorflow-datasets, undeclared there
        "absl-py>=2.5.1,<3",
        "tensorboard>=2.21.0,<3",
        "numpy>=2.4.6,<3",
        "scipy>=1.17.1,<2",
        "matplotlib>=3.11.2,<4",
    ],
    # bench: the PyTorch peer of benchmarks/vs_pytorch.py, never imported by tfsmooth itself.
    # `make setup-bench` installs it from requirements-bench.txt, which says why without setuptools.
    # ray: sweeps on a Ray cluster (--sweep_backend=ray); `make setup-ray`, requirements-ray.txt.
    extras_require={"test": ["pytest>=9.2.0", "pytest-xdist>=3.8.0"], "bench": ["torch==2.13.0"],
                    "ray": ["ray==2.60.0"]},
    entry_points={"console_scripts": ["tfsmooth = tfsmooth.main:run"]},
)
