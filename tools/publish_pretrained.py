"""Publish a trained run as a pretrained zoo model: saved_models/<arch>.<tag>/.

    python tools/publish_pretrained.py runs/vae_fashion_mnist vae.fashion_mnist

The model is re-saved without its optimizer state (a third of the size: users
load it to use it, not to resume training); card.json, samples.png and any
report.json from ``vae-zoo evaluate --out`` are copied beside it.
"""

import argparse
import json
import sys
from pathlib import Path

import vae_zoo
from vae_zoo.io.saving import read_card

ZOO = Path(__file__).resolve().parent.parent / "saved_models"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a zoo folder written by vae-zoo train")
    parser.add_argument("name", help="arch.tag, e.g. vae.fashion_mnist")
    parser.add_argument("--report", help="a report.json to publish with it")
    parser.add_argument("--zoo", default=str(ZOO), help="the zoo folder (default: the repository's saved_models/)")
    args = parser.parse_args()

    trained = vae_zoo.load(args.run)
    arch, _, tag = args.name.partition(".")
    if arch != trained.registered_name or not tag:
        sys.exit(f"the name must be {trained.registered_name}.<tag>, got {args.name!r}")
    fresh = type(trained).from_config(trained.get_config())
    fresh.set_weights(trained.get_weights())
    card = {**read_card(args.run), "pretrained_name": args.name}
    if args.report:
        card["report"] = json.loads(Path(args.report).read_text())
    folder = vae_zoo.save(fresh, Path(args.zoo) / args.name, card=card, overwrite=True)
    print(f"published {folder} ({sum(f.stat().st_size for f in folder.iterdir()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
