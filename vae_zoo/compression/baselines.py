"""The codecs people already use, on the same images: gzip, bz2 and lzma on the whole set, PNG and
WebP (lossless) image by image, and JPEG and WebP (lossy) at a range of qualities.

Every function returns measured sizes in bytes (and, for the lossy ones, PSNR), and checks that
what it decodes is what it encoded, so that a size is never reported for a broken round trip.
"""

import bz2
import gzip
import io
import lzma
import time

import numpy as np
from PIL import Image

STREAM_CODECS = {
    "gzip": (lambda b: gzip.compress(b, compresslevel=9, mtime=0), gzip.decompress),
    "bz2": (lambda b: bz2.compress(b, compresslevel=9), bz2.decompress),
    "lzma": (lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
}


def _timed(function, *args):
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def as_bytes(images, binary):
    """The array forms a general-purpose compressor is given: one byte per pixel, and for binary
    images also 8 pixels per byte (``np.packbits``); each codec is credited with its better one."""
    pixels = np.asarray(images).reshape(len(images), -1)
    if binary:
        bits = (pixels > 0.5).astype(np.uint8)
        return {"bytes": bits.tobytes(), "packed bits": np.packbits(bits, axis=None).tobytes()}
    return {"bytes": to_uint8(pixels).tobytes()}


def to_uint8(images):
    images = np.asarray(images)
    return images.astype(np.uint8) if images.dtype == np.uint8 else np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def stream_codecs(images, binary):
    """{codec: {"bytes", "form", "encode_s", "decode_s"}} for gzip, bz2 and lzma on the whole set."""
    forms = as_bytes(images, binary)
    results = {}
    for name, (encode, decode) in STREAM_CODECS.items():
        best = None
        for form, raw in forms.items():
            packed, encode_s = _timed(encode, raw)
            restored, decode_s = _timed(decode, packed)
            assert restored == raw, f"{name} did not round-trip"
            if best is None or len(packed) < best["bytes"]:
                best = {"bytes": len(packed), "form": form, "encode_s": encode_s, "decode_s": decode_s}
        results[name] = best
    return results


def _image(pixels, binary):
    plane = np.asarray(pixels).reshape(pixels.shape[0], pixels.shape[1], -1)
    if plane.shape[-1] == 1:
        plane = plane[..., 0]
    if binary:
        return Image.fromarray((plane > 0.5).astype(np.uint8) * 255).convert("1")
    return Image.fromarray(to_uint8(plane))


def per_image_codec(images, binary, format_name, **options):
    """{"bytes", "encode_s", "decode_s"}: every image saved on its own (as a user would store them), sizes summed."""
    total, encode_s, decode_s = 0, 0.0, 0.0
    for pixels in images:
        image = _image(pixels, binary)
        buffer = io.BytesIO()
        start = time.perf_counter()
        image.save(buffer, format=format_name, **options)
        encode_s += time.perf_counter() - start
        total += buffer.tell()
        start = time.perf_counter()
        restored = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert(image.mode))
        decode_s += time.perf_counter() - start
        if options.get("lossless", True) and format_name != "JPEG":
            assert np.array_equal(restored, np.asarray(image)), f"{format_name} did not round-trip"
    return {"bytes": total, "encode_s": encode_s, "decode_s": decode_s}


def jpeg_xl_available():
    """Whether Pillow can write JPEG XL here (the ``pillow-jxl-plugin`` package registers it)."""
    try:
        import pillow_jxl  # noqa: F401  (lazy: an optional plugin; importing it registers JXL with Pillow)
    except ImportError:
        return False
    return True


def lossless_codecs(images, binary):
    """Sizes of the standard lossless codecs on ``images``: gzip, bz2, lzma, PNG and WebP; for 8-bit images also
    lossless JPEG 2000 and, where ``pillow-jxl-plugin`` is installed, lossless JPEG XL (effort 9). Each round
    trip is checked."""
    if binary:
        images = (np.asarray(images) > 0.5).astype(np.float32)  # 0/1 pixels, stored by WebP as 0/255 greys
    results = stream_codecs(images, binary)
    results["PNG"] = {**per_image_codec(images, binary, "PNG", optimize=True), "form": "1-bit PNG" if binary else "8-bit PNG"}
    results["WebP"] = {**per_image_codec(images, False, "WEBP", lossless=True, quality=100, method=6), "form": "lossless WebP"}
    if not binary:
        # Pillow's JPEG 2000 is lossless (the reversible 5/3 wavelet) unless quality layers are asked for.
        results["JPEG 2000"] = {**per_image_codec(images, False, "JPEG2000", irreversible=False), "form": "lossless JPEG 2000"}
        if jpeg_xl_available():
            results["JPEG XL"] = {**per_image_codec(images, False, "JXL", lossless=True, effort=9), "form": "lossless JPEG XL, effort 9"}
    return results


def psnr(reference, reconstruction):
    """Mean over images of 10 log10(1 / MSE), for values in [0, 1]."""
    reference = np.asarray(reference, np.float64).reshape(len(reference), -1)
    reconstruction = np.asarray(reconstruction, np.float64).reshape(len(reconstruction), -1)
    mse = np.maximum(((reference - reconstruction) ** 2).mean(axis=1), 1e-10)
    return float(np.mean(10.0 * np.log10(1.0 / mse)))


def lossy_curve(images, format_name, qualities, **options):
    """[{"quality", "bits_per_pixel", "psnr"}] for a lossy codec, image by image, against the 8-bit originals."""
    originals = to_uint8(images).reshape(len(images), images.shape[1], images.shape[2], -1)
    points = []
    for quality in qualities:
        total, decoded = 0, []
        for plane in originals[..., 0]:
            buffer = io.BytesIO()
            Image.fromarray(plane).save(buffer, format=format_name, quality=int(quality), **options)
            total += buffer.tell()
            decoded.append(np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"), np.float64) / 255.0)
        pixels = originals.shape[0] * originals.shape[1] * originals.shape[2]
        points.append({"quality": int(quality), "bits_per_pixel": 8.0 * total / pixels,
                       "psnr": psnr(originals[..., 0] / 255.0, np.stack(decoded))})
    return points
