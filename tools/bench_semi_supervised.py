"""Semi-supervised classification with few labels: raw pixels, the M1 probe, a fine-tuned encoder, M2 and M1 + M2.

    python tools/bench_semi_supervised.py --out reports                       # the full table (hours on 2 cores)
    python tools/bench_semi_supervised.py --epochs 2 --draws 1 --out /tmp/ss  # a quick check of the tool

For each number of labels per class (``--labels``, default 10 and 100) and each of ``--draws`` label draws:

- raw pixels, the M1 probe (logistic regression on the posterior means of ``--m1``) and the fine-tuned encoder
  come from ``vae_zoo.evaluation.semi_supervised`` (the report's ``semi_supervised`` part) on ``--m1``;
- M2 trains ``recipes/m2/mnist_mini.yaml`` on ``--data`` and M1 + M2 ``recipes/m2/mnist_mini_m1.yaml`` on the
  latents of ``--m1``, each with ``data.labels_per_class`` set to the count and ``data.seed`` to the draw (which
  labels are kept), for ``--epochs`` epochs; their error is their classifier q(y|x) on the test split.
  ``--data fashion_mnist --m1 vae.fashion_mnist`` gives the Fashion-MNIST table.

Draw r is the same labelled examples in every row: the probes' draw r (``semi_supervised`` with seed 0) keeps the
labels that the M2 runs' data option ``labels_per_class`` keeps with ``data.seed = r``.
Writes ``semi_supervised.json`` (test error in %, mean and standard deviation over the draws) and
``semi_supervised_details.json`` (every run).
"""

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

import vae_zoo
from vae_zoo import evaluation
from vae_zoo.io.strict_json import dumps
from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner

ROOT = Path(__file__).resolve().parents[1]
# The M2 recipes, and which data key the table's --data (M2) or --m1 (M1 + M2: M2 on its latents) sets in each.
M2_RECIPES = {"M2": (ROOT / "recipes/m2/mnist_mini.yaml", "data.name", "data"),
              "M1 + M2": (ROOT / "recipes/m2/mnist_mini_m1.yaml", "data.model", "m1")}
PROBES = {"raw pixels": "pixels_accuracy", "M1 probe (logistic regression on z)": "latent_accuracy",
          "fine-tuned encoder": "finetuned_accuracy"}


def m2_error(path, labels_per_class, draw, epochs, work, data_override):
    """Test error (%) of the classifier of an M2 recipe trained with n labels per class from draw ``draw``;
    ``data_override`` (KEY=VALUE) points it at the table's data set or its M1 model's latents."""
    overrides = [f"data.labels_per_class={labels_per_class}", f"data.seed={draw}", f"training.epochs={epochs}",
                 "training.verbose=0", data_override]
    recipe = recipes.read(path, overrides=overrides)
    folder, _, _ = runner.train(recipe, Path(work) / f"{path.stem}_{labels_per_class}_{draw}", overwrite=True, verbose=0)
    model = vae_zoo.load(folder)
    data = recipes.build_data({**recipe, "data": {**recipe["data"], "labels_per_class": None, "labelled_per_batch": 0}})
    images, labels = data.take("test")
    predicted = np.concatenate([model.predict_labels(images[i:i + 1000]).numpy() for i in range(0, len(images), 1000)])
    return 100.0 * float(np.mean(predicted != labels))


def summary(errors):
    return {"mean": float(np.mean(errors)), "std": float(np.std(errors)), "draws": [float(e) for e in errors]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="reports")
    parser.add_argument("--m1", default="vae.mnist_mini", help="the unsupervised model of the probes")
    parser.add_argument("--data", default="mnist_mini")
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 100], help="labels per class")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=300, help="epochs of each M2 and M1 + M2 run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = vae_zoo.load_pretrained(args.m1)
    data = vae_zoo.data.load(args.data, binarize="dynamic", labels=True)
    results = {}
    probes = evaluation.semi_supervised(model, data, labels_per_class=tuple(args.labels), repeats=args.draws, seed=0)
    for n in args.labels:
        scores = probes[f"{n}_per_class"]
        results[n] = {name: {"mean": 100 * (1 - scores[key]), "std": 100 * scores[f"{key}_std"]}
                      for name, key in PROBES.items() if key in scores}
    with tempfile.TemporaryDirectory() as work:
        for n in args.labels:
            for name, (path, key, argument) in M2_RECIPES.items():
                override = f"{key}={getattr(args, argument)}"
                errors = [m2_error(path, n, draw, args.epochs, work, override) for draw in range(args.draws)]
                results[n][name] = summary(errors)
                print(f"{n} labels per class, {name}: {np.mean(errors):.2f}% +- {np.std(errors):.2f}", flush=True)
    methods = [*PROBES, *M2_RECIPES]
    rows = [[name] + [f"{results[n][name]['mean']:.2f} ± {results[n][name]['std']:.2f}" if name in results[n] else ""
                      for n in args.labels] for name in methods]
    common = {"tool": "tools/bench_semi_supervised.py",
              "command": " ".join(["python", "tools/bench_semi_supervised.py"] + sys.argv[1:]),
              "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPU cores"}
    (out / "semi_supervised.json").write_text(dumps({
        **common, "measure": f"test error (%) on {args.data}'s test split, mean ± standard deviation over {args.draws} "
                             f"label draws; M2 runs of {args.epochs} epochs",
        "columns": ["method"] + [f"{n} labels per class" for n in args.labels], "rows": rows}, indent=2) + "\n")
    (out / "semi_supervised_details.json").write_text(dumps({**common, "results": {str(n): r for n, r in results.items()}},
                                                            indent=2) + "\n")
    print(dumps({str(n): r for n, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
