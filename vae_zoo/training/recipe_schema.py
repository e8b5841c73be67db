"""The recipe schema: every section, key, type and range, checked before anything runs.

``validate(recipe, source)`` raises one ``RecipeError`` that starts with the
recipe's file and the dotted key (``recipes/x.yaml: model.latent_dim must be
an integer >= 1 ..., got 20.7``). It checks values without coercing them, so
what is validated is exactly what runs. The model's arguments go through the
same checks as ``create_model`` (``vae_zoo.schema``), and its size through the
parameter limit.
"""

import inspect

import keras

from vae_zoo import data as data_module
from vae_zoo import schema
from vae_zoo.errors import ConfigError, RecipeError, UnknownNameError, VaeZooError, unknown_name
from vae_zoo.models.sizing import dry_build
from vae_zoo.registry import check_arguments, get_model_class, hyperparameter_defaults, list_models
from vae_zoo.schema import (
    boolean,
    choice,
    integer,
    mapping,
    optional,
    string,
)
from vae_zoo.training import schedules
from vae_zoo.training.callbacks import CALLBACKS

SECTIONS = ("model", "data", "optimizer", "training", "callbacks", "search", "smoke")
DISTRIBUTE = ("none", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16", "auto")
SEED = integer(0, 2**31 - 1)

def steps_per_execution(value, key):
    """``auto`` (the runner chooses) or a count of training steps per call into TensorFlow."""
    return value if value == "auto" else integer(1, 100_000)(value, key)


steps_per_execution.expected = "'auto' or an integer from 1 to 100,000"


def jit_compile(value, key):
    """``auto`` (training/compilation.py chooses per model and device), true or false."""
    if isinstance(value, bool) or value == "auto" and isinstance(value, str):
        return value
    raise ConfigError(f"{key} must be 'auto', true or false, got {value!r}")


jit_compile.expected = "'auto', true or false"

TRAINING = {
    "epochs": integer(1, 1_000_000),
    "jit_compile": jit_compile,
    "monitor": string,
    "mode": choice("min", "max"),
    "early_stopping": optional(mapping),
    "seed": SEED,
    "steps_per_execution": steps_per_execution,
    "verbose": choice(0, 1, 2, "auto"),
    "distribute": choice(*DISTRIBUTE),
    "mixed_precision": choice(*PRECISIONS),
    # A saved zoo folder or a pretrained model's name whose weights the run starts from (training/warm_start.py).
    "initial_weights": optional(string),
}
DEFAULT_TRAINING = {"epochs": 10, "jit_compile": "auto", "monitor": "val_loss", "early_stopping": None, "seed": 0, "steps_per_execution": "auto",
                    "distribute": "none", "mixed_precision": "float32", "initial_weights": None}

# The search section (training/tuning.py runs it): its tuners, the objectives with the metric each watches
# and its direction, and the defaults.
TUNERS = ("random", "bayesian", "hyperband")
OBJECTIVES = {"elbo": ("val_elbo", "max"), "nll": ("val_nll", "min"), "loss": ("val_loss", "min")}
DEFAULT_SEARCH = {"tuner": "random", "max_trials": 10, "epochs": 10, "objective": "elbo", "nll_k": 20,
                  "early_stopping": {"patience": 3}, "seed": 0, "jit_compile": "auto", "executions_per_trial": 1}
SEARCH_KEYS = (*DEFAULT_SEARCH, "parameters", "hyperband_factor")

SEARCH_RULES = {
    "max_trials": integer(1, 100_000),
    "epochs": integer(1, 1_000_000),
    "nll_k": integer(1, 100_000),
    "early_stopping": optional(mapping),
    "seed": SEED,
    "jit_compile": jit_compile,
    "executions_per_trial": integer(1, 1000),
    "hyperband_factor": integer(2, 100),
    "parameters": mapping,
}

# Keras callbacks' arguments that the runner sets itself.
RUNNER_SET = ("monitor", "mode", "validation_images", "validation_labels", "filepath")


def _fail(source, err):
    raise RecipeError(f"{source}: {err}") from None


def validate(recipe, source="recipe"):
    """Raise ``RecipeError`` naming the first problem in ``recipe`` (after its overrides)."""
    try:
        _validate(recipe)
    except RecipeError as err:
        _fail(source, err)
    except VaeZooError as err:  # ConfigError, UnknownNameError from the shared checks
        _fail(source, err)


def _validate(recipe):
    if not isinstance(recipe, dict):
        raise ConfigError(f"a recipe must be a mapping of sections ({', '.join(SECTIONS)}), got {type(recipe).__name__}")
    for key in recipe:
        if key not in SECTIONS:
            raise ConfigError(f"{key}: unknown section {key!r}.{schema.closest(key, SECTIONS)} Sections: {', '.join(SECTIONS)}.")
    for name in ("model", "data"):
        if recipe.get(name) is None:
            raise ConfigError(f"the recipe has no '{name}' section")
    for name in SECTIONS:
        if name != "callbacks" and recipe.get(name) is not None:
            mapping(recipe[name], name)
    # MultiWorkerMirroredStrategy must be created before TensorFlow's runtime starts, and a dry build
    # starts it: a multi-worker recipe's model is sized when the runner builds it, inside the strategy.
    dry_build = (recipe.get("training") or {}).get("distribute") != "multi_worker"
    model_class, metric_names = check_model(recipe["model"], dry_build, recipe["data"])
    check_data(recipe["data"], model_class)
    check_optimizer(recipe.get("optimizer") or {})
    monitors = [*metric_names, *(f"val_{name}" for name in metric_names)]
    check_training(recipe.get("training") or {}, monitors)
    check_callbacks(recipe.get("callbacks"), monitors)
    if recipe.get("search") is not None:
        check_search(recipe)
    for key in recipe.get("smoke") or {}:
        if not isinstance(key, str) or key.split(".")[0] not in SECTIONS or "." not in key:
            raise ConfigError(f"smoke: {key!r} is not a dotted key such as training.epochs")


def data_bound_arguments(cls, arguments, data_section):
    """A token model's size before its data is read: the data's largest vocabulary and its sentence length
    (the runner passes the real vocabulary when it builds the model)."""
    if not data_module.get_modality(cls.modality).token_ids or "vocabulary" in arguments or "vocabulary_size" in arguments:
        return arguments
    section = data_section if isinstance(data_section, dict) else {}
    source = data_module.SOURCES.get(section.get("name"))
    options = {**{name: option.default for name, option in source.schema().items()}, **section} if source else {}
    if "vocabulary_size" not in options or "max_length" not in options:
        return arguments  # not token data: check_data names an unknown source, the runner data that do not fit
    bound = {"vocabulary_size": options["vocabulary_size"]}
    if "data_shape" not in arguments:
        bound["data_shape"] = [int(options["max_length"]) + 2]
    return {**arguments, **bound}


def check_model(section, build=True, data_section=None):
    """The model class and the names it logs, once its arguments passed the model schema and size limit.

    With ``build=False`` the size is not checked and the logged names are the class's.
    """
    name = section.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"model.name must be the name of a registered model ({', '.join(list_models())}), got {name!r}")
    try:
        get_model_class(name)
    except VaeZooError as err:
        raise ConfigError(f"model.name: {err}") from None
    arguments = {k: v for k, v in section.items() if k != "name"}
    arguments = data_bound_arguments(get_model_class(name), arguments, data_section)
    cls = check_arguments(name, arguments, where="model", size=build)
    if not build:
        return cls, tuple(dict.fromkeys(("loss", *cls.metric_names)))
    names = dry_build(lambda: cls(**arguments), lambda model: model.metric_names)
    return cls, tuple(dict.fromkeys(("loss", *names)))


def check_data(section, model_class):
    """The data section: a registered source's name, and options its schema accepts (``DataSource.check_options``)."""
    mapping(section, "data")
    if "name" not in section:
        raise ConfigError(f"data.name is missing: one of {', '.join(data_module.list_datasets())}")
    name = section["name"]
    if not isinstance(name, str) or name not in data_module.SOURCES:
        raise UnknownNameError(f"data.name: {unknown_name('data set', name, data_module.SOURCES)}")
    if "vocabulary" in section:
        raise ConfigError("data.vocabulary is not a recipe setting: the vocabulary is built from the training split "
                          "(data.vocabulary_size, data.min_count) and saved with the model")
    data_module.get_source(name).check_options({k: v for k, v in section.items() if k != "name"}, where="data")
    if "labels" in model_class.capabilities and section.get("labels") is not True:
        raise ConfigError(f"data.labels must be true: {model_class.registered_name} is conditional and trains on (data, labels)")


def optimizer_classes():
    """Keras's optimizers by the lower-case names ``keras.optimizers.get`` accepts (no optimizer is built:
    building one starts TensorFlow's runtime, which a multi-worker run must configure first)."""
    classes = {}
    for attribute in dir(keras.optimizers):
        value = getattr(keras.optimizers, attribute)
        if isinstance(value, type) and issubclass(value, keras.optimizers.Optimizer) and value is not keras.optimizers.Optimizer \
                and attribute not in ("LossScaleOptimizer", "MultiOptimizer", "OptimizerMap"):
            classes[attribute.lower()] = value
    return classes


def optimizer_class(name):
    classes = optimizer_classes()
    if not isinstance(name, str) or name.lower() not in classes:
        raise ConfigError(f"optimizer.name: unknown optimizer {name!r}.{schema.closest(str(name).lower(), classes)} "
                          f"Available: {', '.join(sorted(classes))}.")
    return classes[name.lower()]


def check_optimizer(section):
    name = section.get("name", "adam")
    string(name, "optimizer.name")
    accepted = schema.signature_defaults(optimizer_class(name))
    schema.check_arguments(accepted, {k: v for k, v in section.items() if k != "name"}, "optimizer", f"optimizer {name!r}")


def check_monitor(value, key, monitors):
    string(value, key)
    if value not in monitors:
        raise ConfigError(f"{key}: the model logs no {value!r}.{schema.closest(value, monitors)} It logs: {', '.join(monitors)}.")


def check_training(section, monitors):
    # Only a key whose default is null (early_stopping) may be set to null.
    accepted = {key: DEFAULT_TRAINING.get(key, inspect.Parameter.empty) for key in TRAINING}
    schema.check_arguments(accepted, section, "training", "training", TRAINING)
    if "monitor" in section:
        check_monitor(section["monitor"], "training.monitor", monitors)
    stopping = section.get("early_stopping")
    if stopping:
        accepted = schema.signature_defaults(keras.callbacks.EarlyStopping, RUNNER_SET)
        schema.check_arguments(accepted, stopping, "training.early_stopping", "early stopping")


def check_callbacks(callbacks, monitors):
    if callbacks is None:
        return
    if not isinstance(callbacks, list):
        raise ConfigError(f"callbacks must be a list of mappings with a 'name', got {callbacks!r}"[:200])
    for index, spec in enumerate(callbacks):
        where = f"callbacks[{index}]"
        mapping(spec, where)
        name = spec.get("name")
        if not isinstance(name, str) or name not in CALLBACKS:
            raise ConfigError(f"{where}.name: unknown callback {name!r}.{schema.closest(name, CALLBACKS)} Available: {', '.join(sorted(CALLBACKS))}.")
        options = {k: v for k, v in spec.items() if k != "name"}
        if "monitor" in options:
            check_monitor(options.pop("monitor"), f"{where}.monitor", monitors)
        if "mode" in options:
            choice("min", "max", "auto")(options.pop("mode"), f"{where}.mode")
        cls = CALLBACKS[name]
        accepted = schema.signature_defaults(cls, RUNNER_SET)
        if name == "kl_annealing":
            schedule = options.pop("schedule", "sigmoid")
            choice(*schedules.SCHEDULES)(schedule, f"{where}.schedule")
            accepted = schema.signature_defaults(schedules.SCHEDULES[schedule], ("step",))
        schema.check_arguments(accepted, options, where, f"callback {name!r}")


def check_search(recipe):
    section = recipe["search"]
    accepted = {key: DEFAULT_SEARCH.get(key, inspect.Parameter.empty) for key in SEARCH_KEYS}
    rules = {**SEARCH_RULES, "tuner": choice(*TUNERS), "objective": choice(*OBJECTIVES)}
    schema.check_arguments(accepted, section, "search", "search", rules)
    search_options(recipe)


def search_options(recipe):
    """The recipe's search section with defaults, validated."""
    section = recipe.get("search") or {}
    for key in section:
        if key not in SEARCH_KEYS:
            raise RecipeError(f"search.{key}: {unknown_name('search option', key, SEARCH_KEYS)}")
    options = {**DEFAULT_SEARCH, **section}
    if options["tuner"] not in TUNERS:
        raise RecipeError(f"search.tuner: {unknown_name('tuner', options['tuner'], TUNERS)}")
    if options["objective"] not in OBJECTIVES:
        raise RecipeError(f"search.objective: {unknown_name('objective', options['objective'], OBJECTIVES)}")
    parameters = options.get("parameters") or {}
    if not isinstance(parameters, dict) or not parameters:
        raise RecipeError("search.parameters must map hyperparameter names to ranges, e.g. beta: {type: float, min: 0.1, max: 4}")
    accepted = [*hyperparameter_defaults(get_model_class(recipe["model"]["name"])), "learning_rate"]
    for name, spec in parameters.items():
        if name not in accepted:
            raise RecipeError(f"search.parameters.{name}: {unknown_name('hyperparameter of ' + recipe['model']['name'], name, accepted)}")
        if not isinstance(spec, dict) or spec.get("type") not in ("float", "int", "choice"):
            raise RecipeError(f"search.parameters.{name} needs type: float, int or choice")
        if spec["type"] == "choice" and not spec.get("values"):
            raise RecipeError(f"search.parameters.{name}: a choice needs values")
        if spec["type"] != "choice" and not (isinstance(spec.get("min"), (int, float)) and isinstance(spec.get("max"), (int, float)) and spec["min"] < spec["max"]):
            raise RecipeError(f"search.parameters.{name} needs numbers min < max")
    options["parameters"] = parameters
    return options
