"""Compression with zoo models against the standard codecs, measured side by side in one run.

    python tools/bench_compression.py --out reports          # the Compression tables of docs/compression.md (about 3 minutes)
    python tools/bench_compression.py --quick --out /tmp/c   # the bundled digits only (about 30 s)

Lossless: bits-back ANS with ``vae.mnist_mini`` on the binarized test split of the bundled MNIST digits
(1,000 images) and with ``vae.fashion_mnist`` on the binarized Fashion-MNIST test split (10,000 images;
skipped if the data set is not installed), against gzip, bz2, lzma, PNG and lossless WebP.
With ``--eight-bit DATA=MODEL``: bits-back of DATA's 8-bit test images under MODEL's discretized logistic
mixture, against the same codecs on the same bytes.
Lossy: ``vq_vae.mnist_mini``'s codes for the grey test digits against JPEG and WebP.

Writes ``compression.json`` (lossless table), ``compression_lossy.json`` (lossy table), the full
figures in ``compression_details.json``, ``rate_distortion.png``, and the ``.vzc`` files under
``compressed/``; ``tools/write_readme.py`` puts the tables in the README.
"""

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

import vae_zoo
from vae_zoo import data as data_module
from vae_zoo.compression import report
from vae_zoo.evaluation import metrics as evaluation
from vae_zoo.errors import DataError
from vae_zoo.io.saving import weights_digest
from vae_zoo.io.strict_json import dumps

# Townsend, Bird and Barber (ICLR 2019), Table 2, binarized MNIST test set, bits per dimension.
# Kingma, Abbeel and Ho (ICML 2019, Bit-Swap), Table 2, 8-bit MNIST, bits per dimension.
BIT_SWAP_2019 = {"Bit-Swap": 1.29, "BB-ANS": 1.48, "lzma": 1.49, "bz2": 1.59, "gzip": 1.65, "WebP": 2.10, "PNG": 2.80}
TOWNSEND_2019 = {"model -ELBO": 0.19, "bits-back": 0.19, "bz2": 0.25, "gzip": 0.33, "PNG": 0.78, "WebP": 0.44}
LOSSLESS = [("mnist_mini", "vae.mnist_mini"), ("fashion_mnist", "vae.fashion_mnist")]
LOSSY = [("mnist_mini", "vq_vae.mnist_mini")]
SHOWN_QUALITIES = {"JPEG": (1, 10, 50), "WebP": (0, 10, 50)}


def test_images(name, binarized, seed=0):
    """The test split: binarized once with ``seed`` (as ``vae-zoo evaluate`` scores it), or grey."""
    data = data_module.load(name, binarize="dynamic" if binarized else "none", seed=seed)
    return data.take("test")[0]


def lossless_row(name, result, form="binarized"):
    rows = result["rows"]
    bpd = lambda key: f"{rows[key]['bits_per_dim']:.4f}"
    file_row = rows["vae-zoo bits-back (file)"]
    return [f"{name} test, {form} ({result['examples']:,})", f"`{result['model']}`", f"**{bpd('vae-zoo bits-back (file)')}**",
            bpd("model -ELBO"), f"{100 * result['gap_to_elbo']:+.2f}%", bpd("gzip"), bpd("bz2"), bpd("lzma"), bpd("PNG"), bpd("WebP"),
            f"{file_row['encode_images_per_second']:,.0f} / {file_row['decode_images_per_second']:,.0f}"]


def eight_bit_row(name, result):
    rows = result["rows"]
    bpd = lambda key: f"{rows[key]['bits_per_dim']:.3f}" if key in rows else "not installed"
    file_row = rows["vae-zoo bits-back (file)"]
    best_other = min(rows[c]["bits_per_dim"] for c in result["codecs"])
    webp = rows["WebP"]["bits_per_dim"]
    return [f"{name} test, 8-bit ({result['examples']:,})", f"`{result['model']}`", f"**{bpd('vae-zoo bits-back (file)')}**",
            bpd("vae-zoo bits-back (without initial bits)"), bpd("model -ELBO"), bpd("model IS-NLL"),
            f"{100 * result['gap_to_elbo']:+.2f}%", bpd("gzip"), bpd("bz2"), bpd("lzma"), bpd("PNG"), bpd("WebP"),
            bpd("JPEG 2000"), bpd("JPEG XL"),
            f"{100 * (1 - file_row['bits_per_dim'] / webp):.1f}% / {'yes' if file_row['bits_per_dim'] < best_other else 'no'}",
            f"{file_row['encode_images_per_second']:,.1f} / {file_row['decode_images_per_second']:,.1f}"]


def mosaic(images, size):
    """A size x size image cut from the top left of a grid of ``images`` (8-bit levels, as uint8), in order."""
    count = -(-size // images.shape[1])
    across = -(-size // images.shape[2])
    rows = [np.concatenate(list(images[r * across:(r + 1) * across]), axis=1) for r in range(count)]
    return np.round(np.concatenate(rows)[:size, :size] * 255).astype(np.uint8)


def save_png(image, path):
    from PIL import Image  # lazy: only the large-image row needs it

    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def large_row(name, result):
    rows = result["rows"]
    bpd = lambda key: f"{rows[key]['bits_per_dim']:.3f}" if key in rows else "not installed"
    file_row = rows["vae-zoo bits-back (file)"]
    side = "x".join(str(d) for d in result["shape"][:2])
    return [f"{name} test images as one {side} PNG", f"`{result['model']}` ({'x'.join(map(str, result['tile'][:2]))} "
            f"tiles: {result['tiles']})", f"**{bpd('vae-zoo bits-back (file)')}**", bpd("vae-zoo bits-back (without initial bits)"),
            bpd("gzip"), bpd("bz2"), bpd("lzma"), bpd("PNG"), bpd("WebP"), bpd("JPEG 2000"), bpd("JPEG XL"),
            f"{file_row['encode_seconds']:.1f} / {file_row['decode_seconds']:.1f}"]


def lossy_rows(name, result):
    vq = result["vq_vae"]
    rows = [[f"{name} test, grey ({result['examples']:,})", f"VQ-VAE codes, `{result['model']}`", "learned MADE prior",
             f"**{vq['bits_per_pixel']:.4f}**", f"{vq['information_bits_per_pixel']:.4f}", f"{vq['psnr']:.2f}"]]
    for codec, qualities in SHOWN_QUALITIES.items():
        for point in result[codec]:
            if point["quality"] in qualities:
                rows.append(["", codec, f"quality {point['quality']}", f"{point['bits_per_pixel']:.3f}", "", f"{point['psnr']:.2f}"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reports", help="folder for the JSON tables, the PNG and the .vzc files")
    parser.add_argument("--quick", action="store_true", help="the bundled digits only")
    parser.add_argument("--eight-bit", action="append", default=[], metavar="DATA=MODEL",
                        help="also code DATA's 8-bit test images with MODEL (a pretrained name or a model folder whose "
                             "likelihood is the logistic mixture), e.g. fashion_mnist=runs/vae_fashion_mnist_8bit")
    parser.add_argument("--limit", type=int, default=None, help="code at most this many test images of each 8-bit set")
    parser.add_argument("--nll-k", type=int, default=100, help="importance samples of the 8-bit models' IS-NLL")
    parser.add_argument("--large", action="append", default=[], metavar="DATA=MODEL",
                        help="also code one --large-size square image, a mosaic of DATA's 8-bit test images, with MODEL "
                             "in its tiles, against the codecs on the same image (compression_large.json)")
    parser.add_argument("--large-size", type=int, default=256, help="the side of the --large image in pixels")
    parser.add_argument("--large-only", action="store_true",
                        help="measure the --large images only, leaving the other tables as they are")
    args = parser.parse_args()
    out = Path(args.out)
    (out / "compressed").mkdir(parents=True, exist_ok=True)
    machine = f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores, {platform.python_version()}"
    details = {"lossless": {}, "lossy": {}}
    lossless_table, lossy_table = [], []
    for name, model_name in [] if args.large_only else LOSSLESS[:1] if args.quick else LOSSLESS:
        try:
            images = test_images(name, binarized=True)
        except DataError as err:
            print(f"skipping {name}: {err}", file=sys.stderr)
            continue
        model = vae_zoo.load_pretrained(model_name)
        result = report.lossless(model, images, model_name, weights_digest(model), save_to=out / "compressed" / f"{name}.vzc")
        details["lossless"][name] = result
        lossless_table.append(lossless_row(name, result))
        print(f"{name}: {result['rows']['vae-zoo bits-back (file)']['bits_per_dim']:.4f} bits/dim, "
              f"-ELBO {result['rows']['model -ELBO']['bits_per_dim']:.4f}, gap {100 * result['gap_to_elbo']:+.2f}%", flush=True)
    eight_bit_table = []
    for pair in args.eight_bit:
        name, _, model_name = pair.partition("=")
        model = vae_zoo.load(model_name) if Path(model_name).is_dir() else vae_zoo.load_pretrained(model_name)
        images = test_images(name, binarized=False)[: args.limit]  # the 256 grey levels (or colours), as floats v / 255
        result = report.lossless(model, images, Path(model_name).name, weights_digest(model),
                                 save_to=out / "compressed" / f"{name}_8bit.vzc")
        nll = -evaluation.log_likelihood(model, images, k=args.nll_k, seed=0)
        result["rows"]["model IS-NLL"] = {"bits_per_dim": float(nll.mean() / np.log(2.0) / np.prod(images.shape[1:])),
                                          "k": args.nll_k}
        details["lossless"][f"{name} 8-bit"] = result
        eight_bit_table.append(eight_bit_row(name, result))
        print(" | ".join(eight_bit_table[-1]), flush=True)
    large_table = []
    for pair in args.large:
        name, _, model_name = pair.partition("=")
        model = vae_zoo.load(model_name) if Path(model_name).is_dir() else vae_zoo.load_pretrained(model_name)
        image = mosaic(test_images(name, binarized=False), args.large_size)
        save_png(image, out / "compressed" / f"{name}_{args.large_size}.png")
        result = report.large_image(model, image, Path(model_name).name, weights_digest(model),
                                    save_to=out / "compressed" / f"{name}_{args.large_size}.vzc")
        details["lossless"][f"{name} {args.large_size}x{args.large_size}"] = result
        large_table.append(large_row(name, result))
        print(" | ".join(large_table[-1]), flush=True)
    eight_bit_table.append(["8-bit MNIST (10,000), Kingma et al. 2019 (Bit-Swap), Table 2", "their hierarchical VAE",
                            f"{BIT_SWAP_2019['Bit-Swap']:.2f}", "", "", "", "", f"{BIT_SWAP_2019['gzip']:.2f}",
                            f"{BIT_SWAP_2019['bz2']:.2f}", f"{BIT_SWAP_2019['lzma']:.2f}", f"{BIT_SWAP_2019['PNG']:.2f}",
                            f"{BIT_SWAP_2019['WebP']:.2f}", "", "", "", ""])
    lossless_table.append(["MNIST test, binarized (10,000), Townsend et al. 2019, Table 2", "their VAE",
                           f"{TOWNSEND_2019['bits-back']:.2f}", f"{TOWNSEND_2019['model -ELBO']:.2f}", "", f"{TOWNSEND_2019['gzip']:.2f}",
                           f"{TOWNSEND_2019['bz2']:.2f}", "", f"{TOWNSEND_2019['PNG']:.2f}", f"{TOWNSEND_2019['WebP']:.2f}", ""])
    for name, model_name in [] if args.large_only else LOSSY:
        model = vae_zoo.load_pretrained(model_name)
        result = report.lossy(model, test_images(name, binarized=False), model_name, weights_digest(model),
                              save_to=out / "compressed" / f"{name}_vq.vzc")
        details["lossy"][name] = result
        lossy_table.extend(lossy_rows(name, result))
        print(f"{name} VQ: {result['vq_vae']['bits_per_pixel']:.4f} bits/pixel "
              f"({100 * result['vq_vae']['file_over_information']:+.2f}% over -log2 p(codes)), PSNR {result['vq_vae']['psnr']:.2f} dB",
              flush=True)
    common = {"tool": "tools/bench_compression.py", "command": " ".join(["python", "tools/bench_compression.py"] + sys.argv[1:]),
              "machine": machine}
    if args.large:
        (out / "compression_large.json").write_text(dumps({**common, "measure": "bits per dimension of one image, "
                                                           "header and initial bits included", "columns": [
            "image", "model (tile)", "vae-zoo bits-back", "without initial bits", "gzip", "bz2", "lzma", "PNG", "WebP",
            "JPEG 2000", "JPEG XL", "seconds (enc / dec)"], "rows": large_table}, indent=2) + "\n")
    write_details(out / "compression_details.json", common, details)
    if args.large_only:
        return
    png = report.plot_rate_distortion({f"{n} test, grey": details["lossy"][n] for n in details["lossy"]}, out / "rate_distortion.png")
    measure = "bits per dimension of each whole compressed set, headers included; images/s of vae-zoo's encode / decode"
    (out / "compression.json").write_text(dumps({**common, "measure": measure, "columns": [
        "test images", "model", "vae-zoo bits-back", "model -ELBO", "file vs -ELBO", "gzip", "bz2", "lzma", "PNG", "WebP",
        "images/s (enc / dec)"], "rows": lossless_table}, indent=2) + "\n")
    (out / "compression_lossy.json").write_text(dumps({**common, "measure": "bits per pixel (file size, headers included) and mean PSNR",
                                                       "columns": ["test images", "codec", "setting", "bits/pixel", "-log2 p(codes)/pixel",
                                                                   "PSNR (dB)"], "rows": lossy_table}, indent=2) + "\n")
    if args.eight_bit:
        (out / "compression_8bit.json").write_text(dumps({**common, "measure": measure + "; IS-NLL with --nll-k draws", "columns": [
            "test images", "model", "vae-zoo bits-back", "without initial bits", "model -ELBO", "model IS-NLL", "file vs -ELBO",
            "gzip", "bz2", "lzma", "PNG", "WebP", "JPEG 2000", "JPEG XL", "below WebP / below every codec",
            "images/s (enc / dec)"], "rows": eight_bit_table}, indent=2) + "\n")
    print(json.dumps({"written": [str(out / f) for f in ("compression.json", "compression_lossy.json", "compression_details.json")] + [png]}, indent=2))


def write_details(path, common, details):
    """The full figures; those of sets this run did not measure (an earlier run's --eight-bit sets) stay."""
    kept = json.loads(path.read_text()) if path.exists() else {}
    for part in ("lossless", "lossy"):
        details[part] = {**kept.get(part, {}), **details[part]}
    path.write_text(dumps({**common, **details}, indent=2) + "\n")

if __name__ == "__main__":
    main()
