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

from vae_zoo import schema
from vae_zoo.errors import ConfigError, RecipeError, VaeZooError
from vae_zoo.schema import (
    boolean,
    choice,
    integer,
    mapping,
    number,
    optional,
    sizes,
    string,
)

SECTIONS = ("model", "data", "optimizer", "training", "callbacks", "search", "smoke")
DISTRIBUTE = ("none", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
SEED = integer(0, 2**31 - 1)

def steps_per_execution(value, key):
    """``auto`` (the runner chooses) or a count of training steps per call into TensorFlow."""
    return value if value == "auto" else integer(1, 100_000)(value, key)


steps_per_execution.expected = "'auto' or an integer from 1 to 100,000"

TRAINING = {
    "epochs": integer(1, 1_000_000),
    "jit_compile": boolean,
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

DATA_RULES = {
    "batch_size": integer(1, 1_000_000),
    "limit": integer(1),
    "seed": SEED,
    "labels": boolean,
    "exclude_classes": sizes(0, minimum=0),
    "data_dir": string,
    "path": string,
    "validation_split": number(minimum=0, below=1),
    "test_split": number(minimum=0, below=1),
    "image_size": sizes(2, 2),
    "color_mode": choice("grayscale", "rgb"),
    "max_length": integer(1, 10_000),
    "vocabulary_size": integer(len(("<pad>", "<unk>", "<bos>", "<eos>")) + 1, 10_000_000),
    "min_count": integer(1),
}

SEARCH_RULES = {
    "max_trials": integer(1, 100_000),
    "epochs": integer(1, 1_000_000),
    "nll_k": integer(1, 100_000),
    "early_stopping": optional(mapping),
    "seed": SEED,
    "jit_compile": boolean,
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
    if cls.modality != "text" or "vocabulary" in arguments or "vocabulary_size" in arguments:
        return arguments
    from vae_zoo import data as data_module

    defaults = {k: v.default for k, v in inspect.signature(data_module.load).parameters.items()}
    options = {**defaults, **(data_section if isinstance(data_section, dict) else {})}
    bound = {"vocabulary_size": options["vocabulary_size"]}
    if "data_shape" not in arguments:
        bound["data_shape"] = [int(options["max_length"]) + 2]
    return {**arguments, **bound}


def check_model(section, build=True, data_section=None):
    """The model class and the names it logs, once its arguments passed the model schema and size limit.

    With ``build=False`` the size is not checked and the logged names are the class's.
    """
    from vae_zoo.models.sizing import dry_build
    from vae_zoo.registry import (
        check_arguments,
        get_model_class,
        list_models,
    )

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
    from vae_zoo import data as data_module

    accepted = {k: v.default for k, v in inspect.signature(data_module.load).parameters.items()}
    names = sorted([*data_module.SOURCES, "npz", "image_folder", "wav_folder", *data_module.TEXT_SOURCES])
    rules = {**DATA_RULES, "name": choice(*names), "binarize": choice(*data_module.BINARIZATIONS)}
    schema.check_arguments(accepted, section, "data", "data", rules)
    if "name" not in section:
        raise ConfigError(f"data.name is missing: one of {', '.join(names)}")
    if "vocabulary" in section:
        raise ConfigError("data.vocabulary is not a recipe setting: the vocabulary is built from the training split "
                          "(data.vocabulary_size, data.min_count) and saved with the model")
    if section["name"] in ("npz", "image_folder", "wav_folder", "text_file") and not section.get("path"):
        raise ConfigError(f"data.path is needed for data.name {section['name']!r}")
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
    from vae_zoo.training.recipe import DEFAULT_TRAINING

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
    from vae_zoo.training import schedules
    from vae_zoo.training.callbacks import CALLBACKS

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
    from vae_zoo.training import tuning

    section = recipe["search"]
    accepted = {key: tuning.DEFAULT_SEARCH.get(key, inspect.Parameter.empty) for key in tuning.SEARCH_KEYS}
    rules = {**SEARCH_RULES, "tuner": choice(*tuning.TUNERS), "objective": choice(*tuning.OBJECTIVES)}
    schema.check_arguments(accepted, section, "search", "search", rules)
    tuning.search_options(recipe)
