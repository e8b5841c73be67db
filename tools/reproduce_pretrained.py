"""Reproduce a pretrained zoo model in one command: train it from its recipe, evaluate it, publish it with its card.

    python tools/reproduce_pretrained.py vae.fashion_mnist                  # into saved_models/
    python tools/reproduce_pretrained.py iwae.fashion_mnist --k 5000
    python tools/reproduce_pretrained.py vae.mnist_mini --smoke --zoo /tmp/zoo   # a quick check of the path

The recipe is the published card's ``recipe_file`` where the repository has it (else the recipe stored in the
card), or ``recipes/<arch>/<tag>.yaml`` for a name not published yet. Training goes to ``runs/<name>``
(``runs/<name>-smoke`` with ``--smoke``) and
resumes there if a sitting is interrupted; evaluation writes ``runs/<name>/report`` (the test scores, the
importance-sampled NLL with ``--k`` draws, latent statistics, and the text or audio part for those models);
``tools/publish_pretrained.py`` then saves the model without its optimizer state, with the report and a test
slice in its card. Regenerate the README's tables afterwards with ``python tools/write_readme.py``.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml
from publish_pretrained import ZOO, publish

from vae_zoo import cli
from vae_zoo.io import pretrained

ROOT = Path(__file__).resolve().parent.parent
# Parts that do not apply to a model are recorded in its report as skipped, with the reason.
PARTS = {"image": "scores,nll,latents", "text": "scores,nll,latents,text", "audio": "scores,nll,latents,audio"}


def recipe_for(name):
    """The recipe file that made ``name`` (or makes it, for a name not published yet)."""
    arch, _, tag = name.partition(".")
    if not tag:
        raise SystemExit(f"a pretrained name is <arch>.<tag>, got {name!r}")
    if name in pretrained.list_pretrained():
        card = pretrained.pretrained_card(name)
        recorded = ROOT / card.get("recipe_file", "")
        if card.get("recipe_file") and recorded.is_file():
            return recorded
        stored = Path(tempfile.mkdtemp()) / f"{name}.yaml"
        stored.write_text(yaml.safe_dump(card["recipe"], sort_keys=False))
        return stored
    fresh = ROOT / "recipes" / arch / f"{tag}.yaml"
    if not fresh.is_file():
        raise SystemExit(f"{name} is not published and {fresh.relative_to(ROOT)} does not exist")
    return fresh


def stored_dtype(name):
    """The dtype a published model's weights are stored in (float32 for a name not published yet)."""
    if name not in pretrained.list_pretrained():
        return "float32"
    return pretrained.pretrained_card(name).get("storage", {}).get("weights_dtype", "float32")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="arch.tag, e.g. vae.fashion_mnist")
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="where the training run goes (default: runs/)")
    parser.add_argument("--zoo", default=str(ZOO), help="where to publish (default: the repository's saved_models/)")
    parser.add_argument("--k", type=int, default=1000, help="importance samples for the test NLL (the benchmark: 5000)")
    parser.add_argument("--smoke", action="store_true", help="the recipe's smoke settings, 256 test examples, k = 10")
    parser.add_argument("--weights-dtype", choices=("float32", "float16"),
                        help="how the published weights are stored (default: as the published card says, else float32)")
    args = parser.parse_args(argv)

    runs, zoo = Path(args.runs).resolve(), Path(args.zoo).resolve()
    # From the repository's root, so the card names its recipe as the repository does (recipes/...).
    os.chdir(ROOT)
    recipe = recipe_for(args.name)
    recipe = recipe.relative_to(ROOT) if recipe.is_relative_to(ROOT) else recipe
    # A smoke run has a folder of its own, so it never replaces a real run's.
    run = runs / (f"{args.name}-smoke" if args.smoke else args.name)
    train = ["train", str(recipe), "--out", str(run)] + (["--smoke", "--overwrite"] if args.smoke else [])
    if not (run / "card.json").is_file() or args.smoke:
        print(f"training {args.name} from {recipe}", file=sys.stderr, flush=True)
        if cli.main(train) != 0:
            return 1
    weights_dtype = args.weights_dtype or stored_dtype(args.name)
    modality = json.loads((run / "card.json").read_text())["data"].get("modality", "image")
    report = run / "report"
    # Rounded weights are published first and evaluated as published, so the report describes what ships.
    evaluated = run if weights_dtype == "float32" else publish(run, args.name, zoo, weights_dtype=weights_dtype)
    evaluate = ["evaluate", str(evaluated), "--only", PARTS.get(modality, "scores"), "--k", str(10 if args.smoke else args.k),
                "--out", str(report)] + (["--limit", "256"] if args.smoke else [])
    print(f"evaluating {args.name}", file=sys.stderr, flush=True)
    if cli.main(evaluate) != 0:
        return 1
    folder = publish(run, args.name, zoo, report / "report.json", weights_dtype=weights_dtype)
    print(f"published {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
