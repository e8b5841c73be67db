"""Named data sets as ``tf.data`` pipelines, offline first (see ``images`` for the sources)."""

from vae_zoo.data.images import (  # noqa: F401
    BINARIZATIONS,
    DATASETS,
    SPLITS,
    Data,
    array_splits,
    binarize_static,
    from_arrays,
    from_splits,
    list_datasets,
    load,
    make_pipeline,
    read_idx,
    read_idx_directory,
    read_image_folder,
    read_npz,
)
