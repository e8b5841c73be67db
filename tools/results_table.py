"""A markdown table of trained zoo folders, from their model cards.

    python tools/results_table.py runs/vae_mnist_mini runs/cvae_mnist_mini ...   # also into reports/results_table.md

One row per folder: model, recipe, epochs run (best epoch), wall time, and the
test figures the card recorded (ELBO, reconstruction -log p(x|z), KL, squared
reconstruction error), plus variant-specific validation figures at the best epoch.
"""

import argparse
import json
from pathlib import Path

from report_output import REPORTS, printed_into

EXTRA = ("iwae_bound", "perplexity", "kl_1", "kl_2", "weight_kl", "discriminator_loss", "active_units")


def row(folder):
    card = json.loads((Path(folder) / "card.json").read_text())
    test, training = card["metrics"]["test"], card["training"]
    validation = card["metrics"].get("validation_at_best_epoch", {})
    cell = lambda d, k: f"{d[k]:.2f}" if k in d else ""
    extra = ", ".join(f"{k} {validation[k]:.2f}" for k in EXTRA if k in validation)
    return (f"| {card['model']} | {card.get('recipe_file', '')} | {training['epochs_run']} ({training['best_epoch']}) | "
            f"{training['seconds']:.0f} | {cell(test, 'elbo')} | {cell(test, 'reconstruction_nll')} | {cell(test, 'kl')} | "
            f"{cell(test, 'reconstruction_squared_error')} | {extra} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--out", default=str(REPORTS / "results_table.md"), help="also write the table here")
    args = parser.parse_args()
    with printed_into(args.out):
        print_table(args.folders)


def print_table(folders):
    print("| model | recipe | epochs (best) | seconds | test ELBO | test -log p(x\\|z) | test KL | test sq. error | validation, best epoch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for folder in folders:
        if (Path(folder) / "card.json").is_file():
            print(row(folder))


if __name__ == "__main__":
    main()
