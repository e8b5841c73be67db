"""8-bit and colour images: the zoo's models against the lossless codecs, on the same test images, in one run.

    python tools/bench_image_codecs.py                       # reports/image_codecs.json (the table of docs/images.md)
    python tools/bench_image_codecs.py --examples 50 --k 50  # a quick look

For each data set, the first ``--examples`` test images (8-bit: Fashion-MNIST's 256 grey levels; emoji
composited on white) are stored by every lossless codec (PNG at its best setting, lossless WebP at method 6,
gzip, bz2 and lzma on the raw bytes of the whole set), and each published model scores the same images by
importance sampling (k draws): -log2 p(x) per dimension. Under a discretized likelihood p(x) is a discrete
probability, so that figure is a code length (what an ideal entropy coder driven by the model spends, before
the bits-back overhead), directly comparable with the codecs' file sizes.
"""

import argparse
import platform
import time

import numpy as np

import vae_zoo
from report_output import REPORTS, printed_into
from vae_zoo import data as data_module
from vae_zoo.compression import baselines
from vae_zoo.evaluation import metrics
from vae_zoo.io.saving import weights_digest
from vae_zoo.io.strict_json import dumps

# (data set label, source name, options, published models scored on it)
SETS = [
    ("Fashion-MNIST, 8-bit grey", "fashion_mnist", {"binarize": "none"},
     ["hierarchical_vae.fashion_mnist_8bit", "vae.fashion_mnist_8bit"]),
    ("emoji 64x64, RGB on white", "emoji", {"mode": "rgb", "background": "white"},
     ["hierarchical_vae.emoji", "vae.emoji"]),
]
CODECS = ("PNG", "WebP", "lzma", "bz2", "gzip")
# Kingma, Abbeel and Ho (ICML 2019, Bit-Swap), Table 2: 8-bit MNIST, bits per dimension.
BIT_SWAP_MNIST = {"hierarchical VAE (Bit-Swap)": 1.29, "BB-ANS": 1.48, "lzma": 1.49, "WebP": 2.10, "PNG": 2.80}


def model_bits(name, images, k, seed=0):
    """-log2 p(x) per dimension of ``images`` under the published model ``name``, by importance sampling."""
    model = vae_zoo.load_pretrained(name)
    start = time.perf_counter()
    log_p = metrics.log_likelihood(model, images, k=k, batch_size=10, seed=seed, progress=True)
    seconds = time.perf_counter() - start
    dims = np.prod(images.shape[1:])
    bits = -log_p / (dims * np.log(2.0))
    return {"bits_per_dim": float(bits.mean()), "standard_error": float(bits.std(ddof=1) / np.sqrt(len(bits))),
            "k": k, "seconds": seconds, "weights_sha256": weights_digest(model)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=500, help="test images of each set (the first ones)")
    parser.add_argument("--k", type=int, default=1000, help="importance samples per image")
    parser.add_argument("--out", default=str(REPORTS / "image_codecs.json"))
    args = parser.parse_args()
    with printed_into(REPORTS / "image_codecs.txt"):
        details, rows = {}, []
        for label, source, options, models in SETS:
            images = data_module.load(source, **options).take("test", args.examples)[0]
            dims = images.size
            codecs = baselines.lossless_codecs(images, binary=False)
            found = {codec: 8.0 * codecs[codec]["bytes"] / dims for codec in CODECS}
            scored = {}
            for name in models:
                scored[name] = model_bits(name, images, args.k)
                print(f"{label}: {name} {scored[name]['bits_per_dim']:.3f} bits/dim "
                      f"(+- {scored[name]['standard_error']:.3f}, k = {args.k}, {scored[name]['seconds']:.0f} s)", flush=True)
            best_codec = min(found.values())
            for name, result in scored.items():
                below_webp = 1.0 - result["bits_per_dim"] / found["WebP"]
                rows.append([f"{label} ({len(images)} test images)", f"`{name}`", f"**{result['bits_per_dim']:.3f}**",
                             *(f"{found[c]:.3f}" for c in CODECS), f"{100 * below_webp:.1f}%",
                             "yes" if result["bits_per_dim"] < best_codec else "no"])
            print(f"{label}: " + ", ".join(f"{c} {v:.3f}" for c, v in found.items()), flush=True)
            details[source] = {"examples": len(images), "codecs": codecs, "codec_bits_per_dim": found, "models": scored}
        rows.append(["8-bit MNIST, Kingma et al. 2019 (Bit-Swap), Table 2", "their hierarchical VAE",
                     f"{BIT_SWAP_MNIST['hierarchical VAE (Bit-Swap)']:.2f}", f"{BIT_SWAP_MNIST['PNG']:.2f}",
                     f"{BIT_SWAP_MNIST['WebP']:.2f}", f"{BIT_SWAP_MNIST['lzma']:.2f}", "", "", "", ""])
        machine = f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores, {platform.python_version()}"
        report = {"tool": "tools/bench_image_codecs.py", "machine": machine,
                  "measure": f"bits per dimension; models: -log2 p(x) by importance sampling (k = {args.k}); codecs: file sizes "
                             "(PNG per image at its best setting, lossless WebP per image at method 6, gzip/bz2/lzma on the "
                             "whole set's raw bytes)",
                  "columns": ["test images", "model", "model bits/dim", *CODECS, "below WebP", "below every codec"],
                  "rows": rows, "details": details}
        with open(args.out, "w") as handle:
            handle.write(dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
