"""Recipes: one YAML file describes a whole training run, as data.

    model:     {name: vae, latent_dim: 20, ...}     # create_model(name, **kwargs)
    data:      {name: mnist_mini, binarize: dynamic, batch_size: 128}
    optimizer: {name: adam, learning_rate: 0.001}
    training:  {epochs: 50, jit_compile: auto, monitor: val_loss, early_stopping: {patience: 10},  # or true | false
                distribute: none, mixed_precision: float32,   # mirrored | multi_worker; mixed_bfloat16 | mixed_float16 | auto
                steps_per_execution: auto}                    # or a count of steps per call into TensorFlow
    callbacks: [{name: ..., ...}]
    search:    {...}                                # hyperparameter search space (vae_zoo.tuning)
    smoke:     {training.epochs: 1, data.limit: 512} # dotted overrides applied by --smoke

Overrides use dotted paths: ``--set model.latent_dim=32``; values are parsed as YAML.
"""

import copy
import re
import time
from pathlib import Path

import keras
import yaml

from vae_zoo import data as data_module
from vae_zoo import schema
from vae_zoo.errors import RecipeError, VaeZooError, unknown_name
from vae_zoo.registry import create_model
from vae_zoo.training import compilation, recipe_schema
from vae_zoo.training.callbacks import make_callback

# Metrics that improve upwards; every other monitored quantity (losses, KL, ...) improves downwards.
HIGHER_IS_BETTER = ("elbo", "iwae_bound", "perplexity", "active_units", "accuracy", "auroc")
DEFAULT_SMOKE = {"training.epochs": 1, "data.limit": 512}
# A recipe is a page of YAML; anything much bigger is a mistake or an attack.
MAX_RECIPE_BYTES = 256 * 1024


# --------------------------------------------------------------------------- reading


class RecipeLoader(yaml.SafeLoader):
    """Safe YAML with three changes for recipes.

    ``1e-3`` reads as the float everyone means (YAML 1.1 reads a string); a
    duplicate key is an error, not a silent "last one wins"; aliases
    (``*name``) are refused, so a few hundred bytes cannot expand into
    gigabytes (the "billion laughs").
    """

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in recipes; write the value out",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep)


class RecipeDumper(yaml.SafeDumper):
    """Writes what ``RecipeLoader`` reads back unchanged: a string such as ``"1e5"`` is quoted."""


EXPONENT_FLOAT = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
for _yaml_class in (RecipeLoader, RecipeDumper):
    _yaml_class.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789."))


def load_yaml(text):
    return yaml.load(text, Loader=RecipeLoader)


def dump_yaml(recipe):
    return yaml.dump(recipe, Dumper=RecipeDumper, sort_keys=False)


def _yaml_problem(err):
    """A YAML error on one line: the problem and where it is."""
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err)
    return " ".join(f"{problem}{where}".split())


def read(path, overrides=(), smoke=False):
    """Read, override and validate a recipe file. Returns a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"no recipe file at {path}")
    size = path.stat().st_size
    if size > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path} is {size:,} bytes; a recipe is at most {MAX_RECIPE_BYTES:,}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecipeError(f"{path} is not a UTF-8 text file (byte {err.start} cannot be decoded)") from None
    try:
        recipe = load_yaml(text)
    except yaml.YAMLError as err:
        raise RecipeError(f"{path} is not a valid recipe: {_yaml_problem(err)}") from None
    return parse(recipe, overrides, smoke, source=str(path))


def parse(recipe, overrides=(), smoke=False, source="recipe"):
    """Validate a recipe given as a dict with its ``--set`` overrides; with ``smoke``, also the smoke run's.

    The recipe as written is always validated, so ``--smoke`` cannot pass a
    recipe the real run would refuse; the smoke overrides are then applied
    and the result validated again.
    """
    if not isinstance(recipe, dict):
        raise RecipeError(f"{source} must be a mapping of sections (model, data, optimizer, training, ...), got {type(recipe).__name__}")
    full = copy.deepcopy(recipe)
    for override in overrides:
        set_dotted(full, *parse_override(override))
    recipe_schema.validate(full, source)
    if not smoke:
        return full
    smoked = copy.deepcopy(recipe)
    for key, value in {**DEFAULT_SMOKE, **(recipe.get("smoke") or {})}.items():
        set_dotted(smoked, key, value)
    for override in overrides:
        set_dotted(smoked, *parse_override(override))
    recipe_schema.validate(smoked, f"{source} with its smoke overrides")
    return smoked


def parse_override(text):
    """``"model.latent_dim=32"`` -> ``("model.latent_dim", 32)``."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"an override must look like section.key=value, got {text!r}")
    try:
        return key.strip(), load_yaml(value)
    except yaml.YAMLError as err:
        raise RecipeError(f"cannot parse the value of override {text!r}: {_yaml_problem(err)}") from None


def set_dotted(recipe, key, value):
    parts = key.split(".")
    if parts[0] not in recipe_schema.SECTIONS:
        raise RecipeError(f"override {key!r}: {unknown_name('section', parts[0], recipe_schema.SECTIONS)}")
    if any(not part for part in parts):
        raise RecipeError(f"override {key!r} has an empty part")
    node = recipe
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise RecipeError(f"override {key!r}: {'.'.join(parts[: depth + 1])} is not a mapping")
        node = child
    node[parts[-1]] = value


def _section(recipe, name):
    return recipe.get(name) or {}


# --------------------------------------------------------------------------- building


def build_data(recipe):
    options = {"binarize": "none", **_section(recipe, "data")}
    data = data_module.load(**options)
    check_not_empty(data, options)
    return data


def check_not_empty(data, options):
    """Refuse data with an empty split before training: an empty training stream never ends an epoch (a run
    with every class excluded once spun for minutes after 'Epoch 1/2')."""
    for split in ("train", "validation", "test"):
        if data.count(split) == 0:
            filters = [f"data.{key}" for key in ("exclude_classes", "style") if options.get(key)]
            after = f" after {' and '.join(filters)}" if filters else ""
            raise RecipeError(f"the {split} split of data {data.name!r} is empty{after}; there is nothing to "
                              f"{'train on' if split == 'train' else 'validate with' if split == 'validation' else 'test on'}")


def build_model(recipe, data=None):
    """The recipe's model, built for ``data`` (its shape, and its classes for a conditional model)."""
    kwargs = dict(recipe["model"])
    name = kwargs.pop("name")
    if data is not None:
        given = kwargs.setdefault("data_shape", list(data.data_shape))
        if tuple(given) != tuple(data.data_shape):
            raise RecipeError(f"model.data_shape {tuple(given)} does not match the data {tuple(data.data_shape)}")
        if data.spec.vocabulary is not None:  # token models keep the vocabulary they were trained with
            kwargs.setdefault("vocabulary", list(data.spec.vocabulary))
    try:
        model = create_model(name, **kwargs)
    except VaeZooError:
        raise
    except (TypeError, ValueError) as err:
        raise RecipeError(f"cannot build model {name!r} from the recipe: {err}") from None
    if data is not None:
        model.check_fits(data)
    return model


def build_optimizer(recipe):
    spec = dict(recipe.get("optimizer") or {})
    name = spec.pop("name", "adam")
    defaults = schema.signature_defaults(recipe_schema.optimizer_class(name))
    # YAML and --set read "1" as an integer, which the schema accepts as a number and Keras refuses as a learning
    # rate: an argument whose default is a float gets a float.
    spec = {key: float(value) if isinstance(defaults.get(key), float) and type(value) is int else value
            for key, value in spec.items()}
    try:
        return keras.optimizers.get({"class_name": name, "config": spec})
    except (TypeError, ValueError) as err:
        raise RecipeError(f"bad optimizer {name!r}: {err}") from None


def training_options(recipe):
    options = {**recipe_schema.DEFAULT_TRAINING, **(recipe.get("training") or {})}
    if not options.get("mode"):
        options["mode"] = monitor_mode(options["monitor"])
    return options


def monitor_mode(metric):
    """``"max"`` for metrics that improve upwards (the ELBO, ...), ``"min"`` for losses."""
    name = metric[4:] if metric.startswith("val_") else metric
    return "max" if name in HIGHER_IS_BETTER else "min"


# The most training steps that ``steps_per_execution: auto`` runs per call into TensorFlow.
AUTO_STEPS_PER_EXECUTION = 32


def steps_per_execution(recipe, steps_per_epoch=None):
    """The recipe's ``training.steps_per_execution``, with ``auto`` resolved for an epoch of ``steps_per_epoch``.

    ``auto`` is the largest divisor of the epoch up to 32 (1 when the epoch's
    length is unknown): Keras runs a whole number of executions per epoch, so
    with a count that does not divide the epoch it would train extra steps.
    tools/bench_speed.py measures what it buys.
    """
    value = training_options(recipe)["steps_per_execution"]
    if value != "auto":
        return int(value)
    if not steps_per_epoch:
        return 1
    return max(d for d in range(1, min(AUTO_STEPS_PER_EXECUTION, int(steps_per_epoch)) + 1) if steps_per_epoch % d == 0)


def compile_model(model, recipe, steps_per_epoch=None):
    """Compile ``model`` with the recipe's optimizer, its XLA setting (``auto``: training/compilation.py) and
    ``steps_per_execution``; what was chosen and why is left on ``model.compile_choice`` for the card."""
    options = training_options(recipe)
    use_xla, why = compilation.choose_jit_compile(model, options["jit_compile"])
    steps = steps_per_execution(recipe, steps_per_epoch)
    model.compile(optimizer=build_optimizer(recipe), jit_compile=use_xla, steps_per_execution=steps)
    model.compile_choice = {"jit_compile": use_xla, "jit_compile_reason": why, "steps_per_execution": steps,
                            "mixed_precision": keras.config.dtype_policy().name,
                            "mixed_precision_reason": compilation.choose_mixed_precision(options["mixed_precision"])[1]}
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
