"""Publish a trained run as a pretrained zoo model: saved_models/<arch>.<tag>/.

    python tools/publish_pretrained.py runs/vae_fashion_mnist vae.fashion_mnist

The model is re-saved without its optimizer state (a third of the size: users
load it to use it, not to resume training); card.json, samples.png and any
report.json from ``vae-zoo evaluate --out`` are copied beside it. The card also
gets ``metrics.test_slice`` (where it names its recipe's data): the test scores over the split's first 500 examples,
measured on the weights as published (the zoo's tests measure them again).
"""

import argparse
import json
import sys
from pathlib import Path

import vae_zoo
from vae_zoo.evaluation import card_check
from vae_zoo.io import saving
from vae_zoo.io.saving import read_card
from vae_zoo.training import recipe as recipes

ROOT = Path(__file__).resolve().parent.parent
ZOO = ROOT / "saved_models"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a zoo folder written by vae-zoo train")
    parser.add_argument("name", help="arch.tag, e.g. vae.fashion_mnist")
    parser.add_argument("--report", help="a report.json to publish with it")
    parser.add_argument("--zoo", default=str(ZOO), help="the zoo folder (default: the repository's saved_models/)")
    parser.add_argument("--recipe-file", help="a recipe file of the repository that reads as the recipe on the card "
                                              "(checked), to name on the card instead of the file the run was started from")
    parser.add_argument("--trained-on-this-machine", action="store_true",
                        help="for a card from before vae_zoo 0.4.1, which did not record the hardware: record this "
                             "machine's (only when the run was trained here)")
    args = parser.parse_args()
    try:
        folder = publish(args.run, args.name, args.zoo, args.report, args.trained_on_this_machine, args.recipe_file)
    except ValueError as err:
        sys.exit(str(err))
    print(f"published {folder} ({sum(f.stat().st_size for f in folder.iterdir()) / 1e6:.1f} MB)")


def publish(run, name, zoo=ZOO, report=None, trained_on_this_machine=False, recipe_file=None):
    """Save ``run``'s model as ``zoo/name`` with its card, its test slice measured on the published weights."""
    trained = vae_zoo.load(run)
    arch, _, tag = name.partition(".")
    if arch != trained.registered_name or not tag:
        raise ValueError(f"the name must be {trained.registered_name}.<tag>, got {name!r}")
    fresh = type(trained).from_config(trained.get_config())
    fresh.set_weights(trained.get_weights())
    card = {**read_card(run), "pretrained_name": name}
    if recipe_file:
        if recipes.read(recipe_file) != card.get("recipe"):
            raise ValueError(f"{recipe_file} is not the recipe on {run}'s card, so the card cannot name it")
        # Named from the repository's root, so the card reads the same in any checkout.
        recipe_path = Path(recipe_file).resolve()
        card["recipe_file"] = str(recipe_path.relative_to(ROOT) if recipe_path.is_relative_to(ROOT) else recipe_file)
    if report:
        card["report"] = json.loads(Path(report).read_text())
    training = card.setdefault("training", {})
    if training.get("resumed_after_epoch") and "seconds_last_sitting" not in training:
        # Before vae_zoo 0.2.2 a resumed run's card gave the last sitting's time as its training time.
        training["seconds_last_sitting"], training["seconds"] = training.get("seconds"), None
    if "hardware" not in training:
        training["hardware"] = saving.hardware() if trained_on_this_machine else "not recorded"
    if (card.get("recipe") or {}).get("data"):
        card["metrics"]["test_slice"] = card_check.slice_scores(fresh, card)
    else:  # trained through the Python API: no recipe says which data it was tested on
        print(f"warning: {run}'s card names no recipe data, so no test slice is recorded", file=sys.stderr)
    return vae_zoo.save(fresh, Path(zoo) / name, card=card, overwrite=True)


if __name__ == "__main__":
    main()
