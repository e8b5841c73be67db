"""Packaging that setup.cfg cannot say: the repository's saved_models/ ships inside the package.

The pretrained folders live at the top of the repository (one folder per model,
as users browse them) and install as the package data of ``vae_zoo.saved_models``,
so that ``vae_zoo.list_pretrained()`` finds them in a wheel as in a checkout.
Everything else is in setup.cfg.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["vae_zoo", "vae_zoo.*"]), "vae_zoo.saved_models"],
    package_dir={"vae_zoo.saved_models": "saved_models"},
    package_data={
        "vae_zoo": ["catalog.json", "io/tfjs_run.mjs"],
        "vae_zoo.data": ["bundled/*.npz", "bundled/*.LICENSE"],
        "vae_zoo.saved_models": ["README.md", "*/*.json", "*/*.keras", "*/*.png"],
    },
)
