"""The registered models as plain JSON (``catalog.json``), so ``vae-zoo list`` and ``info`` answer without TensorFlow.

``tools/write_catalog.py`` writes it from the live registry, and
``tests/test_registry.py`` checks that the two agree, so it cannot go stale.
"""

import json
from pathlib import Path

from vae_zoo.errors import unknown_name

CATALOG_FILE = Path(__file__).with_name("catalog.json")


def describe_registry():
    """The catalog as the live registry gives it (imports every variant, so TensorFlow)."""
    # Lazy: the live registry imports TensorFlow, which `vae-zoo list` and `info` (reading catalog.json) avoid.
    from vae_zoo.models.base import to_json
    # Lazy, as above.
    from vae_zoo.registry import (
        describe,
        get_model_class,
        hyperparameter_defaults,
        list_models,
    )

    catalog = {}
    for name in list_models():
        cls = get_model_class(name)
        catalog[name] = {
            "description": describe(name),
            "class": f"{cls.__module__}.{cls.__name__}",
            "hyperparameters": to_json(hyperparameter_defaults(cls)),
        }
    return catalog


def read():
    return json.loads(CATALOG_FILE.read_text())


def entry(name):
    catalog = read()
    if name not in catalog:
        raise unknown_name("model", name, catalog)
    return catalog[name]
