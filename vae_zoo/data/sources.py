"""The data-source registry: every data set is a registered ``DataSource`` class that declares its options.

    @register_source("noise")
    class Noise(ArraySource):
        '''Uniform noise images (a toy).'''
        options = {"size": Option(8, schema.integer(1, 64), "height and width of an image")}

        def splits(self):
            ...  # {split: (examples, labels)}

``load(name, **options)`` finds the class, checks the options against its schema (the common options of
``DataSource`` and of every base class, then its own) and returns the ``Data`` bundle its ``load`` builds. The
recipe schema and the CLI read the same registry, so a source added this way is at once a recipe's
``data.name`` and a ``vae-zoo evaluate --data`` choice.
"""

import abc
import dataclasses
import functools
import inspect
import os

from vae_zoo import schema
from vae_zoo.data.base import BINARIZATIONS, from_splits
from vae_zoo.errors import ConfigError, DataError, UnknownNameError, closest, unknown_name


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a data source: its default, the check of its value (``vae_zoo.schema``), what it means.

    A required option (``required=True``) has no default: the source cannot be read without it.
    """

    default: object
    check: object
    description: str
    required: bool = False


def path_like(value, key):
    """A file or folder: a non-empty string or an ``os.PathLike``."""
    if isinstance(value, os.PathLike):
        return value
    return schema.string(value, key)


path_like.expected = "a path (a non-empty string)"


def not_binarized(value, key):
    """``binarize`` for data whose values are not pixel intensities: only ``none``."""
    if value != "none":
        raise ConfigError(f"{key} must be 'none': binarization does not apply to examples that are not grey levels, got {value!r}")
    return value


not_binarized.expected = "'none'"


class DataSource(abc.ABC):
    """A data set by name: its options (``options``, merged along the class hierarchy), what it is
    (``description``, ``modality``, ``num_classes``) and how to read it (``load``).

    An instance holds checked options with their defaults filled in (``self.options``). ``load()`` returns
    the ``Data`` bundle: its ``spec`` (a ``DataSpec``) and its train/validation/test splits.
    """

    name = None  # set by ``register_source``
    description = ""
    modality = "image"
    num_classes = None  # None: inferred from the labels of the training split
    # How an audio source's examples encode sound ("log_magnitude", "log_mel"; ``vae_zoo.data.audio.FEATURES``).
    features = None
    # The credit a licence asks for wherever the examples are redistributed (model cards, reports): None if none.
    attribution = None

    # Options every source takes; a subclass adds its own, or replaces one (a text source's ``binarize``).
    options = {
        "batch_size": Option(128, schema.integer(1, 1_000_000), "examples per batch"),
        "labels": Option(False, schema.boolean, "yield (examples, labels) pairs, not examples alone"),
        "limit": Option(None, schema.integer(1), "keep at most this many examples of each split (quick checks)"),
        "seed": Option(0, schema.integer(0, 2**31 - 1), "the seed of shuffles, splits and binarization"),
        "binarize": Option("none", schema.choice(*BINARIZATIONS),
                           "none (grey levels), static (binarized once) or dynamic (redrawn every training epoch)"),
        "exclude_classes": Option((), schema.sizes(0, minimum=0),
                                  "labels left out of the train and validation splits (the anomaly protocol)"),
        "labels_per_class": Option(None, schema.integer(1),
                                   "keep this many training labels of each class, the others -1 (semi-supervised)"),
        "labelled_per_batch": Option(0, schema.integer(0, 1_000_000),
                                     "add this many examples with known labels to every training batch (semi-supervised)"),
    }

    def __init__(self, **options):
        self.options = self.check_options(options)

    @classmethod
    def schema(cls):
        """Option name -> ``Option``: the options of every class from ``DataSource`` down to this one."""
        merged = {}
        for klass in reversed(cls.__mro__):
            merged.update(vars(klass).get("options", {}))
        return merged

    @classmethod
    def check_options(cls, options, where=""):
        """``options`` checked against the schema, defaults filled in; ``where`` prefixes the keys in errors
        (``data`` in a recipe)."""
        accepted = cls.schema()
        for name, value in options.items():
            key = f"{where}.{name}" if where else name
            if name not in accepted:
                raise UnknownNameError(f"{key}: data set {cls.name!r} has no option {name!r}.{closest(name, accepted)} "
                                       f"Options: {', '.join(sorted(accepted))}.")
            if value is not None or accepted[name].default is not None:
                try:
                    accepted[name].check(value, key)
                except ConfigError as err:
                    raise type(err)(f"{err} (data set {cls.name!r})") from None
        for name, option in accepted.items():
            if option.required and options.get(name) is None:
                key = f"{where}.{name}" if where else name
                raise DataError(f"{key}: data set {cls.name!r} needs a {name}: {option.description}")
        return {**{name: option.default for name, option in accepted.items()}, **options}

    @abc.abstractmethod
    def load(self):
        """The ``Data`` bundle of this source with its options."""

    def factor_grid(self):
        """A ``vae_zoo.data.shapes.FactorGrid`` (every combination of the data set's known factors of variation,
        for disentanglement scores), or None where the factors are unknown."""
        return None

    def recordings(self):
        """{split: (features, digits, speakers, waveforms)} for a spoken-digit source (the speaker and digit
        probes of an audio report), or None."""
        return None


class ArraySource(DataSource):
    """A source whose splits are arrays in memory: ``splits()`` returns {split: (examples, labels)}, uint8 or
    floats in [0, 1]; labels may be None."""

    options = {
        "indices": Option(False, schema.boolean,
                          "yield (examples, index in the training split) pairs, -1 outside it: what the exemplar "
                          "prior's leave-one-out needs, in place of labels"),
    }

    @abc.abstractmethod
    def splits(self):
        """{split: (examples, labels)} for "train", "validation" and "test"."""

    def load(self):
        o = self.options
        return self.finish(from_splits(self.splits(), self.name, o["batch_size"], o["binarize"], o["labels"], o["limit"],
                                       o["seed"], self.num_classes, o["exclude_classes"], self.modality,
                                       o["labels_per_class"], o["labelled_per_batch"], o["indices"]))

    def finish(self, data):
        """The bundle as the source gives it, from the one ``from_splits`` built (a source may change how it draws)."""
        return data


class CachedSource(ArraySource):
    """A named data set read once per process (for each ``data_dir`` and ``VAE_ZOO_*`` environment):
    ``read(data_dir)`` returns its raw splits."""

    @classmethod
    @abc.abstractmethod
    def read(cls, data_dir=None):
        """{split: (examples, labels)} from ``data_dir`` (None where the source does not take one)."""

    def splits(self):
        data_dir = self.options.get("data_dir")
        return read_source(self.name, str(data_dir) if data_dir else None)


SOURCES = {}


def register_source(name):
    """Class decorator: make a ``DataSource`` subclass the data set ``name``."""

    def decorator(cls):
        if name in SOURCES:
            raise ValueError(f"data source {name!r} is already registered")
        if not (isinstance(cls, type) and issubclass(cls, DataSource)):
            raise TypeError(f"data source {name!r} must be a DataSource subclass, got {cls!r}")
        cls.name = name
        if not cls.description:
            cls.description = (inspect.getdoc(cls) or name).splitlines()[0]
        SOURCES[name] = cls
        return cls

    return decorator


def list_datasets():
    return sorted(SOURCES)


def describe(name):
    """What ``vae-zoo info --data NAME`` prints: the source's description, modality and options."""
    source = get_source(name)
    lines = [f"{name}: {source.description}", f"modality: {source.modality}"]
    if source.attribution:  # what anyone redistributing its examples must credit
        lines.append(f"attribution: {source.attribution}")
    lines.append("options (defaults):")
    for option_name, option in sorted(source.schema().items()):
        default = "required" if option.required else repr(option.default)
        lines.append(f"  {option_name} = {default}  {option.description}")
    return "\n".join(lines)


def get_source(name):
    """The registered ``DataSource`` class of ``name``."""
    if name not in SOURCES:
        raise unknown_name("data set", name, SOURCES)
    return SOURCES[name]


def load(name="mnist_mini", **options):
    """Load a data set by name as train/validation/test pipelines (a ``Data`` bundle).

    The options are those of the source (``get_source(name).schema()``; ``vae-zoo info --data NAME`` lists
    them): every source takes ``batch_size``, ``labels`` (yield ``(examples, labels)`` pairs), ``limit`` (at
    most that many examples per split), ``seed``, ``binarize`` and ``exclude_classes`` (drop those labels from
    train and validation: the anomaly protocol); ``npz`` and ``image_folder`` need a ``path``, text sources take
    ``max_length``, ``vocabulary_size``, ``min_count`` and ``vocabulary``.
    """
    source = get_source(name)(**options)
    semi_supervised = [key for key in ("labels_per_class", "labelled_per_batch") if source.options.get(key)]
    if semi_supervised and type(source).load is not ArraySource.load:
        raise DataError(f"data set {name!r} does not take {' or '.join(semi_supervised)}: only data sets held in memory "
                        "as arrays do (mnist_mini, fashion_mnist, ...)")
    data = source.load()
    data.source = source  # what the report asks of the data set (its factors, its recordings)
    if source.features is not None:
        data.spec = dataclasses.replace(data.spec, features=source.features)
    if source.attribution is not None:
        data.spec = dataclasses.replace(data.spec, attribution=source.attribution)
    return data


def read_source(name, data_dir=None):
    """The raw splits of a named ``CachedSource``, read once per process for each place the data may come from."""
    return _read_source_once(name, data_dir, _data_environment())


def _data_environment():
    """The ``VAE_ZOO_*`` variables that point sources at their files: part of the cache key, so that pointing a
    variable elsewhere reads the new files rather than returning what the old ones held."""
    return tuple(sorted((key, value) for key, value in os.environ.items() if key.startswith("VAE_ZOO_")))


@functools.lru_cache(maxsize=8)
def _read_source_once(name, data_dir, environment):
    del environment  # only part of the key
    return get_source(name).read(data_dir)


def clear_cache():
    """Forget the splits read so far (after the files behind a source have changed in place)."""
    _read_source_once.cache_clear()
