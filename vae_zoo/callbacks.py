"""Training callbacks that recipes can name, resolved through one lookup table.

A recipe lists callbacks as ``{name: ..., **options}``; ``make_callback`` builds
them. Variants and techniques add their callbacks to ``CALLBACKS``.
"""

import keras

from vae_zoo.errors import RecipeError, unknown_name

CALLBACKS = {
    "early_stopping": keras.callbacks.EarlyStopping,
    "reduce_lr_on_plateau": keras.callbacks.ReduceLROnPlateau,
    "terminate_on_nan": keras.callbacks.TerminateOnNaN,
}


def make_callback(spec):
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RecipeError(f"a callback must be a mapping with a 'name', got {spec!r}")
    options = dict(spec)
    name = options.pop("name")
    if name not in CALLBACKS:
        raise unknown_name("callback", name, CALLBACKS)
    try:
        return CALLBACKS[name](**options)
    except (TypeError, ValueError) as err:
        raise RecipeError(f"bad options for callback {name!r}: {err}") from None
