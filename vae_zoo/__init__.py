"""vae_zoo: a model zoo of Variational Autoencoders for TensorFlow and Keras 3.

    import vae_zoo
    model = vae_zoo.create_model("vae", latent_dim=10)
    model.compile()
    model.fit(vae_zoo.data.load("mnist_mini").train, epochs=10)
"""

__version__ = "0.2.1"

from vae_zoo import data, models  # noqa: F401  (models registers every variant)
from vae_zoo.errors import (
    ConfigError,
    DataError,
    DivergenceError,
    InputError,
    ModelFileError,
    RecipeError,
    UnknownNameError,
    VaeZooError,
)
from vae_zoo.io.export import export
from vae_zoo.io.pretrained import list_pretrained, load_pretrained, pretrained_card
from vae_zoo.io.saving import load, save
from vae_zoo.registry import (
    create_model,
    describe,
    get_model_class,
    list_models,
    register,
)

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
    "load_pretrained",
    "pretrained_card",
    "load",
    "register",
    "save",
]
