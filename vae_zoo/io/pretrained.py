"""The pretrained zoo: models listed in the package's catalog, fetched by name into a cache and checked.

    vae_zoo.list_pretrained()                       # ['vae.fashion_mnist', 'vae.mnist_mini', ...]: no fetching
    model = vae_zoo.load_pretrained("vae.fashion_mnist")
    model = vae_zoo.load_pretrained("hf://owner/repo")  # a Hub repository of that layout (needs huggingface_hub)

The catalog, ``vae_zoo/pretrained.json``, lists each model's files with their size and SHA-256, its figures, and
where to fetch it (``base_url``). The wheel carries the catalog, not the weights. A model is used from the first
of these that holds all its files with the listed digests:

1. ``$VAE_ZOO_PRETRAINED_DIR`` (folders separated by ``os.pathsep``; models not in the catalog are found
   there too, unchecked: one's own zoo), the checkout's ``saved_models/`` and ``artifacts/`` (a clone works
   offline), and the cache ``$VAE_ZOO_HOME/models/`` (``vae_zoo.io.artifacts``);
2. else it is fetched into the cache from ``$VAE_ZOO_MIRROR`` (folders or http(s) servers, comma-separated),
   the local folders above, then the catalog's ``base_url``.

Each is a zoo model folder (``model.keras``, ``card.json``, ``samples.png``, ``README.md``): the layout of a
Hugging Face Hub model repository. Loading runs no pickled code.
"""

import fnmatch
import functools
import json
import os
from pathlib import Path

from vae_zoo.errors import ModelFileError, unknown_name
from vae_zoo.io import artifacts
from vae_zoo.io.cards import MODEL_FILE, read_card

CATALOG_FILE = Path(__file__).resolve().parents[1] / "pretrained.json"
# Where a checkout keeps models: saved_models/ (those in git) and artifacts/ (published since, kept out of git).
REPOSITORY_ZOO = Path(__file__).resolve().parents[2] / "saved_models"
REPOSITORY_ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
HUB_PREFIX = "hf://"


@functools.lru_cache(maxsize=4)
def _read_catalog(path, mtime_ns):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelFileError(f"the pretrained catalog {path} cannot be read: {err}") from None


def catalog():
    """{"base_url": ..., "models": {name: entry}} of the package's pretrained catalog."""
    if not CATALOG_FILE.is_file():
        return {"base_url": None, "models": {}}
    return _read_catalog(str(CATALOG_FILE), CATALOG_FILE.stat().st_mtime_ns)


def local_roots():
    extra = [Path(p) for p in os.environ.get("VAE_ZOO_PRETRAINED_DIR", "").split(os.pathsep) if p]
    return [*extra, REPOSITORY_ZOO, REPOSITORY_ARTIFACTS]


def _local_folders():
    """{name: folder} of every model folder in the local roots (first one wins)."""
    found = {}
    for root in local_roots():
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if (folder / MODEL_FILE).is_file():
                    found.setdefault(folder.name, folder)
    return found


def list_pretrained(pattern="*"):
    """Names of the pretrained models, e.g. ``vae.fashion_mnist``, matching a wildcard (nothing is fetched)."""
    names = set(catalog()["models"]) | set(_local_folders())
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def catalog_entry(name):
    """The catalog's entry for ``name`` (files, figures, size), or None for a model of one's own zoo."""
    return catalog()["models"].get(name)


def local_copy(name):
    """A folder that already holds ``name``'s files with the catalog's digests (a local root or the cache), or None."""
    entry = catalog_entry(name)
    if entry is None:
        return None
    for root in (*local_roots(), artifacts.cache_home() / "models"):
        if artifacts.holds(root / name, entry["files"]):
            return root / name
    return None


def pretrained_folder(name):
    """A local folder holding ``name``'s files, checked against the catalog; fetched into the cache if needed."""
    if str(name).startswith(HUB_PREFIX):
        return from_hub(str(name)[len(HUB_PREFIX):])
    entry = catalog_entry(name)
    local = _local_folders()
    if entry is None:
        if name not in local:
            raise unknown_name("pretrained model", name, list_pretrained())
        return local[name]  # one's own zoo: not in the catalog; its card is checked when it loads
    found = local_copy(name)
    if found is not None:
        return found
    sources = [*artifacts.mirrors(), *(str(root) for root in local_roots() if (root / name).is_dir())]
    if catalog().get("base_url"):
        sources.append(catalog()["base_url"])
    return artifacts.fetch(name, entry["files"], sources)


def from_hub(repo_id):
    """A Hugging Face Hub model repository of the zoo's layout, downloaded into the cache by huggingface_hub."""
    try:
        from huggingface_hub import snapshot_download  # lazy: an optional dependency, for hf:// names only
    except ImportError:
        raise ModelFileError(f"hf://{repo_id} needs huggingface_hub: pip install huggingface_hub") from None
    try:
        folder = Path(snapshot_download(repo_id=repo_id, cache_dir=str(artifacts.cache_home() / "hub")))
    except Exception as err:  # huggingface_hub's own errors (not found, offline, gated)
        raise ModelFileError(f"hf://{repo_id} could not be fetched: {' '.join(str(err).split())[:300]}") from None
    if not (folder / MODEL_FILE).is_file():
        raise ModelFileError(f"hf://{repo_id} holds no {MODEL_FILE}; a zoo model repository holds {MODEL_FILE} and card.json")
    return folder


def load_pretrained(name):
    """The pretrained model ``name``, ready to use (its card: ``pretrained_card(name)``); fetched on first use."""
    from vae_zoo.io.saving import load  # lazy: saving imports TensorFlow; listing the zoo does not need it

    return load(pretrained_folder(name))


def download(name):
    """Fetch ``name`` into the cache (or find it locally, checked); returns its folder."""
    return pretrained_folder(name)


def pretrained_card(name):
    return read_card(pretrained_folder(name))


def resolve(dir_or_name):
    """A model folder given a path or, if no such path exists, a pretrained model's name (or an hf:// name)."""
    path = Path(dir_or_name)
    if str(dir_or_name).startswith(HUB_PREFIX):
        return pretrained_folder(str(dir_or_name))
    if path.exists() or os.sep in str(dir_or_name):
        return path
    return pretrained_folder(str(dir_or_name))
