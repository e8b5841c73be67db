"""A saved zoo model is a folder: ``model.keras``, ``card.json`` and ``samples.png``.

Saving writes into a temporary sibling folder and moves it into place only
once everything is written, so a failed save never leaves a half-written
model, and never destroys the one that was there before. Loading goes through
Keras' safe mode (no pickled code runs) and first checks that the archive holds
a vae_zoo model at all.
"""

import datetime
import json
import platform
import shutil
import uuid
import zipfile
from pathlib import Path

import keras

from vae_zoo.errors import ModelFileError
from vae_zoo.evaluation.plotting import save_image_grid

MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
SAMPLES_FILE = "samples.png"


def library_versions():
    import numpy
    import tensorflow as tf
    import tensorflow_probability as tfp

    import vae_zoo

    return {
        "vae_zoo": vae_zoo.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow_probability": tfp.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def base_card(model):
    """What every card states about a model, whoever trained it."""
    return {
        "model": model.registered_name,
        "config": model.get_config(),
        "parameters": int(model.count_params()),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }


def save(model, folder, card=None, overwrite=False, samples=64, seed=0, attach=None):
    """Save ``model`` as a zoo folder; ``card`` adds to (and overrides) the base card.

    ``samples`` is the number of prior samples drawn into ``samples.png`` (0 for none).
    ``attach`` maps names in the folder to existing files or folders to move in
    (training logs, for example).
    """
    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise ModelFileError(f"{folder} already exists; choose another folder or pass overwrite=True")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        model.save(staging / MODEL_FILE)
        full_card = {**base_card(model), **(card or {})}
        if samples and model.can("sample"):
            drawn = save_image_grid(model.sample(samples, seed=seed), staging / SAMPLES_FILE, title=f"{model.registered_name}: samples from the prior")
            if drawn:
                full_card["sample_image"] = SAMPLES_FILE
        (staging / CARD_FILE).write_text(json.dumps(full_card, indent=2, sort_keys=False) + "\n")
        for name, source in (attach or {}).items():
            if Path(source).exists():
                shutil.move(str(source), str(staging / name))
        move_into_place(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def move_into_place(staging, folder):
    if not folder.exists():
        staging.rename(folder)
        return
    backup = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
    folder.rename(backup)
    try:
        staging.rename(folder)
    except BaseException:
        backup.rename(folder)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def model_path(folder):
    """The ``.keras`` file of a zoo folder (or the path itself if it is a ``.keras`` file)."""
    path = Path(folder)
    if path.is_file():
        return path
    if path.is_dir():
        if (path / MODEL_FILE).is_file():
            return path / MODEL_FILE
        raise ModelFileError(f"{path} is not a saved zoo model: it has no {MODEL_FILE}")
    raise ModelFileError(f"no saved model at {path}")


def read_card(folder):
    """The model card of a zoo folder, or an empty dict if it has none."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path} is not valid JSON: {err}") from None


def _check_archive(path):
    """Refuse files that are not Keras archives, or that hold a model from outside the zoo."""
    from vae_zoo.registry import list_models

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"{path} is not a readable .keras archive (corrupt, truncated, or another format)") from None
    registered = str(config.get("registered_name") or config.get("class_name"))
    package, _, name = registered.partition(">")
    if package != "vae_zoo" or name not in list_models():
        raise ModelFileError(f"{path} holds a {registered!r}, not a vae_zoo model; zoo models are: {', '.join(list_models())}")


def load(folder):
    """Load a zoo model from its folder (or from a ``.keras`` file). No pickled code is run."""
    path = model_path(folder)
    _check_archive(path)
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # Keras raises many types for damaged archives; name the file.
        raise ModelFileError(f"cannot load {path}: {err}") from None
