"""The zoo's models. Importing this package imports every module in it, which registers every variant:
adding a variant is adding its file (with ``@register("name")`` on its class)."""

import importlib
import pkgutil

# Modules that hold no variant, imported by the variants themselves.
SHARED = {"base", "decoding", "distributions", "logistic_mixture", "objectives", "portable_signatures", "signatures", "sizing"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in SHARED:
        importlib.import_module(f"{__name__}.{_module.name}")
