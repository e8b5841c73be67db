"""The pretrained zoo: ``saved_models/<arch>.<tag>/`` folders, loaded by name.

    vae_zoo.list_pretrained()                 # ['vae.fashion_mnist', 'vae.mnist_mini', ...]
    model = vae_zoo.load_pretrained("vae.fashion_mnist")

Folders are looked for in ``$VAE_ZOO_PRETRAINED_DIR`` (a list separated by
``os.pathsep``), then in ``vae_zoo/saved_models/`` of an installed wheel (the
repository's ``saved_models/``, which setup.py ships inside the package),
then in the ``saved_models/`` of the checkout vae_zoo runs from. Each is a zoo model
folder (``model.keras``, ``card.json``, ``samples.png``); loading runs no pickled code.
"""

import fnmatch
import os
from pathlib import Path

from vae_zoo.errors import unknown_name
from vae_zoo.io.cards import MODEL_FILE, read_card

# Inside an installed wheel (setup.py ships saved_models/ as vae_zoo/saved_models), and in a checkout.
PACKAGED_ZOO = Path(__file__).resolve().parents[1] / "saved_models"
REPOSITORY_ZOO = Path(__file__).resolve().parents[2] / "saved_models"


def search_paths():
    extra = [Path(p) for p in os.environ.get("VAE_ZOO_PRETRAINED_DIR", "").split(os.pathsep) if p]
    return [*extra, PACKAGED_ZOO, REPOSITORY_ZOO]


def _folders():
    found = {}
    for root in search_paths():
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if (folder / MODEL_FILE).is_file():
                    found.setdefault(folder.name, folder)
    return found


def list_pretrained(pattern="*"):
    """Names of the pretrained models, e.g. ``vae.fashion_mnist``, matching a wildcard."""
    return sorted(n for n in _folders() if fnmatch.fnmatchcase(n, pattern))


def pretrained_folder(name):
    folders = _folders()
    if name not in folders:
        raise unknown_name("pretrained model", name, folders)
    return folders[name]


def load_pretrained(name):
    """The pretrained model ``name``, ready to use (its card: ``pretrained_card(name)``)."""
    from vae_zoo.io.saving import load  # lazy: saving imports TensorFlow; listing the zoo does not need it

    return load(pretrained_folder(name))


def pretrained_card(name):
    return read_card(pretrained_folder(name))


def resolve(dir_or_name):
    """A model folder given a path or, if no such path exists, a pretrained model's name."""
    path = Path(dir_or_name)
    if path.exists() or os.sep in str(dir_or_name):
        return path
    return pretrained_folder(str(dir_or_name))
