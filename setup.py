"""pip install -e . (dependencies pinned in requirements.txt; see docs/install.md)."""

import setuptools

setuptools.setup(
    name="tfsmooth",
    version="0.1.0",
    description=("Smoothness and stability of GANs in Keras/TensorFlow: Chu, Minami, Fukumizu "
                 "(ICLR 2020) and Nagarajan, Kolter (NeurIPS 2017)"),
    packages=setuptools.find_packages(include=["tfsmooth", "tfsmooth.*"]),
    python_requires=">=3.11,<3.12",
    install_requires=[
        "tensorflow==2.21.0",
        "keras==3.15.1",
        "tensorflow-gan==2.1.0",
        "tensorflow-probability==0.25.0",
        "tensorflow-datasets==4.9.10",
        "importlib_resources",  # needed by tensorflow-datasets, undeclared there
        "absl-py==2.5.1",
        "tensorboard",
        "numpy==2.4.6",
        "scipy==1.17.1",
        "matplotlib==3.11.2",
    ],
    extras_require={"test": ["pytest==9.2.0"]},
)
