"""Data sets as specs and ``tf.data`` streams (``base``), and the image sources (``images``)."""

from vae_zoo.data.base import (  # noqa: F401
    BINARIZATIONS,
    SOURCES,
    SPLITS,
    Data,
    DataSpec,
    Stream,
    binarize_static,
    clear_cache,
    from_splits,
    from_token_splits,
    is_binary,
    list_datasets,
    register_source,
)
from vae_zoo.data import audio  # noqa: F401,E402  registers the fsdd source
from vae_zoo.data.images import (  # noqa: F401
    TEXT_SOURCES,
    array_splits,
    from_arrays,
    image_folder_data,
    load,
    read_idx,
    read_idx_directory,
    read_npz,
)
