"""Packaging that setup.cfg cannot say: the package data.

The wheel carries the code, the bundled mnist_mini digits and the pretrained catalog (vae_zoo/pretrained.json),
not the pretrained weights: those are fetched by name into a cache and checked by SHA-256
(vae_zoo.io.pretrained, docs/pretrained.md). A checkout finds them in saved_models/ without fetching.
Everything else is in setup.cfg.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["vae_zoo", "vae_zoo.*"]),
    package_data={
        "vae_zoo": ["catalog.json", "pretrained.json", "io/tfjs_run.mjs"],
        "vae_zoo.data": ["bundled/*.npz", "bundled/*.LICENSE"],
    },
)
