"""vae_zoo: a model zoo of Variational Autoencoders for TensorFlow and Keras 3.

    import vae_zoo
    model = vae_zoo.create_model("vae", latent_dim=10)
    model.compile()
    model.fit(vae_zoo.data.load("mnist_mini").train, epochs=10)
"""

__version__ = "0.5.0"

import importlib

# The public API, imported on first use: ``import vae_zoo`` and the command line's ``list``, ``info``
# and ``--help`` do not import TensorFlow (several seconds and hundreds of MB).
_LAZY = {
    "create_model": "vae_zoo.registry",
    "describe": "vae_zoo.registry",
    "get_model_class": "vae_zoo.registry",
    "list_models": "vae_zoo.registry",
    "register": "vae_zoo.registry",
    "export": "vae_zoo.io.export",
    "list_pretrained": "vae_zoo.io.pretrained",
    "download": "vae_zoo.io.pretrained",
    "load_pretrained": "vae_zoo.io.pretrained",
    "pretrained_card": "vae_zoo.io.pretrained",
    "load": "vae_zoo.io.saving",
    "save": "vae_zoo.io.saving",
}
_ERRORS = ("ConfigError", "DataError", "DivergenceError", "InputError", "ModelFileError", "RecipeError", "UnknownNameError",
           "VaeZooError")


def __getattr__(name):
    if name in _ERRORS:
        value = getattr(importlib.import_module("vae_zoo.errors"), name)
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in ("data", "models", "evaluation", "training", "io", "networks"):
        value = importlib.import_module(f"vae_zoo.{name}")
    else:
        raise AttributeError(f"module 'vae_zoo' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "ConfigError",
    "DataError",
    "DivergenceError",
    "InputError",
    "ModelFileError",
    "RecipeError",
    "UnknownNameError",
    "VaeZooError",
    "create_model",
    "data",
    "export",
    "describe",
    "get_model_class",
    "list_models",
    "list_pretrained",
    "download",
    "load_pretrained",
    "pretrained_card",
    "load",
    "register",
    "save",
]
