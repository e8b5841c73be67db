"""8-bit and colour images: the zoo's models against the lossless codecs, on the same test images, in one run.

    python tools/bench_image_codecs.py         # reports/image_codecs.json (the table of docs/images.md), a minute

For each data set, the first test images that the published models' reports were measured on (8-bit: Fashion-MNIST's 256 grey levels; emoji
composited on white) are stored by every lossless codec (PNG at its best setting, lossless WebP at method 6,
gzip, bz2 and lzma on the raw bytes of the whole set), and each published model scores the same images by
importance sampling in its published report (k = 1000 draws): -log2 p(x) per dimension. Under a discretized likelihood p(x) is a discrete
probability, so that figure is a code length (what an ideal entropy coder driven by the model spends, before
the bits-back overhead), directly comparable with the codecs' file sizes.
"""

import argparse
import platform

import vae_zoo
from report_output import REPORTS, printed_into
from vae_zoo import data as data_module
from vae_zoo.compression import baselines
from vae_zoo.io.strict_json import dumps

# (data set label, source name, options, published models scored on it)
SETS = [
    ("Fashion-MNIST, 8-bit grey", "fashion_mnist", {"binarize": "none"},
     # The seed MLP with the same likelihood (3.40 bits/dim at k = 1000 on these images, docs/images.md) is not
     # shipped: its 11 MB would take saved_models/ over its 150 MB budget until models are fetched by name.
     ["hierarchical_vae.fashion_mnist_8bit"]),
    # No emoji model is published yet (the ones trained on the CPU are far above the codecs): the codecs alone.
    ("emoji 64x64, RGB on white", "emoji", {"mode": "rgb", "background": "white"}, []),
]
# Test images for a set without a published model.
DEFAULT_EXAMPLES = 500
CODECS = ("PNG", "WebP", "lzma", "bz2", "gzip")
# Kingma, Abbeel and Ho (ICML 2019, Bit-Swap), Table 2: 8-bit MNIST, bits per dimension.
BIT_SWAP_MNIST = {"hierarchical VAE (Bit-Swap)": 1.29, "BB-ANS": 1.48, "lzma": 1.49, "WebP": 2.10, "PNG": 2.80}


def model_bits(name):
    """The published model's test bits per dimension from its report (importance sampling, k draws), and the
    number of test images (the first ones of the split) it was measured on."""
    card = vae_zoo.pretrained_card(name)
    nll = ((card.get("report") or {}).get("parts") or {}).get("nll") or {}
    if "bits_per_dim" not in nll:
        raise SystemExit(f"{name}'s card carries no report with an importance-sampled NLL: publish it with one "
                         "(vae-zoo evaluate RUN --only nll --k 1000 --out RUN/report; vae-zoo publish ... --report)")
    return {"bits_per_dim": float(nll["bits_per_dim"]), "examples": int(nll["examples"]), "k": int(nll["k"]),
            "nll_nats": float(nll["nll"]), "nll_std_error_nats": float(nll["nll_std_error"]),
            "weights_sha256": card["weights_sha256"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPORTS / "image_codecs.json"))
    args = parser.parse_args()
    with printed_into(REPORTS / "image_codecs.txt"):
        details, rows = {}, []
        for label, source, options, models in SETS:
            scored = {name: model_bits(name) for name in models}
            examples = {result["examples"] for result in scored.values()} or {DEFAULT_EXAMPLES}
            if len(examples) != 1:
                raise SystemExit(f"{label}: the models were measured on different numbers of test images: {examples}")
            images = data_module.load(source, **options).take("test", examples.pop())[0]
            codecs = baselines.lossless_codecs(images, binary=False)
            found = {codec: 8.0 * codecs[codec]["bytes"] / images.size for codec in CODECS}
            print(f"{label}, {len(images)} test images: " + ", ".join(f"{c} {v:.3f}" for c, v in found.items()), flush=True)
            best_codec = min(found.values())
            if not scored:
                rows.append([f"{label} ({len(images)} test images)", "none published yet", "",
                             *(f"{found[c]:.3f}" for c in CODECS), "", ""])
            for name, result in scored.items():
                print(f"  {name}: {result['bits_per_dim']:.3f} bits/dim (k = {result['k']})", flush=True)
                below_webp = 1.0 - result["bits_per_dim"] / found["WebP"]
                rows.append([f"{label} ({len(images)} test images)", f"`{name}`", f"**{result['bits_per_dim']:.3f}**",
                             *(f"{found[c]:.3f}" for c in CODECS), f"{100 * below_webp:.1f}%",
                             "yes" if result["bits_per_dim"] < best_codec else "no"])
            details[source] = {"examples": len(images), "codecs": codecs, "codec_bits_per_dim": found, "models": scored}
        rows.append(["8-bit MNIST, Kingma et al. 2019 (Bit-Swap), Table 2", "their hierarchical VAE",
                     f"{BIT_SWAP_MNIST['hierarchical VAE (Bit-Swap)']:.2f}", f"{BIT_SWAP_MNIST['PNG']:.2f}",
                     f"{BIT_SWAP_MNIST['WebP']:.2f}", f"{BIT_SWAP_MNIST['lzma']:.2f}", "", "", "", ""])
        machine = f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores, {platform.python_version()}"
        report = {"tool": "tools/bench_image_codecs.py", "machine": machine,
                  "measure": "bits per dimension; models: -log2 p(x) by importance sampling (k = 1000), from each published model's "
                             "report, on the same first test images as the codecs; codecs: file sizes "
                             "(PNG per image at its best setting, lossless WebP per image at method 6, gzip/bz2/lzma on the "
                             "whole set's raw bytes)",
                  "columns": ["test images", "model", "model bits/dim", *CODECS, "below WebP", "below every codec"],
                  "rows": rows, "details": details}
        with open(args.out, "w") as handle:
            handle.write(dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
