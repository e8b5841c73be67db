"""Compress data to ``.vzc`` bytes with a zoo model, and back.

The model decides the method: a VAE with a Gaussian posterior codes binary
images (Bernoulli likelihood) or 8-bit grey and colour images (discretized
logistic mixture) losslessly by bits-back ANS; a VQ-VAE codes any images lossily
as its code grids. Decoding checks, in this order, that the bytes are a
``.vzc`` file, whole and unaltered (its CRC), that the model's weights are
the ones it was made with, and that what it decoded has the digest the
header recorded; any failure is a ``CompressedFileError`` that says which.
"""

from pathlib import Path

import numpy as np

from vae_zoo.compression import bits_back, container, hierarchy, tiling, vq_codes
from vae_zoo.compression.container import CompressedFileError, Header
from vae_zoo.compression.pixels import LevelPixels
from vae_zoo.errors import InputError


def method_for(model):
    """The coding method that applies to ``model``, or an ``InputError`` saying why none does."""
    if model.can("discrete_codes"):
        return "vq_codes"
    if model.can("hierarchical"):
        reason = hierarchy.why_not_codable(model)
        if reason:
            raise InputError(f"{model.registered_name} cannot compress: {reason}")
        return "bits_back_hierarchy"
    reason = bits_back.why_not_codable(model)
    if reason:
        raise InputError(f"{model.registered_name} cannot compress: {reason}")
    return "bits_back_8bit" if isinstance(bits_back.pixel_coder(model), LevelPixels) else "bits_back"


LOSSLESS = ("bits_back", "bits_back_8bit", "bits_back_hierarchy")


def codec_for(model, method, options=b""):
    try:
        return _codec(model, method, options)
    except InputError:
        raise
    except ValueError as err:  # settings out of range in a header (which its checksum vouched for)
        raise CompressedFileError(f"the file's coding options are not usable: {err}") from None


def _codec(model, method, options):
    if method == "vq_codes":
        return vq_codes.VQCodeCodec(model)
    if method != method_for(model):
        raise CompressedFileError(f"the file was coded by {method}, and {model.registered_name} codes by "
                                  f"{method_for(model)}: decompress with the model it was made with")
    codec = hierarchy.HierarchicalBitsBackCodec if method == "bits_back_hierarchy" else bits_back.BitsBackCodec
    if options:
        latent_bits, seed_words = codec.options_settings(options)
        return codec(model, latent_bits=latent_bits, seed_words=seed_words)
    return codec(model)


def as_examples(images, model):
    """``images`` as (count, *shape): one example gets a batch axis; NaN or non-numbers are refused. Images of
    another height and width than the model's (with its channels) are coded in tiles (``tiling``)."""
    images = np.asarray(images)
    shape = tuple(model.data_shape)
    if images.ndim == len(shape):
        images = images[None]
    if images.ndim != len(shape) + 1:
        raise InputError(f"{model.registered_name} codes examples of shape {shape}; got an array of shape {images.shape}")
    try:
        tiling.needs_tiles(images.shape[1:], shape)
    except InputError as err:
        raise InputError(f"{model.registered_name}: {err}") from None
    if not (np.issubdtype(images.dtype, np.number) or images.dtype == bool):
        raise InputError(f"images must be numbers, not {images.dtype}")
    if len(images) == 0:
        raise InputError("there are no images to compress")
    if np.issubdtype(images.dtype, np.floating) and not np.isfinite(images).all():
        raise InputError("the images contain NaN or infinite values")
    return images




def compress(model, images, model_name, weights_digest):
    """The ``.vzc`` bytes of ``images`` under ``model`` (named ``model_name`` in the header, so that
    ``decompress`` can find it again) and a summary of the sizes."""
    images = as_examples(images, model)
    method = method_for(model)
    codec = codec_for(model, method)
    tiled = tiling.needs_tiles(images.shape[1:], model.data_shape)
    if tiled and method not in LOSSLESS:
        raise InputError(f"{method} codes examples of the model's own shape {tuple(model.data_shape)} only")
    if method in LOSSLESS:
        examples = tiling.to_tiles(images, model.data_shape) if tiled else images
        valid = tiling.valid_sizes(images.shape[1:], model.data_shape, len(images)) if tiled else None
        codec.pixels.check(examples)
        content = container.content_digest(images)
        words, options = codec.encode(examples, salt=content, valid=valid)
        overhead_words = codec.seed_words
    else:
        codes = codec.codes(images)
        content = container.content_digest(codes)
        words, options = codec.encode(codes)
        overhead_words = 0
    header = Header(method, str(model_name), container.digest(weights_digest), content, images.dtype.str,
                    tuple(images.shape[1:]), len(images), options)
    raw = container.pack(header, words)
    dims = images.size
    summary = {"method": method, "model": str(model_name), "examples": len(images), "bytes": len(raw),
               **({"tiles_per_image": tiling.tiles_per_image(images.shape[1:], model.data_shape)} if tiled else {}),
               "header_bytes": len(raw) - 4 * len(words), "payload_bytes": 4 * len(words),
               "initial_bytes": 4 * overhead_words, "bits_per_dim": 8 * len(raw) / dims}
    if method == "vq_codes":
        summary["information_bits"] = float(codec.information_bits(codes).sum())
    return raw, summary


def check_model(header, model, weights_digest):
    if container.digest(weights_digest) != header.weights_digest:
        raise CompressedFileError(f"the file was compressed with {header.model} (weights {header.weights_digest.hex()}...), "
                                  f"and this model's weights differ ({container.digest(weights_digest).hex()}...): "
                                  "decompress with the model it was made with")
    try:
        tiled = tiling.needs_tiles(header.shape, model.data_shape)
    except InputError:
        tiled = None
    if tiled is None or (tiled and header.method not in LOSSLESS):
        raise CompressedFileError(f"the file holds examples of shape {header.shape}, the model makes {tuple(model.data_shape)}")


def decompress(raw, model, weights_digest, source="the file"):
    """{"header", and "images" (lossless: exactly the compressed array) or "codes" and "reconstructions" (lossy)}."""
    header, words = container.unpack(raw, source)
    check_model(header, model, weights_digest)
    codec = codec_for(model, header.method, header.options)
    if header.method in LOSSLESS:
        tiled = tiling.needs_tiles(header.shape, model.data_shape)
        coded = header.count * (tiling.tiles_per_image(header.shape, model.data_shape) if tiled else 1)
        valid = tiling.valid_sizes(header.shape, model.data_shape, header.count) if tiled else None
        try:
            pixels = codec.decode(words, header.options, coded, salt=header.content_digest, valid=valid)
        except (InputError, ValueError, RuntimeError) as err:  # the coder's own complaints about a damaged stream
            raise CompressedFileError(f"{source} does not decode: {err}") from None
        images = codec.pixels.restore(pixels, np.dtype(header.dtype))
        if tiled:
            images = tiling.from_tiles(images, header.shape)
        if container.content_digest(images) != header.content_digest:
            raise CompressedFileError(f"{source} decoded to images that differ from the ones compressed "
                                      "(the digest in its header does not match): it was altered or made with other numerics")
        return {"header": header, "images": images}
    try:
        codes = codec.decode(words, header.options, header.count)
    except (InputError, ValueError, RuntimeError) as err:
        raise CompressedFileError(f"{source} does not decode: {err}") from None
    if container.content_digest(codes) != header.content_digest:
        raise CompressedFileError(f"{source} decoded to code grids that differ from the ones compressed "
                                  "(the digest in its header does not match)")
    return {"header": header, "codes": codes, "reconstructions": codec.reconstruct(codes)}


def decodes_to(decoded, images):
    """Whether ``decompress`` gave back exactly ``images`` (a lossy file's codes are not compared)."""
    return "images" not in decoded or np.array_equal(decoded["images"], images)


def save_decoded(decoded, folder):
    """Write what ``decompress`` gave into ``folder``: ``images.npz`` (lossless), or ``reconstructions.npz`` with
    the codes (lossy). Returns the images to preview."""
    if "images" in decoded:
        np.savez_compressed(Path(folder) / "images.npz", images=decoded["images"])
        return decoded["images"]
    np.savez_compressed(Path(folder) / "reconstructions.npz", images=decoded["reconstructions"], codes=decoded["codes"])
    return decoded["reconstructions"]
