"""The tensorflow-datasets builders the zoo falls back to online, and the modules each needs beyond tfds.

tensorflow-datasets 4.9 imports some modules only when a builder first prepares
its data, and does not declare them all: every builder's ``code_path`` needs
``importlib_resources``, and the Audio feature of ``spoken_digit`` reads WAVs
through ``pydub``. An undeclared one failed only for an online user, before any
download (``No module named 'importlib_resources'``); setup.cfg lists them and
tests/test_data.py builds each builder without downloading.
"""

# builder name -> modules its download and preparation import
TFDS_BUILDERS = {
    "fashion_mnist": ("importlib_resources",),
    "mnist": ("importlib_resources",),
    "cifar10": ("importlib_resources",),
    "spoken_digit": ("importlib_resources", "pydub"),
    "ag_news_subset": ("importlib_resources",),
    "imdb_reviews": ("importlib_resources",),
}


def builder(name, data_dir=None):
    """The tfds builder ``name`` (one of ``TFDS_BUILDERS``), ready to download; nothing is fetched."""
    # lazy: tensorflow-datasets takes seconds to import, and only an online fallback needs it
    import tensorflow_datasets as tfds

    if name not in TFDS_BUILDERS:
        raise KeyError(f"{name!r} is not a tensorflow-datasets builder the zoo uses; add it to TFDS_BUILDERS")
    return tfds.builder(name, data_dir=data_dir)


def load(name, **kwargs):
    """``tfds.load(name, **kwargs)`` for a builder of ``TFDS_BUILDERS`` (downloads when online)."""
    import tensorflow_datasets as tfds  # lazy, as in builder()

    builder(name)  # refuses a name missing from the table, whose needs would be untested
    return tfds.load(name, **kwargs)
