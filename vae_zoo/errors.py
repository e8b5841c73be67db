"""Error types raised by vae_zoo.

Every error a user can provoke with bad input derives from ``VaeZooError`` so
that the CLI can print it as one line, while each also derives from the
built-in exception a Python user would expect (``KeyError``, ``ValueError``,
...) so that ordinary ``except`` clauses keep working.
"""

import difflib


class VaeZooError(Exception):
    """Base class of every error vae_zoo raises on purpose."""

    def __str__(self):
        # KeyError would otherwise print its message with quotes around it.
        return str(self.args[0]) if self.args else ""


class RecipeError(VaeZooError, ValueError):
    """A recipe file that cannot be read or does not describe a valid run."""


class DataError(VaeZooError, ValueError):
    """Data that is missing, malformed or does not fit the model."""


class InputError(VaeZooError, ValueError):
    """A tensor passed to a model has the wrong shape, dtype or values."""


class ConfigError(VaeZooError, ValueError):
    """A configuration value of the wrong type, out of range, or an unknown name (models, specs, recipes)."""


class UnknownNameError(ConfigError, KeyError):
    """A model, data set, likelihood, prior, network or schedule name, or an argument, that does not exist."""


class CapabilityError(VaeZooError, AttributeError):
    """A model asked for what it does not declare it can do (``model.can`` says what it can)."""


class DivergenceError(VaeZooError, ArithmeticError):
    """Training produced a non-finite loss or weights; nothing was saved."""


class ModelFileError(VaeZooError, OSError):
    """A saved model folder or file that is missing, corrupt or not a vae_zoo model."""


def closest(name, choices):
    """`` Did you mean 'x'?`` for the valid names closest to ``name``, or an empty string."""
    close = difflib.get_close_matches(str(name), sorted(str(c) for c in choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def unknown_name(kind, name, choices):
    """Build an ``UnknownNameError`` that lists the closest valid names."""
    choices = sorted(choices)
    return UnknownNameError(f"unknown {kind} {name!r}.{closest(name, choices)} Available: {', '.join(choices)}.")
