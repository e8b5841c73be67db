"""Publish a trained run as a pretrained zoo model: saved_models/<arch>.<tag>/.

    python tools/publish_pretrained.py runs/vae_fashion_mnist vae.fashion_mnist

The model is re-saved without its optimizer state (a third of the size: users
load it to use it, not to resume training); card.json, samples.png and any
report.json from ``vae-zoo evaluate --out`` are copied beside it. The card also
gets ``metrics.test_slice`` (where it names its recipe's data): the test scores over the split's first 500 examples,
measured on the weights as published (the zoo's tests measure them again).

``--weights-dtype float16`` stores the weights in half the space (for models over the zoo's 30 MB budget): the
weights are rounded, the card's test figures are measured again on the rounded weights (the run's own stay on the
card as ``metrics.test_before_rounding``), and a report must carry the digest of the rounded weights::

    python tools/publish_pretrained.py runs/vae_fsdd_mel vae.fsdd_mel --weights-dtype float16
    vae-zoo evaluate saved_models/vae.fsdd_mel --only scores,nll,latents,audio --out runs/reports/vae_fsdd_mel
    python tools/publish_pretrained.py runs/vae_fsdd_mel vae.fsdd_mel --weights-dtype float16 \
        --report runs/reports/vae_fsdd_mel/report.json
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
    parser.add_argument("--weights-dtype", choices=saving.STORAGE_DTYPES, default="float32",
                        help="store the weights in this dtype (float16: half the space); the card's test figures are "
                             "then measured again on the rounded weights, and a --report must have been measured on them "
                             "(publish without one, run vae-zoo evaluate on the published folder, publish again with it)")
    args = parser.parse_args()
    try:
        folder = publish(args.run, args.name, args.zoo, args.report, args.trained_on_this_machine, args.recipe_file,
                         args.weights_dtype)
    except ValueError as err:
        sys.exit(str(err))
    print(f"published {folder} ({sum(f.stat().st_size for f in folder.iterdir()) / 1e6:.1f} MB)")


def as_trained(recipe):
    """The recipe without ``training.verbose``, which changes what a run prints, not what it trains."""
    training = {key: value for key, value in (recipe.get("training") or {}).items() if key != "verbose"}
    return {**recipe, "training": training}


def publish(run, name, zoo=ZOO, report=None, trained_on_this_machine=False, recipe_file=None, weights_dtype="float32"):
    """Save ``run``'s model as ``zoo/name`` with its card, its test slice measured on the published weights."""
    trained = vae_zoo.load(run)
    arch, _, tag = name.partition(".")
    if arch != trained.registered_name or not tag:
        raise ValueError(f"the name must be {trained.registered_name}.<tag>, got {name!r}")
    fresh = type(trained).from_config(trained.get_config())
    fresh.set_weights(saving.rounded_to(trained.get_weights(), weights_dtype))
    card = {**read_card(run), "pretrained_name": name}
    shipped_digest = card["weights_sha256"] = saving.weights_digest(fresh)  # the run's differs where rounded
    if report:
        measured_on = json.loads(Path(report).read_text()).get("weights_sha256")
        if measured_on not in (None, shipped_digest) or (measured_on is None and weights_dtype != "float32"):
            raise ValueError(f"{report} was not measured on the weights to be published ({weights_dtype}); evaluate the "
                             f"published folder (vae-zoo evaluate {Path(zoo) / name} --out ...) and publish again with that report")
    if recipe_file:
        if as_trained(recipes.read(recipe_file)) != as_trained(card.get("recipe") or {}):
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
        if weights_dtype != "float32":  # the run's figures describe float32 weights: measure the ones that ship
            card["metrics"]["test_before_rounding"] = card["metrics"]["test"]
            card["metrics"]["test"] = card_check.test_scores(fresh, card)
        card["metrics"]["test_slice"] = card_check.slice_scores(fresh, card)
    else:  # trained through the Python API: no recipe says which data it was tested on
        print(f"warning: {run}'s card names no recipe data, so no test slice is recorded", file=sys.stderr)
    return vae_zoo.save(fresh, Path(zoo) / name, card=card, overwrite=True, weights_dtype=weights_dtype)


if __name__ == "__main__":
    main()
