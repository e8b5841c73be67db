"""The zoo's registry: one decorator makes a model class public and Keras-serializable.

Everything that dispatches on a model's name (``create_model``, the CLI, recipes,
the tuner, the exporter) goes through this module, so adding a variant never
means editing an ``if``/``elif`` chain.
"""

import fnmatch
import inspect

import keras

from vae_zoo.errors import ConfigError, VaeZooError, unknown_name
from vae_zoo.schema import check_model_arguments

_MODELS = {}
_variants_imported = False


def _import_variants():
    """Import ``vae_zoo.models`` (which registers every variant) the first time a name is looked up."""
    global _variants_imported
    if not _variants_imported:
        _variants_imported = True
        # Lazy by design: the variants import this module to register themselves, so it imports them
        # (and TensorFlow) only when a name is first looked up.
        import vae_zoo.models  # noqa: F401

# Keyword arguments of keras.Model itself; they are not a variant's hyperparameters.
_KERAS_KWARGS = ("name", "dtype", "trainable")


def register(name):
    """Class decorator: add a model to the zoo under ``name``.

    It also registers the class with Keras (package ``vae_zoo``) so that
    ``.keras`` files load without ``custom_objects``.
    """

    def decorator(cls):
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered by {_MODELS[name].__name__}")
        cls = keras.saving.register_keras_serializable(package="vae_zoo", name=name)(cls)
        cls.registered_name = name
        _MODELS[name] = cls
        return cls

    return decorator


def bound_hyperparameters(cls, args, kwargs):
    """The keyword arguments a constructor call ``cls(*args, **kwargs)`` binds, defaults included."""
    bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    bound.apply_defaults()
    params = dict(bound.arguments)
    params.pop("self", None)
    extra = params.pop("kwargs", {})
    params.update(extra)
    return {k: v for k, v in params.items() if k not in _KERAS_KWARGS}


def resolve(table, kind, spec, *args, **extra):
    """Build ``table[name](*args, **options, **extra)`` from a spec: a name, or a dict with ``name`` and options.

    Likelihoods, priors and network bodies are all chosen this way, so a
    model's config stays plain JSON.
    """
    if isinstance(spec, str):
        name, options = spec, {}
    elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
        options = dict(spec)
        name = options.pop("name")
    else:
        raise TypeError(f"a {kind} must be a name or a dict with a 'name' key, got {spec!r}")
    if name not in table:
        raise unknown_name(kind, name, table)
    try:
        return table[name](*args, **options, **extra)
    except TypeError as err:
        raise ValueError(f"bad options for {kind} {name!r}: {err}") from None


def get_model_class(name):
    """The class registered under ``name``; a clear error with suggestions otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"a model name must be a string, got {type(name).__name__}")
    _import_variants()
    try:
        return _MODELS[name]
    except KeyError:
        raise unknown_name("model", name, _MODELS) from None


def check_arguments(name, kwargs, where="", size=True):
    """The class of model ``name`` once ``kwargs`` passed the schema and (with ``size``) the size limit.

    Raises ``ConfigError``. ``size=False`` skips the dry build, which starts TensorFlow's runtime.
    """
    # Lazy by design, as _import_variants: vae_zoo.models imports every variant, and they import this module.
    from vae_zoo.models.sizing import check_depth, check_size

    cls = get_model_class(name)
    accepted = {**hyperparameter_defaults(cls), **{key: None for key in _KERAS_KWARGS}}
    check_model_arguments(cls, accepted, kwargs, where)
    check_depth(kwargs, f"{where or 'model'} {name!r}")
    if size:
        try:
            check_size(lambda: cls(**kwargs), f"{where or 'model'} {name!r}")
        except (TypeError, ValueError) as err:
            # Arguments each valid alone that the model refuses together (free bits with a prior that does
            # not factorize, encoder masks on a variant with its own objective).
            if isinstance(err, VaeZooError):
                raise
            raise ConfigError(f"{where or 'model'} {name!r}: {err}") from None
    return cls


def create_model(name, **kwargs):
    """Build a zoo model by name: ``create_model("vae", latent_dim=10)``.

    Arguments are checked first (exact types, ranges, known names, and a
    parameter count under ``VAE_ZOO_MAX_PARAMETERS``), so a bad value raises a
    ``ConfigError`` naming it before any weight is allocated.
    """
    return check_arguments(name, kwargs)(**kwargs)


def list_models(pattern="*"):
    """Registered model names matching a shell-style wildcard, sorted."""
    _import_variants()
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def hyperparameter_defaults(cls):
    """The constructor keyword arguments of ``cls`` and their defaults, through its bases."""
    defaults = {}
    for klass in reversed(cls.__mro__):
        if "__init__" not in vars(klass) or not issubclass(klass, keras.Model) or klass is keras.Model:
            continue
        for param in inspect.signature(klass.__init__).parameters.values():
            if param.name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            defaults[param.name] = param.default
    return {k: v for k, v in defaults.items() if k not in _KERAS_KWARGS}


def describe(name):
    """One line about a model: the first line of its class docstring."""
    doc = inspect.getdoc(get_model_class(name)) or ""
    return doc.splitlines()[0] if doc else ""
