"""Side-by-side compression figures, measured in one run: the zoo's bitstream, the rate it should
reach, and the standard codecs on the same images.

Lossless (bits-back): bits per dimension of the whole ``.vzc`` file (header and initial bits
included), the same without the initial bits, the model's -ELBO in bits per dimension on the same
images, gzip, bz2, lzma, PNG and lossless WebP; encode and decode throughput.

Lossy (VQ codes): bits per pixel of the file against -log2 p(codes), and PSNR, beside JPEG and
WebP curves over their quality settings, as a table and a rate-distortion PNG.
"""

import time

import numpy as np

from vae_zoo.compression import baselines, files
from vae_zoo.errors import InputError
from vae_zoo.evaluation import metrics as evaluation
from vae_zoo.io.folders import write_file

JPEG_QUALITIES = (1, 5, 10, 25, 50, 75, 90, 95)
CODECS = ("gzip", "bz2", "lzma", "PNG", "WebP", "JPEG 2000", "JPEG XL")  # the lossless ones a file is compared with
WEBP_QUALITIES = (0, 5, 10, 25, 50, 75, 90, 95)


def negative_elbo_bits(model, images, k=16, seed=0, batch=500):
    """Mean -ELBO per image in bits: the mean of k single-sample log weights per image (an unbiased ELBO).
    Batches are sized, as the IS-NLL's are, by what one draw holds: 500 colour images at 64x64 with 16 draws
    once asked for tens of gigabytes."""
    batch = max(1, min(int(batch), evaluation.MAX_DECODER_VALUES // (k * evaluation.decoder_values_per_draw(model))))
    total = 0.0
    for start in range(0, len(images), batch):
        chunk = np.asarray(images[start:start + batch], np.float32)
        log_weights = model.log_weights(chunk, k=k, seed=seed + start).numpy()
        total += float(log_weights.mean(axis=0).sum())
    return -total / len(images) / np.log(2.0)


def _throughput(count, seconds):
    return count / seconds if seconds > 0 else None


def _save(raw, save_to):
    if save_to is not None:
        write_file(save_to, raw, overwrite=True)


def _round_trip(model, images, model_name, weights_digest, save_to):
    """Compress and decompress once, timing each: (bytes, summary, decoded, encode seconds, decode seconds)."""
    start = time.perf_counter()
    raw, summary = files.compress(model, images, model_name, weights_digest)
    encode_s = time.perf_counter() - start
    _save(raw, save_to)
    start = time.perf_counter()
    decoded = files.decompress(raw, model, weights_digest)
    return raw, summary, decoded, encode_s, time.perf_counter() - start


def lossless(model, images, model_name, weights_digest, k=16, seed=0, save_to=None):
    """The lossless table for ``images`` under a VAE that codes them (binary images under a Bernoulli, 8-bit
    ones under a discretized logistic mixture): every row in bits per dimension. ``save_to``: also write the
    compressed file there."""
    images = files.as_examples(images, model)
    pixels = files.codec_for(model, files.method_for(model)).pixels
    pixels.check(images)
    dims = images.size
    raw, summary, decoded, encode_s, decode_s = _round_trip(model, images, model_name, weights_digest, save_to)
    if not np.array_equal(decoded["images"], images):
        raise InputError("the bits-back file did not decode to the same images")
    elbo_bits = negative_elbo_bits(model, images, k=k, seed=seed)
    rows = {
        "vae-zoo bits-back (file)": {"bits_per_dim": 8 * len(raw) / dims, "bytes": len(raw),
                                     "encode_images_per_second": _throughput(len(images), encode_s),
                                     "decode_images_per_second": _throughput(len(images), decode_s)},
        "vae-zoo bits-back (without initial bits)": {"bits_per_dim": 8 * (len(raw) - summary["initial_bytes"]) / dims,
                                                     "bytes": len(raw) - summary["initial_bytes"]},
        "model -ELBO": {"bits_per_dim": elbo_bits * len(images) / dims, "k": k},
    }
    rows.update(codec_rows(images, binary=pixels.kind == "binary"))
    file_rate, elbo_rate = rows["vae-zoo bits-back (file)"]["bits_per_dim"], rows["model -ELBO"]["bits_per_dim"]
    return {
        "model": str(model_name), "examples": len(images), "dimensions": int(dims), "rows": rows,
        "gap_to_elbo": file_rate / elbo_rate - 1.0,
        "initial_bytes": summary["initial_bytes"], "header_bytes": summary["header_bytes"],
        "beats": sorted(name for name in CODECS if name in rows and file_rate < rows[name]["bits_per_dim"]),
        "codecs": sorted(name for name in CODECS if name in rows),
        "method": "bits-back ANS (Townsend et al., 2019) with constriction; the file's size over the whole set, "
                  "header and initial bits included; -ELBO averaged over k single-sample estimates per image",
    }


def codec_rows(images, binary):
    """Every lossless codec's row for ``images``: bits per dimension, bytes, form, images per second each way."""
    dims = images.size
    return {name: {"bits_per_dim": 8 * result["bytes"] / dims, "bytes": result["bytes"], "form": result["form"],
                   "encode_images_per_second": _throughput(len(images), result["encode_s"]),
                   "decode_images_per_second": _throughput(len(images), result["decode_s"])}
            for name, result in baselines.lossless_codecs(images, binary).items()}


def large_image(model, image, model_name, weights_digest, save_to=None):
    """One image larger than the model's examples, coded in the model's tiles (``tiling``), beside every lossless
    codec on the same image; bits per dimension of the image's own pixels."""
    images = files.as_examples(image, model)
    if len(images) != 1:
        raise InputError(f"large_image codes one image, not {len(images)}")
    files.codec_for(model, files.method_for(model)).pixels.check(images)
    raw, summary, decoded, encode_s, decode_s = _round_trip(model, images, model_name, weights_digest, save_to)
    if not np.array_equal(decoded["images"], images):
        raise InputError("the tiled file did not decode to the same image")
    dims = images.size
    rows = {"vae-zoo bits-back (file)": {"bits_per_dim": 8 * len(raw) / dims, "bytes": len(raw),
                                         "encode_seconds": encode_s, "decode_seconds": decode_s},
            "vae-zoo bits-back (without initial bits)": {"bits_per_dim": 8 * (len(raw) - summary["initial_bytes"]) / dims}}
    rows.update(codec_rows(images, binary=False))
    file_rate = rows["vae-zoo bits-back (file)"]["bits_per_dim"]
    return {"model": str(model_name), "shape": list(images.shape[1:]), "tile": list(model.data_shape),
            "tiles": summary.get("tiles_per_image", 1), "rows": rows,
            "beats": sorted(name for name in CODECS if name in rows and file_rate < rows[name]["bits_per_dim"]),
            "method": "the image cut into the model's tiles (edges padded by repetition, padding not coded), each tile "
                      "coded by bits-back; the file's size with header and initial bits over the image's own pixels"}


def lossy(model, images, model_name, weights_digest, save_to=None):
    """The lossy table for ``images`` (values in [0, 1]) under a VQ-VAE, beside JPEG and WebP curves."""
    images = files.as_examples(np.asarray(images, np.float32), model)
    pixels = images.size
    raw, summary, decoded, encode_s, decode_s = _round_trip(model, images, model_name, weights_digest, save_to)
    information = summary["information_bits"]
    return {
        "model": str(model_name), "examples": len(images),
        "vq_vae": {"bits_per_pixel": 8 * len(raw) / pixels, "bytes": len(raw), "payload_bytes": summary["payload_bytes"],
                   "information_bits_per_pixel": information / pixels,
                   "file_over_information": 8 * len(raw) / information - 1.0,
                   "psnr": baselines.psnr(images, decoded["reconstructions"]),
                   "encode_images_per_second": _throughput(len(images), encode_s),
                   "decode_images_per_second": _throughput(len(images), decode_s)},
        "JPEG": baselines.lossy_curve(images, "JPEG", JPEG_QUALITIES),
        "WebP": baselines.lossy_curve(images, "WEBP", WEBP_QUALITIES, method=6),
        "method": "VQ-VAE code grids range-coded under the model's prior (constriction); PSNR of the decoder's mean "
                  "against the images, mean over images; JPEG and WebP image by image with Pillow, headers included",
    }


def plot_rate_distortion(results, path):
    """A rate-distortion PNG: bits per pixel against PSNR for each lossy report in ``results`` ({title: lossy(...)})."""
    # Lazy: matplotlib is heavy, and only the rate-distortion figure needs it.
    import matplotlib

    matplotlib.use("Agg")  # before pyplot is imported: files only, no display
    import matplotlib.pyplot as plt  # lazy, as above
    import matplotlib.ticker  # lazy, as above

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for axis, (title, result) in zip(axes[0], results.items()):
        for codec, marker in (("JPEG", "o-"), ("WebP", "s-")):
            curve = result[codec]
            axis.plot([p["bits_per_pixel"] for p in curve], [p["psnr"] for p in curve], marker, label=codec)
        point = result["vq_vae"]
        axis.plot([point["bits_per_pixel"]], [point["psnr"]], "r*", markersize=14, label=f"VQ-VAE ({result['model']})")
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xlabel("bits per pixel (log scale)")
        axis.set_ylabel("PSNR (dB)")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
