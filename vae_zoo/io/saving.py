"""A saved zoo model is a folder: ``model.keras``, ``card.json`` and ``samples.png``.

Saving writes into a temporary sibling folder and moves it into place only
once everything is written, so a failed save never leaves a half-written
model, and never destroys the one that was there before. Loading goes through
Keras' safe mode (no pickled code runs) and first checks that the archive holds
a vae_zoo model at all.
"""

import datetime
import hashlib
import io
import json
import os
import platform
import shutil
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import vae_zoo
from vae_zoo.errors import DivergenceError, ModelFileError, VaeZooError
from vae_zoo.data.modalities import get_modality
from vae_zoo.io import folders, strict_json
from vae_zoo.io.cards import CARD_FILE, MODEL_FILE, read_card
from vae_zoo.models.base import to_json
from vae_zoo.models.sizing import check_depth, check_size
from vae_zoo.registry import get_model_class, hyperparameter_defaults, list_models

# The member of a .keras archive that holds the weights.
WEIGHTS_MEMBER = "model.weights.h5"


def library_versions():
    return {
        "vae_zoo": vae_zoo.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow_probability": tfp.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def hardware():
    """The machine a run trains on, for its card: CPU model, the CPUs this process may use, the threads TensorFlow
    runs its ops on (fewer than the CPUs when a run is pinned, e.g. to share a machine), and any GPUs."""
    cpu = platform.processor() or platform.machine()
    try:  # Linux names the CPU model here; platform.processor() often gives only the architecture
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = [tf.config.experimental.get_device_details(d).get("device_name", d.name)
            for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu, "cpus": cpus, "threads": tensorflow_threads(cpus), "gpus": gpus}


def tensorflow_threads(cpus):
    """TensorFlow's intra-op thread count: set through tf.config or TF_NUM_INTRAOP_THREADS, else one per CPU."""
    configured = tf.config.threading.get_intra_op_parallelism_threads()
    if configured:
        return int(configured)
    try:
        return int(os.environ["TF_NUM_INTRAOP_THREADS"]) or cpus
    except (KeyError, ValueError):
        return cpus


def base_card(model):
    """What every card states about a model, whoever trained it."""
    return {
        "model": model.registered_name,
        "config": model.get_config(),
        "parameters": int(model.count_params()),
        "weights_sha256": weights_digest(model),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }


def weights_digest(model):
    """SHA-256 of every weight's shape and bytes, in the model's order: the card's proof that it describes these weights."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        array = np.ascontiguousarray(weight)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


STORAGE_DTYPES = ("float32", "float16")


def rounded_to(weights, dtype):
    """Float32 ``weights`` rounded to ``dtype`` and back: the values a model stored in ``dtype`` loads with."""
    return [w.astype(dtype).astype(w.dtype) if w.dtype == np.float32 else w for w in weights]


def store_weights_as(keras_file, dtype):
    """Rewrite a ``.keras`` file's float32 weight arrays in ``dtype``, in place; Keras loads them back into float32
    variables as they are. Every other array, attribute and member of the archive is copied unchanged."""
    keras_file = Path(keras_file)
    with zipfile.ZipFile(keras_file) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    weights = next(data for info, data in members if info.filename == WEIGHTS_MEMBER)
    rewritten = io.BytesIO()
    with h5py.File(io.BytesIO(weights), "r") as source, h5py.File(rewritten, "w") as target:
        def copy(name, item):
            if isinstance(item, h5py.Dataset):
                array = item[()]
                target.create_dataset(name, data=array.astype(dtype) if array.dtype == np.float32 else array)
            else:
                target.require_group(name)
            target[name].attrs.update(dict(item.attrs))
        source.visititems(copy)
        target.attrs.update(dict(source.attrs))
    with zipfile.ZipFile(keras_file, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            archive.writestr(info, rewritten.getvalue() if info.filename == WEIGHTS_MEMBER else data)


def save(model, folder, card=None, overwrite=False, samples=64, seed=0, attach=None, weights_dtype="float32"):
    """Save ``model`` as a zoo folder; ``card`` adds to (and overrides) the base card.

    ``samples`` is the number of prior samples drawn into ``samples.png`` (0 for none; the model's modality
    decides the file: a text model writes at most 16 sentences into ``samples.txt``).
    ``attach`` maps names in the folder to existing files or folders to move in
    (training logs, for example). Non-finite weights are refused: a diverged
    model is never saved as if it were a good one. ``weights_dtype="float16"``
    stores the weights in half the space; the model's weights must already hold
    values that float16 represents exactly (``rounded_to``), so that the card
    describes the model as it loads.
    """
    folder = Path(folder)
    if weights_dtype not in STORAGE_DTYPES:
        raise ValueError(f"weights_dtype must be one of {', '.join(STORAGE_DTYPES)}, got {weights_dtype!r}")
    if weights_dtype != "float32":
        weights = model.get_weights()
        if not all(np.array_equal(w, r) for w, r in zip(weights, rounded_to(weights, weights_dtype))):
            raise ValueError(f"not saving {folder} in {weights_dtype}: the model's weights are not {weights_dtype} values; "
                             f"round them first (vae_zoo.io.saving.rounded_to) and measure the model as it will load")
    with folders.exclusive(folder):
        folders.recover(folder)
        if folder.exists() and not overwrite:
            raise ModelFileError(f"{folder} already exists; choose another folder, or replace it with --overwrite (overwrite=True in Python)")
        bad = model.nonfinite_weights()
        if bad:
            raise DivergenceError(f"not saving {folder}: {len(bad)} weight tensors hold NaN or infinity (first: {bad[0]})")
        staging = folders.staging_folder(folder)
        try:
            model.save(staging / MODEL_FILE)
            full_card = {**base_card(model), **(card or {})}
            if weights_dtype != "float32":
                store_weights_as(staging / MODEL_FILE, weights_dtype)
                full_card["storage"] = {"weights_dtype": weights_dtype,
                                        "note": f"weights stored in {weights_dtype}, loaded into float32 variables"}
            if samples and model.can("sample"):  # a PNG grid (samples.png); for a text model, 16 sentences (samples.txt)
                full_card.update(get_modality(model.modality).save_folder_samples(model, staging, samples, seed=seed))
            (staging / CARD_FILE).write_text(strict_json.dumps(full_card, indent=2) + "\n")
            for name, source in (attach or {}).items():
                if Path(source).exists():
                    shutil.move(str(source), str(staging / name))
            folders.move_into_place(staging, folder)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return folder


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


MAX_CONFIG_BYTES = 10 * 1024 * 1024


def _check_archive(path):
    """Refuse files that are not Keras archives, hold a model from outside the zoo, or ask for too many weights.

    The size is found from the config alone (``models.sizing``), before Keras allocates anything.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo("config.json").file_size > MAX_CONFIG_BYTES:
                raise ModelFileError(f"{path} has a config of over {MAX_CONFIG_BYTES:,} bytes; a zoo model's is a few kilobytes")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise ModelFileError(f"{path} is not a readable .keras archive (corrupt, truncated, or another format)") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path} is not a Keras model archive")
    registered = str(config.get("registered_name") or config.get("class_name"))
    package, _, name = registered.partition(">")
    if package != "vae_zoo" or name not in list_models():
        raise ModelFileError(f"{path} holds a {registered!r}, not a vae_zoo model; zoo models are: {', '.join(list_models())}")
    cls = get_model_class(name)
    try:
        check_depth(config.get("config") or {}, f"the model in {path}")
        check_size(lambda: cls.from_config(config.get("config") or {}), f"the model in {path}")
    except ModelFileError:
        raise
    except VaeZooError as err:  # the size limit: its message names the file
        raise ModelFileError(str(err)) from None
    except Exception as err:  # a config the class cannot be built from
        raise ModelFileError(f"{path} holds a config that does not build a {name}: {' '.join(str(err).split())}") from None


def check_card(model, card, folder):
    """Raise ``ModelFileError`` naming the first card field that disagrees with the loaded model."""
    if not card:
        return
    checks = [("model", card.get("model"), model.registered_name),
              ("parameters", card.get("parameters"), int(model.count_params()))]
    # Cards written before vae_zoo 0.2.1 have no digest, and 0.1 configs are upgraded on load.
    if "weights_sha256" in card:
        # A card written before an argument existed lacks it; the model was built with its default.
        stated_config = {**hyperparameter_defaults(type(model)), **(card.get("config") or {})}
        # Arguments the class has retired are dropped on load (``from_config``), so the card's may still hold them.
        stated_config = {k: v for k, v in stated_config.items() if k not in type(model).retired_arguments}
        checks += [("config", to_json(stated_config), to_json(model.get_config())),
                   ("weights_sha256", card["weights_sha256"], weights_digest(model))]
    for field, stated, actual in checks:
        if stated != actual:
            shown = "differs" if field == "config" else f"says {stated!r}, the model has {actual!r}"
            raise ModelFileError(f"{Path(folder) / CARD_FILE} does not describe {model_path(folder)}: its field {field!r} {shown}")


def load(folder):
    """Load a zoo model from its folder (or from a ``.keras`` file). No pickled code is run.

    An interrupted save or replacement at ``folder`` is recovered first, a
    staging folder is refused, and the card must agree with the model.
    """
    folder = Path(folder)
    folders.refuse_unfinished(folder if folder.suffix != ".keras" else folder.parent)
    if folder.suffix != ".keras":
        folders.recover(folder)
    path = model_path(folder)
    _check_archive(path)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # Keras raises many types for damaged archives; name the file.
        raise ModelFileError(f"cannot load {path}: {' '.join(str(err).split())[:300]}") from None
    if path.parent == folder:
        check_card(model, read_card(folder), folder)
    return model
