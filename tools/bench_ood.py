"""Out-of-distribution detection with the pretrained VAEs, both ways between Fashion-MNIST and MNIST digits.

    python tools/bench_ood.py --out reports      # about 4 minutes on 2 CPU cores; needs Fashion-MNIST installed

Runs ``vae-zoo evaluate``'s ``ood`` part (``vae_zoo.evaluation.report``) for ``vae.fashion_mnist`` (in: the
Fashion-MNIST test split, 10,000; out: the bundled MNIST test digits, 1,000), ``vae.mnist_mini`` (the
reverse), and ``vae.fashion_mnist`` against the emoji test split (790) turned grey, resized to 28x28 and composited
on black, binarized as each model's card says, IS-NLL with k = 100. Every setting (H, the regret's steps, DoSE's
densities) comes from the in-distribution validation split. Writes ``ood.json`` (the table of docs/evaluation.md),
``ood_details.json`` and the two score histograms ``ood_<in>_vs_<out>.png``.
"""

import argparse
import platform
import shutil
import tempfile
from pathlib import Path

import vae_zoo
from vae_zoo.evaluation import report
from vae_zoo.evaluation.ood import SCORE_TITLES
from vae_zoo.io.pretrained import pretrained_card
from vae_zoo.io.strict_json import dumps

# The emoji turned grey, resized to 28x28 and composited on black, as Fashion-MNIST's garments are on black:
# a pair that no background colour gives away.
GREY_EMOJI = {"name": "emoji", "mode": "grey", "size": 28, "background": "black"}
PAIRS = [("vae.fashion_mnist", "mnist_mini"), ("vae.mnist_mini", "fashion_mnist"), ("vae.fashion_mnist", GREY_EMOJI)]


def set_label(spec):
    """How a table row names the out-of-distribution set: its name, with its options if it has any."""
    if isinstance(spec, str):
        return spec
    options = ", ".join(f"{key} {value}" for key, value in spec.items() if key != "name")
    return f"{spec['name']} ({options})"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reports")
    parser.add_argument("--k", type=int, default=100, help="importance samples for -log p(x)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, details = [], {}
    for model_name, ood_data in PAIRS:
        model = vae_zoo.load_pretrained(model_name)
        spec = dict(pretrained_card(model_name)["recipe"]["data"])
        with tempfile.TemporaryDirectory() as scratch:
            result = report.evaluate(model, spec, scratch, only=["ood"], anomaly_k=args.k, model_name=model_name,
                                     ood_data=ood_data)["parts"]["ood"]
            out_name = ood_data if isinstance(ood_data, str) else f"{ood_data['name']}_{ood_data['mode']}"
            shutil.copy(Path(scratch) / "ood_scores.png", out / f"ood_{spec['name']}_vs_{out_name}.png")
        details[f"{spec['name']} vs {set_label(ood_data)}"] = result
        out_label = result["out"].replace(result["out"].split()[0], set_label(ood_data), 1)
        for name, metrics in result["scores"].items():
            rows.append([f"{result['in']} ({result['in_examples']:,}) vs {out_label} ({result['out_examples']:,})",
                         f"`{model_name}`", SCORE_TITLES[name], f"{metrics['auroc']:.3f}", f"{metrics['auprc']:.3f}",
                         f"{metrics['fpr_at_95_tpr']:.3f}"])
    common = {"tool": "tools/bench_ood.py", "machine": f"{platform.machine()}, {platform.python_version()}", "k": args.k}
    (out / "ood.json").write_text(dumps({**common, "measure": "out-of-distribution set positive; higher score = out",
                                         "columns": ["in vs out (test splits)", "model", "score", "AUROC", "AUPRC", "FPR at 95% TPR"],
                                         "rows": rows}, indent=2) + "\n")
    (out / "ood_details.json").write_text(dumps({**common, **details}, indent=2) + "\n")
    print("\n".join(" | ".join(r) for r in rows))


if __name__ == "__main__":
    main()
