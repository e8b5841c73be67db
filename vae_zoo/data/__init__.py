"""Data sets as specs and ``tf.data`` streams (``base``), the source registry (``sources``), and the sources:
images (``images``), text (``text``) and audio (``audio``); the modalities (``modalities``): what each kind
of data means to the CLI, evaluation, io and training."""

from vae_zoo.data.base import (  # noqa: F401
    BINARIZATIONS,
    SPLITS,
    Data,
    DataSpec,
    FactorGrid,
    Stream,
    binarize_static,
    from_splits,
    from_token_splits,
    is_binary,
)
from vae_zoo.data.sources import (  # noqa: F401
    SOURCES,
    ArraySource,
    CachedSource,
    DataSource,
    Option,
    clear_cache,
    describe,
    get_source,
    list_datasets,
    load,
    register_source,
)
from vae_zoo.data import audio, emoji, latents, text  # noqa: F401,E402  register the audio, emoji, latents and text sources
from vae_zoo.data.modalities import (  # noqa: F401
    MODALITIES,
    Modality,
    get_modality,
    list_modalities,
    register_modality,
    trained_data_spec,
)
from vae_zoo.data.images import (  # noqa: F401
    array_splits,
    from_arrays,
    image_folder_data,
    read_idx,
    read_idx_directory,
    read_npz,
)
