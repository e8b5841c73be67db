"""Checks of configuration values: exact types, ranges, and names with suggestions.

Recipes, ``create_model`` and the network, likelihood and prior specs all pass
their values through these checks, so that ``latent_dim: 20.7`` or
``batch_norm: "no"`` is an error naming the key, not a model quietly built
from something else (``int(20.7)`` is 20 and ``bool("no")`` is True).

A check is a callable ``check(value, key)`` that returns the value or raises
``ConfigError`` with a message that starts with ``key``.
"""

import inspect
import math

from vae_zoo.errors import ConfigError, UnknownNameError, closest

# Sizes of a single layer or latent space beyond which a config is a typo or an attack, not a model.
MAX_SIZE = 1_000_000


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(key, expected, value):
    raise ConfigError(f"{key} must be {expected}, got {_shown(value)}")


def integer(minimum=None, maximum=None):
    """An int (not a bool, not a float such as 20.7) within [minimum, maximum]."""
    words = "an integer" + _range_words(minimum, maximum)

    def check(value, key):
        if not _is_int(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            _fail(key, words, value)
        return value

    check.expected = words
    return check


def number(minimum=None, maximum=None, above=None, below=None):
    """A finite int or float within the bounds (``above``/``below`` exclude the bound itself)."""
    words = "a finite number" + _range_words(minimum, maximum, above, below)

    def check(value, key):
        if not _is_number(value) or not math.isfinite(value):
            _fail(key, words, value)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum) \
                or (above is not None and value <= above) or (below is not None and value >= below):
            _fail(key, words, value)
        return value

    check.expected = words
    return check


def _range_words(minimum=None, maximum=None, above=None, below=None):
    parts = []
    if minimum is not None:
        parts.append(f">= {minimum}")
    if above is not None:
        parts.append(f"> {above}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    if below is not None:
        parts.append(f"< {below}")
    return (" " + " and ".join(parts)) if parts else ""


def boolean(value, key):
    """true or false; never a string such as "no", never 0 or 1."""
    if not isinstance(value, bool):
        _fail(key, "true or false", value)
    return value


boolean.expected = "true or false"


def string(value, key):
    if not isinstance(value, str) or not value:
        _fail(key, "a non-empty string", value)
    return value


string.expected = "a non-empty string"


def choice(*allowed):
    """One of ``allowed``; an unknown string gets the closest allowed names."""

    def check(value, key):
        if value not in allowed or isinstance(value, bool) and True not in allowed:
            hint = closest(value, [a for a in allowed if isinstance(a, str)]) if isinstance(value, str) else ""
            raise ConfigError(f"{key} must be one of {', '.join(repr(a) for a in allowed)}, got {_shown(value)}{'.' + hint if hint else ''}")
        return value

    check.expected = "one of " + ", ".join(repr(a) for a in allowed)
    return check


def sizes(min_length=0, max_length=None, minimum=1):
    """A list of integers >= ``minimum`` (layer widths, latent sizes, a data shape)."""
    length = f"{min_length} or more" if max_length is None else (f"{min_length} to {max_length}" if max_length != min_length else str(min_length))
    words = f"a list of {length} integers from {minimum} to {MAX_SIZE:,}"

    def check(value, key):
        if not isinstance(value, (list, tuple)) or len(value) < min_length or (max_length is not None and len(value) > max_length):
            _fail(key, words, value)
        for item in value:
            if not _is_int(item) or not minimum <= item <= MAX_SIZE:
                _fail(key, words, value)
        return value

    check.expected = words
    return check


def interval(value, key):
    """Two finite numbers ``[low, high]`` with low < high."""
    words = "two finite numbers [low, high] with low < high"
    if (not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_number(v) for v in value)
            or not all(math.isfinite(v) for v in value) or not value[0] < value[1]):
        _fail(key, words, value)
    return value


interval.expected = "two finite numbers [low, high] with low < high"


def optional(inner):
    """``None`` or what ``inner`` accepts."""

    def check(value, key):
        return None if value is None else inner(value, key)

    check.expected = f"null or {getattr(inner, 'expected', 'a valid value')}"
    return check


def mapping(value, key):
    if not isinstance(value, dict):
        _fail(key, "a mapping", value)
    for name in value:
        if not isinstance(name, str):
            raise ConfigError(f"{key} has a key {_shown(name)} that is not a string")
    return value


def activation(value, key):
    """A Keras activation's name (``relu``, ``gelu``, ...), or ``gated`` (gated dense units of the mlp network)."""
    import keras  # lazy: the schema is checked without TensorFlow until an activation needs Keras

    string(value, key)
    if value == "gated":
        return value
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        known = [n for n in dir(keras.activations) if not n.startswith("_") and n not in ("get", "serialize", "deserialize")]
        raise ConfigError(f"{key}: unknown activation {value!r}.{closest(value, known)}") from None
    return value


# Rules for the arguments of models, network bodies, likelihoods and priors, by argument name.
# Arguments not listed here are checked against the type of their default value.
ARGUMENTS = {
    "data_shape": sizes(1, 3),
    "latent_dim": integer(1, MAX_SIZE),
    "beta": number(minimum=0),
    "free_bits": number(minimum=0),
    "log_variance_range": interval,
    "encoder_masks": integer(0, 64),
    "encoder_mask_width": integer(1, MAX_SIZE),
    "encoder_shift": integer(0, MAX_SIZE),
    "num_classes": integer(2, MAX_SIZE),
    "k": integer(1, 100_000),
    "codebook_size": integer(2, MAX_SIZE),
    "ema": boolean,
    "ema_decay": number(above=0, below=1),
    "restart_dead_codes": boolean,
    "mlp_positions": integer(1, 4096),
    "dataset_size": integer(1),
    "upper_latent_dims": sizes(1),
    "ladder_hidden": sizes(0),
    "discriminator_sizes": sizes(0),
    "hidden_sizes": sizes(0),
    "filters": sizes(1),
    "activation": activation,
    "batch_norm": boolean,
    "prior_scale": number(above=0),
    "components": integer(1, MAX_SIZE),
    "scale": number(above=0),
    "min_log_variance": number(),
    # token models
    "vocabulary_size": integer(5, MAX_SIZE),
    "embedding_dim": integer(1, MAX_SIZE),
    "units": integer(1, MAX_SIZE),
    "word_dropout": number(minimum=0),
    "bn_gamma": number(above=0),
    # optimizers
    "learning_rate": number(above=0),
    "epsilon": number(above=0),
    "beta_1": number(minimum=0, below=1),
    "beta_2": number(minimum=0, below=1),
    "momentum": number(minimum=0, below=1),
    "weight_decay": number(minimum=0),
    "clipnorm": number(above=0),
    "clipvalue": number(above=0),
    "global_clipnorm": number(above=0),
    # callbacks and KL schedules
    "beta_final": number(minimum=0),
    "beta_start": number(minimum=0),
    "t_threshold": number(minimum=0),
    "rate": number(above=0),
    "warmup_steps": integer(0),
    "cycle_steps": integer(1),
    "ramp_fraction": number(minimum=0, maximum=1),
    "patience": integer(0),
    "min_delta": number(minimum=0),
    "start_from_epoch": integer(0),
    "factor": number(above=0, below=1),
    "cooldown": integer(0),
    "min_lr": number(minimum=0),
    "every": integer(1),
    "examples": integer(1),
    "warn_below": number(minimum=0),
    "active_threshold": number(minimum=0),
    "verbose": choice(0, 1, 2, "auto"),
    "log_dir": string,
}


def from_default(default):
    """The check implied by a default value's type, for arguments without a rule."""
    if isinstance(default, bool):
        return boolean
    if isinstance(default, int):
        return integer()
    if isinstance(default, float):
        return number()
    if isinstance(default, str):
        return string
    if isinstance(default, (list, tuple)):
        return sizes(0)
    return None


def check_value(name, value, key, default=inspect.Parameter.empty, rules=None):
    rule = (rules or {}).get(name) or ARGUMENTS.get(name) or from_default(default)
    if rule is None:
        return value
    return rule(value, key) if default is not None else optional(rule)(value, key)


def check_arguments(accepted, values, where, kind, rules=None):
    """Check ``values`` (a dict) against ``accepted`` (argument name -> default); ``rules`` add to ``ARGUMENTS``."""
    mapping(values, where)
    for name, value in values.items():
        key = f"{where}.{name}" if where else name
        if name not in accepted:
            raise UnknownNameError(f"{key}: {kind} has no argument {name!r}.{closest(name, accepted)} "
                              f"Accepted: {', '.join(sorted(accepted))}.")
        check_value(name, value, key, accepted[name], rules)


def signature_defaults(callable_, provided=()):
    """The keyword arguments a constructor takes from a spec, with their defaults."""
    params = inspect.signature(callable_).parameters.values()
    return {p.name: p.default for p in params
            if p.name not in ("self", "name", "dtype", *provided) and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def check_spec(table, kind, spec, key, provided=()):
    """A name or ``{name: ..., option: ...}`` choosing from ``table`` (networks, likelihoods, priors)."""
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, dict):
        options = dict(spec)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"{key}.name must be the name of a {kind} ({', '.join(sorted(table))}), got {_shown(name)}")
    else:
        raise ConfigError(f"{key} must be a {kind} name or a mapping with a 'name', got {_shown(spec)}")
    if name not in table:
        raise UnknownNameError(f"{key}: unknown {kind} {name!r}.{closest(name, table)} Available: {', '.join(sorted(table))}.")
    check_arguments(signature_defaults(table[name], provided), options, key, f"{kind} {name!r}")


def check_model_arguments(cls, accepted, values, where="model"):
    """Every argument of a zoo model, its specs included (``cls.spec_arguments()``); raises ``ConfigError``."""
    specs = cls.spec_arguments()
    plain = {name: value for name, value in values.items() if name not in specs or name not in accepted}
    check_arguments(accepted, plain, where, f"model {cls.registered_name!r}")
    for name, (table, kind, provided) in specs.items():
        if name in values and name in accepted and not (values[name] is None and accepted[name] is None):
            check_spec(table, kind, values[name], f"{where}.{name}" if where else name, provided)
