"""Recipes: one YAML file describes a whole training run, as data.

    model:     {name: vae, latent_dim: 20, ...}     # create_model(name, **kwargs)
    data:      {name: mnist_mini, binarize: dynamic, batch_size: 128}
    optimizer: {name: adam, learning_rate: 0.001}
    training:  {epochs: 50, jit_compile: true, monitor: val_loss, early_stopping: {patience: 10},
                distribute: none, mixed_precision: float32}   # mirrored | multi_worker; mixed_bfloat16 | mixed_float16
    callbacks: [{name: ..., ...}]
    search:    {...}                                # hyperparameter search space (vae_zoo.tuning)
    smoke:     {training.epochs: 1, data.limit: 512} # dotted overrides applied by --smoke

Overrides use dotted paths: ``--set model.latent_dim=32``; values are parsed as YAML.
"""

import copy
import inspect
import re
import time
from pathlib import Path

import keras
import yaml

from vae_zoo import data as data_module
from vae_zoo.training.callbacks import make_callback
from vae_zoo.errors import RecipeError, VaeZooError, unknown_name
from vae_zoo.registry import create_model, get_model_class

SECTIONS = ("model", "data", "optimizer", "training", "callbacks", "search", "smoke")
TRAINING_KEYS = ("epochs", "jit_compile", "monitor", "mode", "early_stopping", "seed", "steps_per_execution", "verbose",
                 "distribute", "mixed_precision")
# training.distribute: how the runner spreads a run (tf.distribute); none runs in this process on its default device.
DISTRIBUTE = ("none", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Metrics that improve upwards; every other monitored quantity (losses, KL, ...) improves downwards.
HIGHER_IS_BETTER = ("elbo", "iwae_bound", "perplexity", "active_units", "accuracy", "auroc")
DEFAULT_TRAINING = {"epochs": 10, "jit_compile": True, "monitor": "val_loss", "early_stopping": None, "seed": 0, "steps_per_execution": 1,
                    "distribute": "none", "mixed_precision": "float32"}
DEFAULT_SMOKE = {"training.epochs": 1, "data.limit": 512}


# --------------------------------------------------------------------------- reading


class RecipeLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string; recipes read it as the float everyone means."""


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def load_yaml(text):
    return yaml.load(text, Loader=RecipeLoader)


def read(path, overrides=(), smoke=False):
    """Read, override and validate a recipe file. Returns a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"no recipe file at {path}")
    try:
        recipe = load_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise RecipeError(f"{path} is not valid YAML: {err}") from None
    return parse(recipe, overrides, smoke, source=str(path))


def parse(recipe, overrides=(), smoke=False, source="recipe"):
    """Validate a recipe given as a dict, after ``--smoke`` and ``--set`` overrides."""
    if not isinstance(recipe, dict):
        raise RecipeError(f"{source} must be a mapping of sections ({', '.join(SECTIONS)}), got {type(recipe).__name__}")
    recipe = copy.deepcopy(recipe)
    unknown = [k for k in recipe if k not in SECTIONS]
    if unknown:
        raise RecipeError(f"{source}: {unknown_name('section', unknown[0], SECTIONS)}")
    if smoke:
        smoke_overrides = {**DEFAULT_SMOKE, **(recipe.get("smoke") or {})}
        for key, value in smoke_overrides.items():
            set_dotted(recipe, key, value)
    for override in overrides:
        key, value = parse_override(override)
        set_dotted(recipe, key, value)
    validate(recipe, source)
    return recipe


def parse_override(text):
    """``"model.latent_dim=32"`` -> ``("model.latent_dim", 32)``."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"an override must look like section.key=value, got {text!r}")
    try:
        return key.strip(), load_yaml(value)
    except yaml.YAMLError as err:
        raise RecipeError(f"cannot parse the value of override {text!r}: {err}") from None


def set_dotted(recipe, key, value):
    parts = key.split(".")
    if parts[0] not in SECTIONS:
        raise RecipeError(f"override {key!r}: {unknown_name('section', parts[0], SECTIONS)}")
    node = recipe
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise RecipeError(f"override {key!r}: {'.'.join(parts[: depth + 1])} is not a mapping")
        node = child
    node[parts[-1]] = value


def _section(recipe, name, source, required=False):
    value = recipe.get(name)
    if value is None:
        if required:
            raise RecipeError(f"{source} has no '{name}' section")
        return {}
    if not isinstance(value, dict):
        raise RecipeError(f"{source}: section '{name}' must be a mapping, got {type(value).__name__}")
    return value


def validate(recipe, source="recipe"):
    """Raise ``RecipeError`` naming the first problem found in a recipe."""
    model = _section(recipe, "model", source, required=True)
    if not isinstance(model.get("name"), str):
        raise RecipeError(f"{source}: model.name is missing (the registered model to train)")
    try:
        from vae_zoo.registry import hyperparameter_defaults

        accepted = hyperparameter_defaults(get_model_class(model["name"]))
    except VaeZooError as err:
        raise RecipeError(f"{source}: model.name: {err}") from None
    for key in model:
        if key != "name" and key not in accepted:
            raise RecipeError(f"{source}: model.{key}: {unknown_name('argument for ' + model['name'], key, accepted)}")

    data = _section(recipe, "data", source, required=True)
    load_args = set(inspect.signature(data_module.load).parameters)
    for key in data:
        if key not in load_args:
            raise RecipeError(f"{source}: data.{key}: {unknown_name('data option', key, load_args)}")
    if "binarize" in data and data["binarize"] not in data_module.BINARIZATIONS:
        raise RecipeError(f"{source}: data.binarize: {unknown_name('binarization', data['binarize'], data_module.BINARIZATIONS)}")

    optimizer = _section(recipe, "optimizer", source)
    if not isinstance(optimizer.get("name", "adam"), str):
        raise RecipeError(f"{source}: optimizer.name must be an optimizer's name (e.g. adam), got {optimizer['name']!r}")

    training = _section(recipe, "training", source)
    for key in training:
        if key not in TRAINING_KEYS:
            raise RecipeError(f"{source}: training.{key}: {unknown_name('training option', key, TRAINING_KEYS)}")
    for key, allowed in (("distribute", DISTRIBUTE), ("mixed_precision", PRECISIONS)):
        if key in training and training[key] not in allowed:
            raise RecipeError(f"{source}: training.{key}: {unknown_name(key.replace('_', ' ') + ' setting', training[key], allowed)}")
    epochs = training.get("epochs", DEFAULT_TRAINING["epochs"])
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise RecipeError(f"{source}: training.epochs must be a positive integer, got {epochs!r}")

    callbacks = recipe.get("callbacks") or []
    if not isinstance(callbacks, list):
        raise RecipeError(f"{source}: callbacks must be a list of mappings with a 'name'")
    for spec in callbacks:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise RecipeError(f"{source}: each callback must be a mapping with a 'name', got {spec!r}")
    for name in ("search", "smoke"):
        _section(recipe, name, source)


# --------------------------------------------------------------------------- building


def build_data(recipe):
    options = {"binarize": "none", **_section(recipe, "data", "recipe")}
    return data_module.load(**options)


def build_model(recipe, data_shape=None):
    kwargs = dict(recipe["model"])
    name = kwargs.pop("name")
    if data_shape is not None:
        given = kwargs.setdefault("data_shape", list(data_shape))
        if tuple(given) != tuple(data_shape):
            raise RecipeError(f"model.data_shape {tuple(given)} does not match the data {tuple(data_shape)}")
    try:
        return create_model(name, **kwargs)
    except VaeZooError:
        raise
    except (TypeError, ValueError) as err:
        raise RecipeError(f"cannot build model {name!r} from the recipe: {err}") from None


def build_optimizer(recipe):
    spec = dict(recipe.get("optimizer") or {})
    name = spec.pop("name", "adam")
    try:
        return keras.optimizers.get({"class_name": name, "config": spec})
    except (TypeError, ValueError) as err:
        raise RecipeError(f"bad optimizer {name!r}: {err}") from None


def training_options(recipe):
    options = {**DEFAULT_TRAINING, **(recipe.get("training") or {})}
    if not options.get("mode"):
        options["mode"] = monitor_mode(options["monitor"])
    return options


def monitor_mode(metric):
    """``"max"`` for metrics that improve upwards (the ELBO, ...), ``"min"`` for losses."""
    name = metric[4:] if metric.startswith("val_") else metric
    return "max" if name in HIGHER_IS_BETTER else "min"


def compile_model(model, recipe):
    options = training_options(recipe)
    model.compile(
        optimizer=build_optimizer(recipe),
        jit_compile=bool(options["jit_compile"]),
        steps_per_execution=int(options["steps_per_execution"]),
    )
    return model


def build_callbacks(recipe, data=None):
    """The recipe's own callbacks and its early stopping (the runner adds checkpoints and logs)."""
    options = training_options(recipe)
    # Callbacks that watch validation data get a bounded sample of it.
    images, labels = data.take("validation", 1000) if data is not None else (None, None)
    callbacks = [make_callback(spec, images, labels) for spec in recipe.get("callbacks") or []]
    if options["early_stopping"]:
        stopping = {"monitor": options["monitor"], "mode": options["mode"], **options["early_stopping"]}
        callbacks.append(make_callback({"name": "early_stopping", **stopping}))
    return callbacks


def default_out_dir(recipe_path, smoke=False):
    stem = Path(recipe_path).stem
    parent = Path(recipe_path).parent.name
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{parent}_{stem}{'_smoke' if smoke else ''}-{stamp}"
