"""The parameter count of a model config, found without allocating a single weight.

A config can ask for any size (``hidden_sizes: [30000, 30000]`` is 1.8 billion
weights, 7 GB). Recipes, ``create_model`` and loading a saved archive check
the count first, so a typo or a hostile file costs milliseconds, not memory.

Keras creates variables inside a ``StatelessScope`` without initializing them;
the model is built there, counted and dropped, and the never-initialized
variables are taken off Keras's list so that no later scope initializes them.
"""

import os

from vae_zoo.errors import ConfigError

# Override with the environment variable VAE_ZOO_MAX_PARAMETERS for larger models.
DEFAULT_MAX_PARAMETERS = 200_000_000
# Layers in one stack (a list of layer sizes) and repeats of one block. 5,000 thin layers pass the parameter
# limit, yet building them took 157 s and ended in a RecursionError; the deepest published VAEs (VDVAE) repeat
# a block a few dozen times per resolution.
MAX_DEPTH = 128
# Integer arguments that repeat a block, as opposed to sizing one.
REPEAT_KEYS = ("blocks", "blocks_per_stage", "groups_per_stage")


def max_parameters():
    value = os.environ.get("VAE_ZOO_MAX_PARAMETERS")
    if value is None:
        return DEFAULT_MAX_PARAMETERS
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"VAE_ZOO_MAX_PARAMETERS must be an integer, got {value!r}") from None


def dry_build(build, read):
    """``read(model)`` for the model ``build()`` returns, built without allocating its weights."""
    # lazy: imports keras (and TensorFlow); the registry checks sizes without loading them until a model is built
    from keras.src.backend.common import global_state
    from keras.src.backend.common.stateless_scope import StatelessScope  # lazy, as above

    pending = list(global_state.get_global_attribute("uninitialized_variables", []) or [])
    try:
        with StatelessScope(initialize_variables=False):
            return read(build())
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


def parameter_count(build):
    """The parameter count of the model ``build()`` returns, built without allocating its weights."""
    return dry_build(build, lambda model: int(model.count_params()))


def check_depth(arguments, what):
    """Raise ``ConfigError`` if any stack in the nested ``arguments`` is deeper than ``MAX_DEPTH``.

    Checked on the config alone, before the dry build, which is what a very deep stack makes slow."""
    def visit(value, key):
        if isinstance(value, dict):
            for name, item in value.items():
                visit(item, f"{key}.{name}" if key else str(name))
        elif isinstance(value, (list, tuple)):
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            if numbers and len(value) > MAX_DEPTH:
                raise ConfigError(f"{what}: {key} lists {len(value):,} layers, over the limit of {MAX_DEPTH} per stack")
            for item in value:
                if isinstance(item, (dict, list, tuple)):
                    visit(item, key)
        elif key.rsplit(".", 1)[-1] in REPEAT_KEYS and isinstance(value, int) and value > MAX_DEPTH:
            raise ConfigError(f"{what}: {key} repeats a block {value:,} times, over the limit of {MAX_DEPTH}")

    visit(arguments, "")


def check_size(build, what):
    """Raise ``ConfigError`` if the model ``build()`` describes exceeds the parameter limit."""
    count, limit = parameter_count(build), max_parameters()
    if count > limit:
        raise ConfigError(f"{what} has {count:,} parameters, over the limit of {limit:,} "
                          "(set VAE_ZOO_MAX_PARAMETERS to allow larger models)")
    return count
